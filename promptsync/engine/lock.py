"""A work dir belongs to one process at a time: ``<work_dir>/.lock`` holds the owner's pid, host and start.

Two processes writing one work dir would both append every prediction (duplicate indices, a mixed log). The lock
is taken with an exclusive create; a lock left by a process that no longer exists on this host is taken over
with a warning. Other hosts' locks are never guessed about: the error says how to remove one.
"""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from promptsync.errors import LockError
from promptsync.utils.logging import get_logger

logger = get_logger('lock')
LOCK_NAME = '.lock'


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WorkDirLock:
    def __init__(self, work_dir: str | Path):
        self.path = Path(work_dir) / LOCK_NAME
        self.held = False

    def holder(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def acquire(self) -> 'WorkDirLock':
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = dict(pid=os.getpid(), host=socket.gethostname(), started=time.strftime('%Y-%m-%dT%H:%M:%S'))
        for attempt in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                other = self.holder()
                pid, host = other.get('pid'), other.get('host')
                if attempt == 0 and host == me['host'] and isinstance(pid, int) and not _alive(pid):
                    if self._remove_stale(other):
                        logger.warning('taking over the lock of %s: its process %d is gone', self.path.parent, pid)
                    continue
                raise LockError(
                    f'{self.path.parent} is in use by process {pid} on {host} (since {other.get("started")})',
                    where=str(self.path),
                    fix='wait for that run to finish, or use another --work-dir; if that process is gone, delete '
                        f'{self.path}') from None
            with os.fdopen(fd, 'w') as fh:
                fh.write(json.dumps(me) + '\n')
            self.held = True
            return self
        raise LockError(f'could not lock {self.path.parent}', where=str(self.path))

    def _remove_stale(self, seen: dict) -> bool:
        """Remove the lock ``seen`` (held by a dead process) — unless another process took it over meanwhile.

        The check and the removal run under ``.lock.takeover`` (an exclusive create), so two processes that both
        found the same dead lock cannot remove the one the first of them just wrote.
        """
        guard = self.path.with_name(self.path.name + '.takeover')
        try:
            if time.time() - guard.stat().st_mtime > 60:  # left by a process that died mid-takeover
                guard.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
        try:
            fd = os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False  # someone else is taking it over; the retry sees their lock
        try:
            os.close(fd)
            if self.holder() == seen:
                self.path.unlink(missing_ok=True)
                return True
            return False
        finally:
            guard.unlink(missing_ok=True)

    def release(self) -> None:
        if self.held:
            if self.holder().get('pid') == os.getpid():
                self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> 'WorkDirLock':
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
