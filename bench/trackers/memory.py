"""Peak memory of one call, in bytes above what was allocated before it.

Each backend has one tool that sees its allocations exactly:

- NumPy: `tracemalloc` (NumPy reports its data buffers to it; so do Python objects).
  peak = traced peak during the call - traced current before it.
- torch on CPU: the profiler's `[memory]` events (one per allocation, `nbytes() < 0` for a free).
  Sorted by start time, their running sum is the live memory above the start; peak = its max.
  (tracemalloc does not see torch's allocator.)
- torch on CUDA: `max_memory_allocated()` after `reset_peak_memory_stats()`, minus
  `memory_allocated()` before.

- ONNX Runtime: its arena allocator reports to none of these: `rss_peak`, method "rss-sampler".

`rss_peak` (a thread polling the process RSS, plus ru_maxrss) is a coarse cross-check: it sees everything,
including allocator caching and page reuse, so it rarely matches the exact numbers.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import tracemalloc
from typing import Callable

from bench.trackers import tf_runtime

METHODS = {"numpy": "tracemalloc", "torch-cpu": "torch-profiler", "cuda": "cuda-max-allocated",
           "onnxruntime": "rss-sampler"}


def peak_numpy(fn: Callable[[], object]) -> int:
    """Peak bytes traced by tracemalloc during `fn()`, above the traced bytes before it."""
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return max(0, peak - before)


def running_peak(deltas: list[int]) -> int:
    """max over k of sum(deltas[:k+1]), floored at 0: the highest live total above the start."""
    live = peak = 0
    for delta in deltas:
        live += delta
        peak = max(peak, live)
    return peak


def peak_torch_cpu(fn: Callable[[], object]) -> int:
    """Peak CPU bytes allocated by torch during `fn()`, from the profiler's memory events."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    with _quiet_kineto():
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            fn()
    events = [e for e in prof.profiler.kineto_results.events()
              if e.name() == "[memory]" and e.device_type() == DeviceType.CPU]
    events.sort(key=lambda e: e.start_ns())
    return running_peak([e.nbytes() for e in events])


@contextlib.contextmanager
def _quiet_kineto():
    """Drop the `USDT: ... profiler_start/stop` lines libkineto writes to fd 2 at every profile.

    They come from C++ (no Python logger or env var silences them), so fd 2 goes to a temporary
    file for the duration and every other line is passed on to the real stderr afterwards.
    """
    try:
        stderr_fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):     # pytest capture, notebooks: leave it be
        yield
        return
    sys.stderr.flush()
    saved = os.dup(stderr_fd)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), stderr_fd)
        try:
            yield
        finally:
            os.dup2(saved, stderr_fd)
            os.close(saved)
            sink.seek(0)
            kept = [line for line in sink.read().decode(errors="replace").splitlines(True)
                    if not line.startswith("USDT:")]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def peak_cuda(fn: Callable[[], object], device=None) -> int:
    """Peak CUDA bytes allocated during `fn()` above those allocated before it."""
    import torch

    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    torch.cuda.synchronize(device)
    return max(0, torch.cuda.max_memory_allocated(device) - before)


def rss_peak(fn: Callable[[], object], interval_s: float = 0.002) -> int:
    """Peak process RSS while `fn()` runs minus the RSS just before it.

    A thread of this process polls the resident set size (psutil, which memory-profiler also
    reads) every `interval_s` while `fn` runs, and the kernel's lifetime high-water mark
    (getrusage ru_maxrss) catches a spike the polling missed whenever `fn` sets a new one.
    memory-profiler's own `memory_usage` polls from a forked process instead; forking a
    multi-threaded process with a large heap left the next measurements 5-10 ms slower per
    call on a 2-core machine (copy-on-write and the child's teardown compete for the cores),
    so the sampler stays in-process. RSS sees only pages newly made resident: memory the
    allocator reuses from earlier work does not show, so small peaks read low.
    """
    import resource
    import threading

    import psutil

    process = psutil.Process()
    before = process.memory_info().rss
    lifetime_before = _max_rss_bytes(resource)
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            done.wait(interval_s)

    sampler = threading.Thread(target=sample, name="tfbench-rss", daemon=True)
    sampler.start()
    try:
        fn()
    finally:
        done.set()
        sampler.join()
    peak[0] = max(peak[0], process.memory_info().rss)
    lifetime_after = _max_rss_bytes(resource)
    exact = lifetime_after - before if lifetime_after > lifetime_before else 0
    return max(0, peak[0] - before, exact)


def _max_rss_bytes(resource) -> int:
    """getrusage's ru_maxrss in bytes (Linux reports KiB, macOS bytes)."""
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return value if sys.platform == "darwin" else value * 1024


def peak_bytes_of(fn: Callable[[], object], backend: str, device: str = "cpu") -> tuple[int, str]:
    """(peak bytes above baseline, method) with the exact tool for `backend` on `device`."""
    if backend == "numpy":
        if device != "cpu":
            raise ValueError(f"device: NumPy runs on 'cpu' only, got {device!r}")
        return peak_numpy(fn), METHODS["numpy"]
    if backend == "torch":
        if device == "cpu":
            return peak_torch_cpu(fn), METHODS["torch-cpu"]
        if device == "cuda":
            return peak_cuda(fn), METHODS["cuda"]
        raise ValueError(f"device: expected 'cpu' or 'cuda', got {device!r}")
    if backend == "tensorflow":                   # TensorFlow's allocator statistics
        if tf_runtime.has_allocator_stats(device):
            return tf_runtime.peak_tf(fn, device), tf_runtime.METHOD
        return rss_peak(fn), tf_runtime.RSS_METHOD
    if backend == "onnxruntime":                  # its arena: only the process sees it
        return rss_peak(fn), METHODS["onnxruntime"]
    raise ValueError(f"backend: expected 'numpy', 'torch', 'tensorflow' or 'onnxruntime', "
                     f"got {backend!r}")
