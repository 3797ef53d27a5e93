"""The project config file, ``reconciler.toml``, kept beside the manifests.

It names the project that owns the runs (the ``reconciler.project`` metadata key, so two repos
can share a thread without touching each other's runs) and, optionally, how to reach the API.
``parse_config`` is pure; ``find_config`` and ``read_config`` are the edge that touches files.

    project = "analytics"                 # [a-z0-9][a-z0-9._-]*, at most 64 characters
    base_url = "https://api.openai.com/v1"
    auth = "azure"                        # "bearer" (the default) or "azure"
    api_version = "2024-05-01-preview"    # Azure's api-version query parameter
    concurrency = 16                      # requests in flight at once
    lock = "postgresql://ci@db/locks"     # a shared lock for runners on many machines
    lock_timeout = 30                     # seconds a writing command waits for the lock
    settle_window = 60                    # seconds an ambiguous create may take to show up
    request_timeout = 60                  # seconds before one request is given up
    ca_bundle = "certs/corp-ca.pem"       # CA file for a host with a private CA
    allow_insecure_http = false           # send the key over plain http to a remote host
    max_creates = 20                      # apply refuses a plan that starts more runs
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from reconciler.defaults import MAX_CONCURRENCY, MAX_WAIT_SECONDS
from reconciler.manifest import Problem, suggest
from reconciler.model import SourceLocation

__all__ = [
    "CONFIG_FILE",
    "MAX_CONCURRENCY",
    "AuthMode",
    "ProjectConfig",
    "find_config",
    "parse_config",
    "read_config",
]

CONFIG_FILE = "reconciler.toml"
PROJECT_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]*\Z")
PROJECT_MAX_LENGTH = 64
#: A config file is a few lines; anything larger is not one.
_MAX_CONFIG_BYTES = 1024 * 1024

AuthMode = Literal["bearer", "azure"]
_AUTH_MODES: tuple[AuthMode, ...] = ("bearer", "azure")
_KEYS = (
    "project", "base_url", "auth", "api_version", "concurrency", "lock", "lock_timeout",
    "settle_window", "request_timeout", "ca_bundle", "allow_insecure_http", "max_creates",
)
_LOCK_SCHEMES = ("postgresql", "postgres")


@dataclass(frozen=True)
class ProjectConfig:
    """What ``reconciler.toml`` says; unset values are None (flags and environment decide)."""

    project: str | None = None
    base_url: str | None = None
    auth: AuthMode = "bearer"
    api_version: str | None = None
    concurrency: int | None = None
    lock: str | None = None  # postgresql://… for the shared lock; None: the local lock file
    lock_timeout: float | None = None
    settle_window: float | None = None
    request_timeout: float | None = None
    ca_bundle: str | None = None  # relative paths are relative to the config file
    allow_insecure_http: bool = False
    max_creates: int | None = None  # apply refuses a plan creating more runs (None: no limit)
    path: str | None = None  # the file it was read from (its folder holds .reconciler/)


def project_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a project, or None when it can (shared with the ``--project``
    flag)."""
    if len(name) > PROJECT_MAX_LENGTH:
        return f"must be at most {PROJECT_MAX_LENGTH} characters long, got {len(name)}"
    if not PROJECT_PATTERN.match(name):
        return (
            "must be lower-case letters, digits, '.', '_' and '-', starting with a letter "
            f"or digit, got {name!r}"
        )
    return None


def parse_config(text: str, filename: str) -> tuple[ProjectConfig, list[Problem]]:
    """Read a config file's text; on problems the config holds the values that were valid."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return ProjectConfig(), [_syntax_problem(text, filename, exc)]
    problems: list[Problem] = []
    where = _Locator(text, filename)
    # Key by key in this order: problems at one place keep it, as the sort below is stable.
    _unknown_keys(data, where, problems)
    project = _project(data, where, problems)
    base_url = _base_url(data, where, problems)
    auth, api_version = _auth(data, where, problems)
    concurrency = _concurrency(data, where, problems)
    lock = _lock(data, where, problems)
    lock_timeout = _seconds(data, "lock_timeout", where, problems)
    settle_window = _seconds(data, "settle_window", where, problems)
    request_timeout = _request_timeout(data, where, problems)
    ca_bundle = _ca_bundle(data, filename, where, problems)
    insecure = _allow_insecure_http(data, where, problems)
    max_creates = _max_creates(data, where, problems)
    config = ProjectConfig(
        project, base_url, auth, api_version, concurrency, lock, lock_timeout, settle_window,
        request_timeout, ca_bundle, insecure, max_creates=max_creates,
    )
    return config, sorted(problems, key=lambda p: p.sort_key)


def _unknown_keys(data: Mapping[str, Any], where: _Locator, problems: list[Problem]) -> None:
    """A typo must not pass for an unset value, so every unknown key or table is a problem."""
    for key, value in data.items():
        if key not in _KEYS:
            kind = "table" if isinstance(value, dict) else "key"
            problems.append(
                Problem(where.key(key), f"unknown {kind} {key!r}{suggest(key, _KEYS)}")
            )


def _project(data: Mapping[str, Any], where: _Locator, problems: list[Problem]) -> str | None:
    """The project name, held to the same rule as the ``--project`` flag."""
    project = _string(data, "project", where, problems)
    if project is not None:
        why = project_name_problem(project)
        if why is not None:
            problems.append(Problem(where.value("project"), f"project: {why}"))
            project = None
    return project


def _base_url(data: Mapping[str, Any], where: _Locator, problems: list[Problem]) -> str | None:
    """The API's URL: http or https with a host, so a typo fails here, not at the first call."""
    base_url = _string(data, "base_url", where, problems)
    if base_url is not None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            problems.append(
                Problem(
                    where.value("base_url"),
                    f"base_url: expected an http:// or https:// URL, got {base_url!r}",
                )
            )
            base_url = None
    return base_url


def _auth(
    data: Mapping[str, Any], where: _Locator, problems: list[Problem]
) -> tuple[AuthMode, str | None]:
    """``auth`` and ``api_version`` together: bearer takes no api-version."""
    auth: AuthMode = "bearer"
    auth_text = _string(data, "auth", where, problems)
    if auth_text is not None:
        if auth_text == "azure":
            auth = "azure"
        elif auth_text != "bearer":
            problems.append(
                Problem(
                    where.value("auth"),
                    f"auth: must be 'bearer' or 'azure', got {auth_text!r}"
                    f"{suggest(auth_text, _AUTH_MODES)}",
                )
            )

    # With auth = "azure" an api-version may also come from --api-version or
    # OPENAI_API_VERSION, so its absence is the backend's to report, not the file's.
    api_version = _string(data, "api_version", where, problems)
    if api_version is not None and auth_text in (None, "bearer"):
        problems.append(
            Problem(where.key("api_version"), "api_version: applies only with auth = 'azure'")
        )
    return auth, api_version


def _concurrency(
    data: Mapping[str, Any], where: _Locator, problems: list[Problem]
) -> int | None:
    """Requests in flight at once: a whole number in a range the client can honour."""
    concurrency = data.get("concurrency")
    if concurrency is None:
        return None
    if (
        not isinstance(concurrency, int)
        or isinstance(concurrency, bool)
        or not 1 <= concurrency <= MAX_CONCURRENCY
    ):
        problems.append(
            Problem(
                where.value("concurrency"),
                f"concurrency: expected an integer from 1 to {MAX_CONCURRENCY}, "
                f"got {_toml(concurrency)}",
            )
        )
        return None
    return concurrency


def _lock(data: Mapping[str, Any], where: _Locator, problems: list[Problem]) -> str | None:
    """The shared lock's URL; only PostgreSQL is a shared backend, the default is local."""
    lock = _string(data, "lock", where, problems)
    if lock is not None and urlsplit(lock).scheme not in _LOCK_SCHEMES:
        problems.append(Problem(
            where.value("lock"),
            "lock: expected a postgresql:// URL (leave it out for the local lock file)",
        ))
        lock = None
    return lock


def _request_timeout(
    data: Mapping[str, Any], where: _Locator, problems: list[Problem]
) -> float | None:
    """Seconds like the other waits, but 0 would give every request up at once."""
    request_timeout = _seconds(data, "request_timeout", where, problems)
    if request_timeout == 0:
        problems.append(Problem(where.value("request_timeout"),
                                "request_timeout: must be more than 0 seconds"))
        request_timeout = None
    return request_timeout


def _ca_bundle(
    data: Mapping[str, Any], filename: str, where: _Locator, problems: list[Problem]
) -> str | None:
    """The CA file, relative to the config file so the repo works from any directory."""
    ca_bundle = _string(data, "ca_bundle", where, problems)
    if ca_bundle is not None and not os.path.isabs(ca_bundle):
        ca_bundle = os.path.join(os.path.dirname(filename), ca_bundle)
    return ca_bundle


def _allow_insecure_http(
    data: Mapping[str, Any], where: _Locator, problems: list[Problem]
) -> bool:
    """Only a real boolean opts in to sending the key over plain http; anything else is no."""
    insecure = data.get("allow_insecure_http", False)
    if not isinstance(insecure, bool):
        problems.append(Problem(where.value("allow_insecure_http"),
                                f"allow_insecure_http: expected true or false, got "
                                f"{_toml(insecure)}"))
        return False
    return insecure


def _max_creates(
    data: Mapping[str, Any], where: _Locator, problems: list[Problem]
) -> int | None:
    """The spend guard's limit on runs one apply starts: a whole number, 0 allowing none."""
    value = data.get("max_creates")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        problems.append(Problem(
            where.value("max_creates"),
            f"max_creates: expected a whole number from 0, got {_toml(value)}",
        ))
        return None
    return value


def _seconds(
    data: Mapping[str, Any], key: str, where: _Locator, problems: list[Problem]
) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 <= value <= MAX_WAIT_SECONDS
    ):
        problems.append(Problem(
            where.value(key),
            f"{key}: expected a number of seconds from 0 to {MAX_WAIT_SECONDS:g}, "
            f"got {_toml(value)}",
        ))
        return None
    return float(value)


def _string(
    data: Mapping[str, Any], key: str, where: _Locator, problems: list[Problem]
) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        shown = "an empty string" if value == "" else _toml(value)
        problems.append(Problem(where.value(key), f"{key}: expected a string, got {shown}"))
        return None
    return value


def _toml(value: Any) -> str:
    """A value as it would be written in TOML, for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return repr(value)


class _Locator:
    """Finds where a top-level key was written; tomllib keeps no positions."""

    def __init__(self, text: str, filename: str) -> None:
        self.filename = filename
        self.lines = text.splitlines()

    def _find(self, key: str) -> tuple[int, int, int] | None:
        """(line, key column, value column) of ``key = …`` before the first table header,
        or of a ``[key]`` / ``[key.…]`` table header."""
        quoted = rf"""(?:{re.escape(key)}|"{re.escape(key)}"|'{re.escape(key)}')"""
        assignment = re.compile(rf"(\s*){quoted}\s*=\s*")
        header = re.compile(rf"(\s*)\[\[?\s*{quoted}\s*[.\]]")
        top_level = True
        for number, line in enumerate(self.lines, start=1):
            found = header.match(line)
            if found:
                column = len(found.group(1)) + 1
                return number, column, column
            if line.lstrip().startswith("["):
                top_level = False
            found = assignment.match(line) if top_level else None
            if found:
                return number, len(found.group(1)) + 1, found.end() + 1
        return None

    def key(self, key: str) -> SourceLocation:
        found = self._find(key)
        return SourceLocation(self.filename, found[0], found[1]) if found else self._start()

    def value(self, key: str) -> SourceLocation:
        found = self._find(key)
        return SourceLocation(self.filename, found[0], found[2]) if found else self._start()

    def _start(self) -> SourceLocation:
        return SourceLocation(self.filename, 1, 1)


_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


def _syntax_problem(text: str, filename: str, exc: tomllib.TOMLDecodeError) -> Problem:
    message = str(exc)
    found = _TOML_POSITION.search(message)
    if found:
        where = SourceLocation(filename, int(found.group(1)), int(found.group(2)))
        message = message[: found.start()]
    else:
        message = message.replace("(at end of document)", "").strip()
        lines = text.splitlines() or [""]
        where = SourceLocation(filename, len(lines), len(lines[-1]) + 1)
    return Problem(where, f"TOML syntax error: {message}")


# --- the edge -------------------------------------------------------------------------------


def find_config(paths: Sequence[str]) -> str | None:
    """The ``reconciler.toml`` that governs the manifests at ``paths``, or None.

    Looks in each path's directory (or the path itself if it is a directory), then its parents,
    stopping after the directory that holds ``.git`` (the repository's root) or at the
    filesystem root. The first path that finds one decides.
    """
    for path in paths:
        start = os.path.abspath(path)
        directory = start if os.path.isdir(start) else os.path.dirname(start)
        while True:
            candidate = os.path.join(directory, CONFIG_FILE)
            if os.path.isfile(candidate):
                return _display(candidate)
            if os.path.exists(os.path.join(directory, ".git")):
                break
            parent = os.path.dirname(directory)
            if parent == directory:
                break
            directory = parent
    return None


def read_config(path: str) -> tuple[ProjectConfig, list[Problem]]:
    """Read and parse one config file, refusing anything that is not a small text file."""
    whole = SourceLocation(path, 0, 0)
    try:
        with open(path, "rb") as handle:
            data = handle.read(_MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        return ProjectConfig(), [Problem(whole, f"cannot read: {exc.strerror or exc}")]
    if len(data) > _MAX_CONFIG_BYTES:
        return ProjectConfig(), [Problem(whole, "file is larger than 1 MiB; not a config file")]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return ProjectConfig(), [Problem(whole, f"not UTF-8 text (byte offset {exc.start})")]
    config, problems = parse_config(text, path)
    return dataclasses.replace(config, path=path), problems


def _display(path: str) -> str:
    """A path relative to the working directory when it is below it, as people typed it."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative
