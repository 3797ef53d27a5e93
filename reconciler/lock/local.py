"""The lock for one machine: the file ``.reconciler/lock``, an ``flock`` plus a JSON record.

An ``flock`` because the kernel drops it when its holder dies, even by ``kill -9``, so a crash
never leaves the project locked; the record is there so the loser can name the holder, and so
``reconciler lock show`` and ``force-unlock`` have something to read.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from reconciler.lock.holder import (
    Clock,
    HeldWhileInside,
    LockError,
    LockHeldError,
    LockHolder,
    Sleep,
    await_record,
    poll,
)

LOCK_FILE = "lock"
_RECORD_LIMIT = 64 * 1024


def _same_file(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (a release may have unlinked it)."""
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (mine.st_dev, mine.st_ino)


def _read_record(fd: int) -> LockHolder | None:
    """The holder recorded in an open lock file, or None while it is empty, partial or junk."""
    try:
        data = os.pread(fd, _RECORD_LIMIT, 0)
        return LockHolder.from_dict(json.loads(data.decode("utf-8")))
    except (OSError, ValueError, LockError):
        return None


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


class LocalLock(HeldWhileInside):
    """The lock file ``<directory>/lock``: an ``flock`` plus a JSON record of the holder.

    The kernel drops the ``flock`` of a process that dies, so a crash never leaves the project
    locked; the record left behind is only a stale note. A release or a force-unlock removes
    the file, and an acquirer checks that the file it locked is still the one at the path.
    """

    def __init__(
        self,
        directory: Path,
        holder: LockHolder,
        *,
        timeout: float = 0.0,
        poll_interval: float = 0.2,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_FILE
        self.holder = holder
        self.timeout = timeout
        self.poll_interval = poll_interval
        self._clock = clock
        self._sleep = sleep
        self._fd: int | None = None
        self._seen: LockHolder | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, timeout: float) -> None:
        """Take the lock within ``timeout`` seconds; a no-op when this object holds it already."""
        if self._fd is not None:
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LockError(
                f"cannot create the lock folder {self.directory}: {_reason(exc)}"
            ) from exc
        self._seen = None
        if not poll(self._try_once, timeout, self.poll_interval, self._clock, self._sleep):
            if self._seen is None:  # the winner holds the flock but has not written its record
                self._seen = await_record(self._read_path, self._sleep)
            raise LockHeldError(
                self.holder.project, self._seen, timeout, force_unlock_hint=True
            )

    def _read_path(self) -> LockHolder | None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            return _read_record(fd)
        finally:
            os.close(fd)

    def _try_once(self) -> bool:
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as exc:
                raise LockError(f"cannot open the lock file {self.path}: {_reason(exc)}") from exc
            try:
                if not _try_flock(fd):
                    self._seen = _read_record(fd) or self._seen
                    os.close(fd)
                    return False
                if not _same_file(self.path, fd):
                    os.close(fd)  # unlinked by a release or force-unlock since we opened it
                    continue
                data = json.dumps(self.holder.to_dict(), sort_keys=True).encode("utf-8")
                os.ftruncate(fd, 0)
                written = 0
                while written < len(data):
                    written += os.pwrite(fd, data[written:], written)
                os.fsync(fd)
            except OSError as exc:
                os.close(fd)
                raise LockError(f"cannot write the lock file {self.path}: {_reason(exc)}") from exc
            self._fd = fd
            return True

    def release(self) -> None:
        """Remove the lock file if it is still ours, then drop the ``flock``."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if _same_file(self.path, fd):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
        except OSError:
            pass  # closing the descriptor below frees the lock all the same
        finally:
            os.close(fd)


# --- looking at and breaking the lock: `reconciler lock show` and `force-unlock` -------------


@dataclass(frozen=True)
class LockStatus:
    """A look at a local lock: ``held=False`` with a holder is the stale record of a dead one."""

    holder: LockHolder | None
    held: bool


def local_lock_status(directory: Path) -> LockStatus:
    """Whether the local lock is held now, probing with an ``flock`` that is released at once."""
    path = Path(directory) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return LockStatus(holder=None, held=False)
    except OSError as exc:
        raise LockError(f"cannot open the lock file {path}: {_reason(exc)}") from exc
    try:
        free = _try_flock(fd)
        return LockStatus(holder=_read_record(fd), held=not free)
    finally:
        os.close(fd)  # also drops the probe's flock


def force_unlock_local(directory: Path, lock_id: str) -> LockHolder:
    """Break the local lock recorded under ``lock_id`` and return whom it named.

    The file is removed, so the next acquirer makes a fresh one; the old holder, if it is only
    hung, will find its file gone and leave the new one alone.
    """
    path = Path(directory) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise LockError(f"there is no lock to break in {directory}") from None
    except OSError as exc:
        raise LockError(f"cannot open the lock file {path}: {_reason(exc)}") from exc
    try:
        # When nobody holds it, holding it ourselves keeps a new acquirer out while we unlink.
        _try_flock(fd)
        holder = _read_record(fd)
        if holder is None:
            raise LockError(
                f"the lock file {path} holds no readable record; remove it by hand "
                f"if no reconciler is running"
            )
        if holder.lock_id != lock_id:
            raise LockError(
                f"lock id {lock_id} does not match the lock on the project '{holder.project}' "
                f"(lock id {holder.lock_id}); nothing was unlocked"
            )
        if _same_file(path, fd):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        return holder
    except OSError as exc:
        raise LockError(f"cannot remove the lock file {path}: {_reason(exc)}") from exc
    finally:
        os.close(fd)
