"""Run each case as a Ray task: spread a sweep over a cluster, one results folder at the end.

Ray (the optional extra `tfbench[ray]`) is imported only when this executor is chosen.

Where: `address` (or the RAY_ADDRESS variable) names a running cluster; with neither, a local
instance is started for the sweep (and stopped after it) with one `bench_node` resource.

Exclusivity through custom resources. Every node of the cluster offers `bench_node: 1`
(`ray start ... --resources='{"bench_node": 1}'`; the local instance does it itself). Then:

    CPU case                       bench_node: 1       the whole node, nothing else runs there
    GPU case, exclusive=node       bench_node: 1, GPU: 1
    GPU case, exclusive=device     bench_node: 0.001, GPU: 1   one case per GPU; a CPU case
                                                              waits until the node's GPU cases end

so a timing never shares its machine (CPU) or its device (GPU). Ray sets CUDA_VISIBLE_DEVICES
for the task, so the case's `cuda` is the GPU it was given.

Each task runs in a fresh worker process (`max_calls=1`): every case starts from the same
state, as with the process executor, at the price of a worker start and the imports (torch)
per case; `fresh_worker=False` reuses workers, like the inline executor does its process. A worker that dies (crash, OOM kill, node lost) is retried
by Ray up to `retries` times; the driver only ever sees the final outcome, so a case is
recorded once: `ok`/`skipped`/`failed: ...` from `run_case`, or `failed: worker died ...` once
the retries are spent. A case that fails by itself (an exception) is not retried.

Timeout: the worker arms a timer of `timeout_s` around `run_case` (per attempt, counted from
the task's start on its node) that sends SIGALRM to its main thread, so an overrunning case
becomes `failed: timeout after N s` at its next Python step (a sleep or a blocking call is
interrupted at once). A case stuck inside one native call is
caught by the driver: past `(timeout_s + GRACE_S) x (retries + 1)` after submission it is
cancelled (its worker killed) and recorded as timed out.

In flight: at most as many cases as the cluster can run at once (nodes for node-exclusive
cases, GPUs for device-exclusive ones), so `on_start` is called close to the real start and
thousands of cases are never queued at once. Closing the generator (Ctrl-C in the driver)
cancels what is still in flight; those cases are simply not recorded and a resume reruns them.

Tests: tests/run/test_ray_executor.py.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Callable, Iterable, Iterator

from bench.machine import process as steady
from bench.case import Case, Measure
from bench.run.executors import Executor

NODE_RESOURCE = "bench_node"
DEVICE_SHARE = 0.001           # bench_node taken by a device-exclusive GPU case (<= 1000 GPUs)
EXCLUSIVE = ("node", "device")
GRACE_S = 30.0                 # driver-side slack over the worker's own timeout, per attempt
POLL_S = 1.0                   # ray.wait timeout: how often the driver checks deadlines


class CaseTimeout(Exception):
    """Raised by the worker's alarm inside run_case."""


def task_options(case: Case, exclusive: str, retries: int) -> dict:
    """Ray task options for one case (see the module docstring for the resource scheme).

    `max_calls=1` (a fresh worker per case) is set on `ray.remote` itself: Ray refuses it in
    `.options()`.
    """
    node_share = 1 if case.device != "cuda" or exclusive == "node" else DEVICE_SHARE
    options = {"num_cpus": 1, "max_retries": retries, "retry_exceptions": False,
               "resources": {NODE_RESOURCE: node_share}}
    if case.device == "cuda":
        options["num_gpus"] = 1
    return options


def capacity(cluster: dict, device: str, exclusive: str) -> int:
    """How many cases of this kind the cluster can run at once (`ray.cluster_resources()`)."""
    nodes = int(cluster.get(NODE_RESOURCE, 0) + 1e-9)
    if device != "cuda":
        return nodes
    gpus = int(cluster.get("GPU", 0) + 1e-9)
    return min(nodes, gpus) if exclusive == "node" else gpus


def require_bench_node(cluster: dict) -> dict:
    """`cluster` (resource totals) back, or a ValueError saying how to start the nodes."""
    if cluster.get(NODE_RESOURCE, 0) < 1:
        raise ValueError(
            f"no node of the Ray cluster offers the {NODE_RESOURCE!r} resource; start each "
            f"node with: ray start ... --resources='{{\"{NODE_RESOURCE}\": 1}}'")
    return cluster


def _timeout_status(timeout_s: float) -> str:
    return f"timeout after {timeout_s:g} s"


def _run_on_worker(case: Case, measure: Measure, prepare: Callable | None,
                   timeout_s: float | None) -> dict:
    """The Ray task: run_case under an alarm, stamped with the Ray node it ran on."""
    import ray

    from bench.run.runner import run_case

    steady.apply()                 # the allocator policy (a Ray worker's own env stays as it is)

    def on_alarm(signum, frame):
        raise CaseTimeout(_timeout_status(timeout_s))

    # A timer thread signals the main thread itself: a process-wide SIGALRM may land on one of
    # Ray's threads and would not interrupt a sleeping or blocked main thread.
    armed = bool(timeout_s) and threading.current_thread() is threading.main_thread()
    if armed:
        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGALRM})
        timer = threading.Timer(timeout_s, signal.pthread_kill,
                                args=(threading.main_thread().ident, signal.SIGALRM))
        timer.daemon = True
        timer.start()
    try:
        record = run_case(case, measure, prepare=prepare)
    finally:
        if armed:
            timer.cancel()
            signal.signal(signal.SIGALRM, previous)
    if armed and record["status"] == f"failed: CaseTimeout: {_timeout_status(timeout_s)}":
        record["status"] = f"failed: {_timeout_status(timeout_s)}"
    record["node_id"] = ray.get_runtime_context().get_node_id()
    record["executor"] = RayExecutor.name
    return record


def _describe_error(exc: BaseException, attempts: int) -> str:
    """`worker died (WorkerCrashedError) after 2 attempt(s): <first line of Ray's message>`."""
    first_line = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return f"worker died ({type(exc).__name__}) after {attempts} attempt(s): {first_line[:300]}"


class RayExecutor(Executor):
    """Each case a Ray task on a fresh worker, one case per node (CPU) or per GPU."""

    name = "ray"

    def __init__(self, prepare: Callable | None = None, address: str | None = None,
                 exclusive: str = "node", retries: int = 0, timeout_s: float | None = None,
                 max_in_flight: int | None = None, fresh_worker: bool = True,
                 init_options: dict | None = None):
        super().__init__(prepare)
        if exclusive not in EXCLUSIVE:
            raise ValueError(f"exclusive must be one of {', '.join(EXCLUSIVE)}, got {exclusive!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be an integer >= 0, got {retries!r}")
        if timeout_s is not None and not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0 seconds, got {timeout_s!r}")
        if max_in_flight is not None and max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight!r}")
        self.address = address
        self.exclusive = exclusive
        self.retries = retries
        self.timeout_s = timeout_s          # None: use Measure.timeout_s
        self.max_in_flight = max_in_flight  # None: what the cluster can run at once
        self.fresh_worker = fresh_worker    # False: reuse workers (no per-case import cost)
        self.init_options = dict(init_options or {})   # extra ray.init arguments (local only)

    # -- connecting ------------------------------------------------------------------------

    def connect(self) -> bool:
        """Join the cluster (address, RAY_ADDRESS) or start a local one; True if started here.

        An already initialised Ray (a test fixture, a notebook) is used as it is.
        """
        import ray

        if ray.is_initialized():
            return False
        self._started_local = True
        address = self.address or os.environ.get("RAY_ADDRESS")
        quiet = {"include_dashboard": False, "log_to_driver": False,
                 "logging_level": logging.WARNING}
        if address:
            ray.init(address=address, **{**quiet, "include_dashboard": None,
                                         **self.init_options})
        else:
            options = {"num_cpus": os.cpu_count(), "resources": {NODE_RESOURCE: 1}, **quiet}
            ray.init(**{**options, **self.init_options})
        return True

    def check_cluster(self) -> dict:
        """`ray.cluster_resources()`, or a ValueError when no node offers `bench_node`."""
        import ray

        return require_bench_node(ray.cluster_resources())

    # -- running ---------------------------------------------------------------------------

    def run(self, cases: Iterable[Case], measure: Measure,
            on_start: Callable[[Case], None] | None = None) -> Iterator[dict]:
        import ray

        started_here = self.connect() or getattr(self, "_started_local", False)
        in_flight: dict = {}                      # ObjectRef -> (case, submitted at)
        try:
            cluster = self.check_cluster()
            yield from self._loop(list(cases), measure, on_start, cluster, in_flight)
        finally:
            for ref in in_flight:
                ray.cancel(ref, force=True)
            if started_here:
                ray.shutdown()

    def _loop(self, cases: list[Case], measure: Measure, on_start, cluster: dict,
              in_flight: dict) -> Iterator[dict]:
        import ray

        timeout = self.timeout_s if self.timeout_s is not None else measure.timeout_s
        deadline_s = (timeout + GRACE_S) * (self.retries + 1) if timeout else None
        remote = ray.remote(max_calls=1 if self.fresh_worker else 0)(_run_on_worker)
        pending = list(cases)
        while pending or in_flight:
            for case in self._submittable(pending, in_flight, cluster):
                if capacity(cluster, case.device, self.exclusive) == 0:
                    yield self._failed(case, "no GPU in the Ray cluster", time.time())
                    continue
                options = task_options(case, self.exclusive, self.retries)
                ref = remote.options(**options).remote(case, measure, self.prepare, timeout)
                in_flight[ref] = (case, time.time())
                if on_start is not None:
                    on_start(case)
            if not in_flight:
                continue
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=POLL_S)
            for ref in ready:
                case, submitted = in_flight.pop(ref)
                yield self._collect(ref, case, submitted)
            if deadline_s is not None:
                now = time.time()
                for ref, (case, submitted) in list(in_flight.items()):
                    if now - submitted > deadline_s:
                        ray.cancel(ref, force=True)
                        del in_flight[ref]
                        yield self._failed(case, f"{_timeout_status(timeout)} (no answer from "
                                                 "the worker; cancelled)", submitted)

    def _submittable(self, pending: list[Case], in_flight: dict, cluster: dict) -> list[Case]:
        """Take from the front of `pending` the cases that fit the in-flight bound now."""
        taken = []
        while pending:
            case = pending[0]
            if self.max_in_flight is not None:
                room = len(in_flight) + len(taken) < self.max_in_flight
            else:
                kind = (case.device == "cuda")
                busy = sum(1 for c, _ in in_flight.values() if (c.device == "cuda") == kind)
                busy += sum(1 for c in taken if (c.device == "cuda") == kind)
                room = busy < max(1, capacity(cluster, case.device, self.exclusive))
            if not room:
                break
            taken.append(pending.pop(0))
        return taken

    def _collect(self, ref, case: Case, submitted: float) -> dict:
        """The worker's record, or a failed record when the task died for good."""
        import ray

        try:
            return ray.get(ref)
        except ray.exceptions.TaskCancelledError:
            return self._failed(case, "cancelled", submitted)
        except ray.exceptions.RayError as exc:
            return self._failed(case, _describe_error(exc, self.retries + 1), submitted)

    def _failed(self, case: Case, reason: str, submitted: float) -> dict:
        """A failed record for a case no worker reported: where it ran is unknown (null)."""
        from bench.run.runner import failed_record

        record = failed_record(case, reason, submitted, executor=self.name)
        record["hostname"] = None
        return record
