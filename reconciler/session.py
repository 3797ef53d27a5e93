"""A writing session: the project lock and the intent journal every writing command holds.

Applies exclude each other (Terraform's state lock): a local lock file in the project's
``.reconciler/`` folder for one machine, or a PostgreSQL advisory lock (``lock`` in
``reconciler.toml`` or ``RECONCILER_LOCK_URL``) for runners on many machines. The journal of
creates in flight lives beside it, so a restarted apply on any of those machines sees them.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.config import ProjectConfig
from reconciler.journal import IntentJournal, open_journal
from reconciler.lock import new_holder, open_lock

#: Where a project keeps its local lock file, journal and embedded emulator state.
STATE_FOLDER = ".reconciler"
LOCK_URL_ENV = "RECONCILER_LOCK_URL"


def project_root(config: ProjectConfig, paths: Sequence[str]) -> Path:
    """The folder of ``reconciler.toml``, else that of the first path (the manifests)."""
    if config.path:
        return Path(os.path.abspath(config.path)).parent
    first = Path(os.path.abspath(paths[0] if paths else "."))
    return first if first.is_dir() else first.parent


def lock_url(config: ProjectConfig, env: Mapping[str, str] | None = None) -> str | None:
    """The shared lock's URL: the environment first (a CI secret), then the config file."""
    env = os.environ if env is None else env
    return env.get(LOCK_URL_ENV) or config.lock


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command as typed, for the lock's holder record (flags never carry the key)."""
    args = sys.argv[1:] if argv is None else argv
    return " ".join(["reconciler", *(args or [])])[:200]


@dataclass(frozen=True)
class LockFlags:
    """What the command line said about the lock (``--lock``, ``--lock-timeout``)."""

    enabled: bool = True
    timeout: float | None = None  # None: ``lock_timeout`` in reconciler.toml, else 0


@dataclass(frozen=True)
class WriteGuard:
    """How one writing command is guarded; :meth:`hold` takes the lock and opens the journal."""

    project: str
    root: Path
    url: str | None
    enabled: bool
    timeout: float
    command: str

    @property
    def folder(self) -> Path:
        return self.root / STATE_FOLDER

    @contextlib.contextmanager
    def hold(self) -> Iterator[IntentJournal]:
        """Hold the project lock (unless ``--lock=false``) with the journal open."""
        with contextlib.ExitStack() as stack:
            if self.enabled:
                holder = new_holder(self.project, self.command)
                stack.enter_context(
                    open_lock(self.url, self.folder, holder, timeout=self.timeout)
                )
            journal = open_journal(self.url, self.folder)
            stack.callback(journal.close)
            yield journal


def write_guard(
    config: ProjectConfig, root: Path, project: str, flags: LockFlags, command: str
) -> WriteGuard:
    """The guard of one writing command of ``project`` (flags win over ``reconciler.toml``)."""
    timeout = flags.timeout if flags.timeout is not None else (config.lock_timeout or 0.0)
    return WriteGuard(
        project=project, root=root, url=lock_url(config), enabled=flags.enabled,
        timeout=timeout, command=command,
    )
