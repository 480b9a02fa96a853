"""`run_case(case, measure) -> record`: the unit of work, wherever an executor runs it.

Steps (only step 4 is timed):
  1. memory guard (bench.run.guard): a case predicted not to fit is `skipped: needs X GiB, ...`
  2. threads fixed for the whole case (bench.machine.threads.fixed_threads(case.threads))
  3. plan (bench.plan: declarations + analytic costs, recorded) and prepare (bench.impls.prepare:
     the impl's build): seeded weights and inputs, the callable `fn`
  4. budget probe (bench.run.budget): over Measure.budget_s -> `skipped: estimated N s > budget M s`;
     time it (bench.trackers.timer.measure_time; CUDA: synchronize around each sample), with
     the calibration probe timed right before and after (bench.trackers.calibration: calib_s;
     every pass, `measure.calibrate: false` turns it off)
  5. FLOPs counted once (torch; bench.trackers.flops.count_flops_as_run: on fake tensors when a
     call is slow) vs analytic (tfimpl.costs)
  6. peak memory once (tracemalloc for NumPy, the profiler's memory events for torch on CPU,
     max_memory_allocated on CUDA) vs predicted (tfimpl.costs.predicted_peak_bytes); RSS peak
  7. accuracy: the block at fp64 on the same weights and inputs, outputs compared
     (bench.trackers.accuracy.errors); computed once per block, sizes and seeds by the first
     implementation measured and shared by the others (`accuracy_reference`); at fp64 the
     case is its own reference and the errors are 0.

It never raises: an exception becomes `failed: ExcType: message` with every measurement null.
(KeyboardInterrupt is not an Exception and goes through: the driver decides about Ctrl-C.)
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from typing import Callable

from bench.run import budget, guard
from bench.trackers import memory
from bench import modes
from bench import record as schema
from bench.trackers.accuracy import as_float64, attention_errors, errors
from bench.case import Case, Measure
from bench.trackers.flops import count_flops_as_run
from bench.trackers.interference import time_case
from bench.trackers import calibration
from bench.plan import plan
from bench.profile.record import profile_fields
from bench.impls.prepare import Unsupported
from bench.impls.prepare import prepare as default_prepare
from bench.impls.common import REFERENCES
from bench.machine.threads import fixed_threads

# The record's keys, in order: bench.record declares every field (name, type, unit, stage).
RESULT_KEYS = schema.RESULT_KEYS
RECORD_KEYS = schema.RECORD_KEYS
# Filled from where the case ran, kept even when it failed.
_PLACE_KEYS = ("case_id", "status", "hostname", "pid", "node_id", "gpu_name", "gpu_uuid",
               "start_time",
               "end_time", "elapsed_s", "executor")


class Skip(Exception):
    """Raised inside run_case to record `skipped: <reason>`."""


def empty_record(case: Case) -> dict:
    """Every record key present (bench.record.columns(): the declared fields, then plugin
    metrics' columns): the case's fields, everything else None."""
    record = dict.fromkeys(schema.columns())
    record.update(case.to_dict())
    record["case_id"] = case.case_id
    return record


def failed_record(case: Case, reason: str, start_time: float, pid: int | None = None,
                  executor: str | None = None, hostname: str | None = None) -> dict:
    """A `failed: <reason>` record for a case whose worker never reported (crash, timeout)."""
    record = empty_record(case)
    end = time.time()
    record.update(status=f"failed: {reason}", hostname=hostname or socket.gethostname(),
                  pid=pid, start_time=start_time, end_time=end, elapsed_s=end - start_time,
                  executor=executor)
    return record


def _gpu_identity(case: Case) -> tuple[str | None, str | None]:
    """(name, UUID) of the GPU a cuda case runs on (device 0 of CUDA_VISIBLE_DEVICES)."""
    if case.device != "cuda":
        return None, None
    import torch

    if not torch.cuda.is_available():
        return None, None
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    return props.name, str(getattr(props, "uuid", "")) or None


def run_case(case: Case, measure: Measure, prepare: Callable | None = None) -> dict:
    """Measure one case; return its record (see docs/INTERFACES.md "The record")."""
    start = time.time()
    record = empty_record(case)
    record.update(hostname=socket.gethostname(), pid=os.getpid(), start_time=start,
                  executor="inline")
    try:
        record["gpu_name"], record["gpu_uuid"] = _gpu_identity(case)
        if prepare is None:
            prepare = default_prepare
        _measure_into(record, case, measure, prepare)
        record["status"] = "ok"
    except Skip as reason:
        _clear(record)
        record["status"] = f"skipped: {reason}"
    except Exception as exc:           # MemoryError included; KeyboardInterrupt is not
        _clear(record)
        if isinstance(exc, Unsupported):
            record["status"] = f"skipped: {exc}"
        else:
            message = " ".join(str(exc).split())[:500]
            record["status"] = f"failed: {type(exc).__name__}: {message}"
    end = time.time()
    record.update(end_time=end, elapsed_s=end - start)
    return record


def _clear(record: dict) -> None:
    for key in RESULT_KEYS:
        if key not in _PLACE_KEYS:
            record[key] = None


def _measure_into(record: dict, case: Case, measure: Measure, prepare: Callable) -> None:
    planned = plan(case)
    reason = guard.check(case, measure, planned=planned)
    if reason:
        raise Skip(reason)
    with fixed_threads(case.threads, planned.backend):
        record.update(planned.facts())
        prepared = prepare(case)
        try:
            sync = _sync_for(prepared.device)
            _check_budget(record, case, prepared, measure, sync)
            # the probe call was a first call too: it counts as one of the warm-up calls
            timed = dataclasses.replace(measure, warmup=max(0, measure.warmup - 1))
            _time_into(record, prepared.fn, timed, sync, case, planned.backend)
            record["warmup"] = measure.warmup
            if record["median_s"]:
                record["gflops_per_s"] = record["flops_analytic"] / record["median_s"] / 1e9
            record["compile_s"] = prepared.compile_s
            record["weight_bytes"] = prepared.weight_bytes
            record["graph_optimization"] = prepared.graph_optimization
            if measure.profile:               # per-step breakdown, after the timing, same threads
                record.update(profile_fields(case, record["median_s"]))
            if measure.count_flops and (prepared.backend == "torch" or prepared.count_flops):
                _flops_into(record, prepared)
            if measure.measure_memory:
                _memory_into(record, prepared)
                extra = getattr(prepared.fn, "record_extra", None)   # the mode's own (train)
                if extra is not None:
                    record.update(extra())
            record["fastpath"] = prepared.fastpath
            if measure.accuracy:
                output, weights = prepared.outputs()
        finally:
            prepared.teardown()
            del prepared                      # free the case before the fp64 reference runs
        if measure.accuracy:
            _accuracy_into(record, case, output, weights, prepare)


def _sync_for(device: str):
    if device == "cuda":
        import torch

        return torch.cuda.synchronize
    return None


def _check_budget(record: dict, case: Case, prepared, measure: Measure, sync) -> None:
    """Skip a case the analytic gate or one probe call says would exceed Measure.budget_s."""
    probe_s, reason = budget.probe(prepared.fn, measure.budget_s, measure=measure,
                                   flops=record["flops_analytic"], device=case.device,
                                   precision=case.precision,
                                   counts_flops=prepared.backend == "torch", sync=sync)
    if reason:
        raise Skip(reason.removeprefix("skipped: "))
    record["probe_s"] = probe_s


def _time_into(record: dict, fn: Callable, measure: Measure, sync, case: Case,
               backend: str) -> None:
    # bench.trackers.interference.time_case: warm-up until settled, rounds, re-timed when others
    # interfered; measure.calibrate: the calibration probe timed right before and after it
    def timed():
        return time_case(fn, measure, sync=sync, first_call_s=record.get("probe_s"))

    record.update(calibration.around(case, backend, timed) if measure.calibrate else timed())


def predict(case: Case) -> dict:
    """The analytic side of a record: FLOPs (the mode's parts: forward, + backward) and the
    predicted peak bytes above baseline, both from tfimpl.costs (bench.plan)."""
    planned = plan(case)
    return {"flops_analytic": planned.flops_analytic,
            "peak_bytes_predicted": planned.peak_bytes_predicted}


def _flops_into(record: dict, prepared) -> None:
    """FlopCounterMode once (torch.nn's fast path off: the counter sees 0 inside it; on fake
    tensors when a call is slow: bench.trackers.flops.count_flops_as_run), or the backend's own
    count (Prepared.count_flops: TensorFlow's per-op statistics; None: nothing can count this
    kernel, and the FLOP columns stay null)."""
    if prepared.count_flops:
        counted, method = prepared.count_flops(), "backend"
        if counted is None:                   # a kernel no counter can see into (torch-flex)
            return
    else:
        counted, method = count_flops_as_run(prepared.flops_fn, record.get("probe_s"))
    record["flops_counted"] = int(counted)
    record["flops_method"] = method
    record["flops_match"] = int(counted) == record["flops_analytic"]


def _memory_into(record: dict, prepared) -> None:
    # One call serves both: the exact tracker (tracemalloc / profiler / CUDA) runs inside the
    # RSS sampler, so the cross-check column costs no extra forward.
    exact: dict = {}

    def tracked():
        exact["peak"], exact["method"] = memory.peak_bytes_of(prepared.fn, prepared.backend,
                                                             prepared.device)

    rss = memory.rss_peak(tracked)
    record.update(peak_bytes=int(exact["peak"]), peak_method=exact["method"],
                  rss_peak_bytes=int(rss))


# Fields that choose how a block is computed, not what: one fp64 reference serves them all.
_HOW_FIELDS = ("impl", "precision", "threads", "device", "checkpoint", "compile")


def _reference_key(case: Case):
    """What the fp64 reference of a forward case depends on: the block, its sizes, the seeds of
    its weights and inputs, its options, not the implementation (None: not shared)."""
    if case.mode != "forward":
        return None
    fields = {k: v for k, v in case.to_dict().items() if k not in _HOW_FIELDS}
    return ("fp64 reference",) + tuple(sorted(fields.items()))


def _accuracy_into(record: dict, case: Case, output, weights, prepare: Callable) -> None:
    """Errors of the case's output against the block's float64 run on the same weights and
    inputs. The implementations of a block compute the same function (the parity tests hold
    each to torch.nn / HuggingFace at 1e-12 in fp64), so a forward case's reference is computed
    once, by the first implementation measured on those sizes, and kept (REFERENCES, the seeded
    store's cap) for the others: `accuracy_reference` names the one that computed it. Errors
    between two fp64 references are ~1e-15, far below the 1e-7 (fp32) to 1e-2 (bf16) measured."""
    key = _reference_key(case)
    out_shape = tuple(output.shape)
    want_weights = weights is not None
    if case.precision == "fp64":
        ref_output, ref_weights, by = output, weights, case.impl
    else:
        kept_out = REFERENCES.find((key, "output")) if key else None
        kept_w = REFERENCES.find((key, "weights")) if key and want_weights else None
        if (kept_out is not None and tuple(kept_out["output"].shape) == out_shape
                and (not want_weights or kept_w is not None)):
            ref_output, by = kept_out["output"], str(kept_out["by"])
            ref_weights = kept_w["weights"] if want_weights else None
        else:
            try:
                reference = prepare(dataclasses.replace(case, precision="fp64",
                                                        mode=modes.get(case.mode).reference_mode))
            except Unsupported:
                return                        # no fp64 of this impl/device: errors stay null
            try:
                ref_output, ref_weights = reference.outputs(called=False)
            finally:
                reference.teardown()
            by = case.impl
    if key is not None and hasattr(ref_output, "shape"):
        import numpy as np

        REFERENCES.keep((key, "output"), {"output": as_float64(ref_output), "by": np.array(by)})
        if ref_weights is not None:
            REFERENCES.keep((key, "weights"), {"weights": as_float64(ref_weights)})
    record.update(errors(output, ref_output))
    record["accuracy_reference"] = by
    if weights is not None and ref_weights is not None:
        record.update(attention_errors(weights, ref_weights))
