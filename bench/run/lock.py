"""An exclusive lock on a run folder: one `bench run` writes a folder at a time.

The lock is `RUN_DIR/run.lock`, held with `fcntl.flock(LOCK_EX | LOCK_NB)` for the whole run and
holding one JSON line {"pid", "host", "since"} that names the holder. The kernel releases a
flock when its process dies, however it dies (kill -9 included), so a lock file left behind by
a dead run is taken over by the next one (`RunLock.took_over` keeps what it said); nothing has
to guess whether a pid is alive, and a reused pid cannot keep a folder locked. (flock over NFS
depends on the server; run folders are meant to live on a local disk.)

    with RunLock(run_dir):          # RunLocked("... locked by pid 123 on host h since ...")
        ...                         # write records

Tests: tests/run/test_rundir.py.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

# Reading the lock file (who holds it, whether a run holds it now) is the read side's
# (bench.reader: the analysis asks without importing bench.run); re-exported here.
from bench.reader import LOCK_FILE, describe_holder, holder_running, read_holder  # noqa: F401


class RunLocked(RuntimeError):
    """The run folder is held by another live run; the message names its pid and host."""


def pid_alive(pid) -> bool:
    """True when a process with this pid exists on this host (signal 0 probes, sends nothing)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """Exclusive lock on `run_dir` (created if missing); see the module docstring."""

    def __init__(self, run_dir: str | os.PathLike):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self._fd: int | None = None
        self.took_over: dict | None = None      # the dead holder's record, when taken over

    def acquire(self) -> "RunLock":
        import fcntl

        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunLocked(f"{self.run_dir} is in use by another run "
                            f"({describe_holder(read_holder(self.run_dir))}); wait for it to "
                            f"finish, or use another --out") from None
        previous = read_holder(self.run_dir)
        if previous:
            self.took_over = previous            # its process is gone: flock was free
        record = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        """Unlock; the file stays (removing it would race with a run that opened it)."""
        import fcntl

        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
