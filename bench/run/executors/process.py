"""Run each case in a fresh process (multiprocessing `spawn`), with a timeout.

A fresh interpreter per case gives every case the same starting state (no allocator or cache
left over from the previous case, a clean RSS peak) and contains crashes: a segfault, an
`os._exit`, the OOM killer or a case running past `Measure.timeout_s` becomes a `failed: ...`
record and the sweep goes on. The cost is an interpreter start and the imports (~1-2 s) per case;
the timeout counts from the worker's start, so it includes them.

The worker dies with the driver (Linux `PR_SET_PDEATHSIG`): after a `kill -9` of the driver no
orphaned case keeps the CPU busy while the run is resumed. The worker ignores SIGINT: a Ctrl-C
in the terminal reaches the whole process group, and the driver, not the worker, decides to
stop after the current case (see `bench.commands.run`).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from typing import Callable, Iterable, Iterator

from bench.machine import process as steady
from bench.case import Case, Measure
from bench.run.executors import Executor


def _die_with_parent(parent_pid: int) -> None:
    """Linux: SIGKILL this worker when the driver dies (kill -9 included), so an orphaned
    case cannot keep running beside the resumed run and disturb its timings."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)        # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return                                           # not Linux: best effort only
    if os.getppid() != parent_pid:                       # the driver died before prctl
        os._exit(1)


def _worker(case: Case, measure: Measure, prepare: Callable | None, conn,
            parent_pid: int | None = None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if parent_pid is not None:
        _die_with_parent(parent_pid)
    steady.apply()                 # the allocator policy is per process (the env is inherited)
    from bench.run.runner import run_case

    record = run_case(case, measure, prepare=prepare)
    conn.send(record)
    conn.close()


def describe_exit(exitcode: int | None) -> str:
    """`worker died with signal 9 (SIGKILL)` / `worker exited with code 3` / `... no result`."""
    if exitcode is None:
        return "worker did not exit"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            return f"worker died with signal {-exitcode}"
        return f"worker died with signal {-exitcode} ({name})"
    if exitcode == 0:
        return "worker exited without a result"
    return f"worker exited with code {exitcode}"


class ProcessExecutor(Executor):
    """One spawned process per case; a case past `timeout_s` is killed and recorded failed."""

    name = "process"

    def __init__(self, prepare: Callable | None = None, timeout_s: float | None = None):
        super().__init__(prepare)
        self.timeout_s = timeout_s          # None: use Measure.timeout_s

    def run(self, cases: Iterable[Case], measure: Measure,
            on_start: Callable[[Case], None] | None = None) -> Iterator[dict]:
        timeout = self.timeout_s if self.timeout_s is not None else measure.timeout_s
        for case in cases:
            if on_start is not None:
                on_start(case)
            record = self.run_one(case, measure, timeout)
            record["executor"] = self.name
            yield record

    def run_one(self, case: Case, measure: Measure, timeout_s: float) -> dict:
        from bench.run.runner import failed_record

        ctx = mp.get_context("spawn")
        receiver, sender = ctx.Pipe(duplex=False)
        worker = ctx.Process(target=_worker, args=(case, measure, self.prepare, sender,
                                                   os.getpid()),
                             name=f"tfbench-{case.case_id}")
        start = time.time()
        worker.start()
        sender.close()                      # our copy; EOF on `receiver` once the worker is gone
        try:
            if receiver.poll(timeout_s):
                try:
                    record = receiver.recv()
                except EOFError:            # the worker died before sending
                    worker.join(5.0)
                    return failed_record(case, describe_exit(worker.exitcode), start,
                                         pid=worker.pid, executor=self.name)
                worker.join(5.0)
                return record
            return failed_record(case, f"timeout after {timeout_s:g} s", start,
                                 pid=worker.pid, executor=self.name)
        finally:
            receiver.close()
            if worker.is_alive():
                worker.kill()
                worker.join()
