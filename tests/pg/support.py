"""A throwaway PostgreSQL server for tests, and the session fixture ``pg_url`` that runs one.

``RECONCILER_TEST_PG_URL`` names a server to use instead. Otherwise each pytest process (each
xdist worker) starts its own from the machine's PostgreSQL binaries: a fresh data directory
under /tmp, loopback TCP on a free port, stopped at the end of the session. ``.ci/run``
installs the binaries; without them the fixture fails, it never skips.

The fixture is registered for every test folder by ``tests/conftest.py``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PG_URL_ENV = "RECONCILER_TEST_PG_URL"
SERVER_USER = "postgres"  # initdb refuses to run as root; Debian's package creates this user
START_TRIES = 5


def find_pg_bindir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: from PATH, else the newest Debian one."""
    on_path = shutil.which("pg_ctl")
    if on_path:
        folder = Path(os.path.realpath(on_path)).parent
        if (folder / "initdb").exists() and (folder / "postgres").exists():
            return folder
    candidates = glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")

    def version(path: str) -> tuple[int, ...]:
        name = Path(path).parent.parent.name
        return tuple(int(p) for p in name.split(".") if p.isdigit())

    for pg_ctl in sorted(candidates, key=version, reverse=True):
        folder = Path(pg_ctl).parent
        if (folder / "initdb").exists():
            return folder
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_account() -> pwd.struct_passwd | None:
    """The account to run the server as: None unless we are root, else ``postgres``."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        pass
    made = subprocess.run(
        ["useradd", "--system", "--user-group", "--no-create-home",
         "--shell", "/usr/sbin/nologin", SERVER_USER],
        capture_output=True, text=True,
    )
    if made.returncode != 0:
        pytest.fail(f"initdb cannot run as root, and `useradd {SERVER_USER}` failed: "
                    f"{made.stderr.strip()}", pytrace=False)
    return pwd.getpwnam(SERVER_USER)


@dataclass
class PostgresServer:
    """A running throwaway server; ``stop()`` kills it and removes its files."""

    bindir: Path
    base: Path
    port: int
    account: pwd.struct_passwd | None

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def log(self) -> Path:
        return self.base / "server.log"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a server binary, as the ``postgres`` account when we are root."""
        extra: dict[str, Any] = {}
        if self.account is not None:
            extra = {"user": self.account.pw_uid, "group": self.account.pw_gid,
                     "extra_groups": []}
        env = dict(os.environ, LC_ALL="C", LANG="C")
        env.pop("PGDATA", None)
        return subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            cwd=self.base, env=env, capture_output=True, text=True, timeout=120, **extra,
        )

    def start(self) -> None:
        options = (f"-k {self.base} -c listen_addresses=127.0.0.1 -p {self.port} "
                   "-c fsync=off -c max_connections=50")
        result = self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log),
                          "-o", options, "-w", "-t", "60", "start")
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {result.stderr.strip()}\n{self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return "\n".join(self.log.read_text("utf-8", "replace").splitlines()[-20:])
        except OSError:
            return ""

    def stop(self) -> None:
        try:
            self.run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


def start_postgres() -> PostgresServer:
    """Initialise and start a server on a free loopback port; fails the test without binaries."""
    bindir = find_pg_bindir()
    if bindir is None:
        pytest.fail(
            "no PostgreSQL server binaries (initdb, pg_ctl) on PATH or under "
            "/usr/lib/postgresql/*/bin: `.ci/run` installs them (apt-get install postgresql); "
            f"or set {PG_URL_ENV} to a server the tests may use",
            pytrace=False,
        )
    account = server_account()
    base = Path(tempfile.mkdtemp(prefix="rpg-", dir="/tmp" if os.path.isdir("/tmp") else None))
    if account is not None:
        os.chown(base, account.pw_uid, account.pw_gid)
    server = PostgresServer(bindir=bindir, base=base, port=0, account=account)
    init = server.run("initdb", "-D", str(server.data), "-U", "postgres", "--auth=trust",
                      "--no-locale", "-E", "UTF8", "--no-sync")
    if init.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"initdb failed: {init.stderr.strip()}", pytrace=False)
    problems: list[str] = []
    for _ in range(START_TRIES):  # another worker may take the free port first: pick again
        server.port = free_port()
        try:
            server.start()
            return server
        except RuntimeError as exc:
            problems.append(str(exc))
    server.stop()
    pytest.fail("PostgreSQL did not start:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL for this test process, trust auth, superuser ``postgres``."""
    given = os.environ.get(PG_URL_ENV)
    if given:
        yield given
        return
    server = start_postgres()
    try:
        yield server.url
    finally:
        server.stop()
