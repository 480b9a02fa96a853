"""This machine's matmul throughput per library and dtype: the ceiling for "% of peak".

Square matmuls C = A·B of n x n operands (2·n³ FLOPs each, written into a preallocated C so the
allocator stays out of the timing), timed with `bench.trackers.timer.measure_time` under
`bench.machine.threads.fixed_threads(threads)`. For each (library, dtype) and size n the best sample
gives GFLOP/s = 2·n³ / min_s / 1e9; the peak is the best over the sizes. The median-based rate is
kept beside it in `details`.

int8 (torch, CPU): `quantized::linear_dynamic` on an fp32 A and an int8 per-tensor B packed by
fbgemm (`linear_prepack`), with reduce_range=True as torch's DynamicQuantizedLinear calls it:
the kernel every int8 Linear of torch-nn / hf-bert runs, its per-call quantization of A
included; 2·n³ int8 ops per call, so "GFLOP/s" is GOP/s there.

Not run, recorded as null with the reason: bf16 in NumPy (no such dtype) and fp16 on a CPU
(no BLAS kernel: emulated at 0.4-3 GFLOP/s, one 2048³ matmul took 41 s). On CUDA, torch gets
fp16, bf16 and tf32 (fp32 storage, TF32 tensor cores) too.

Beside the matmul peak, the sustained memory bandwidth (bench.machine.bandwidth: STREAM copy and triad
on arrays well past the last-level cache, same threads, NumPy and torch) in result["bandwidth"],
and the ridge point of the roofline, peak FLOP/s / triad bandwidth (FLOP per byte), per library
and dtype in result["ridge"]: a step whose arithmetic intensity is below it cannot reach the
matmul peak however good its kernel is.

The result is cached as JSON in `~/.cache/tfbench/peak-<hostname>[-cuda]-<threads>.json` (or
under $XDG_CACHE_HOME), valid while its key (CPU model, threads, device, torch and numpy
versions, BLAS environment variables) matches this process, so a run can put it in meta.json
without spending the ~15 s again.
"""

from __future__ import annotations

import json
import os
import socket
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Callable, Iterator

from bench.machine import bandwidth
from bench.case import Measure
from bench.machine.environment import cpu_model, package_versions
from bench.machine.threads import fixed_threads
from bench.trackers.timer import CudaEventTimer, measure_time

DEFAULT_SIZES = (1024, 2048)
DEFAULT_TIME_BUDGET_S = 12.0
# A (library, dtype) whose next size would take longer than this (or half the time budget, if
# more) per call stops at the size it reached (its peak from the sizes measured, with a note): bf16 emulated on an AVX2-only CPU ran
# at 0.3 GFLOP/s, 57 s for one 2048^3 call, which made a first run's peak measurement ~140 s.
SLOW_CALL_S = 1.0
DEFAULT_BANDWIDTH_BUDGET_S = 4.0
LIBRARIES = ("numpy", "torch")
CPU_DTYPES = ("fp64", "fp32", "bf16", "fp16", "int8")
CUDA_TORCH_DTYPES = ("fp64", "fp32", "tf32", "bf16", "fp16")
KEY_ENV_PREFIXES = ("OPENBLAS_", "OMP_", "MKL_", "KMP_", "GOMP_")
# Not speed knobs of a matmul: set by threadpoolctl on import (KMP_DUPLICATE_LIB_OK), by a
# library at fork (KMP_INIT_AT_FORK), or by tfbench's own process settings for every command
# (OPENBLAS_THREAD_TIMEOUT, bench.machine.process: idle workers sleep). With them in the key, a
# `python -m bench` process and an in-process caller (a test, a notebook) each found the other's
# cache stale and measured the peak again, every time.
KEY_ENV_IGNORED = {"KMP_DUPLICATE_LIB_OK", "KMP_INIT_AT_FORK", "OPENBLAS_THREAD_TIMEOUT"}

NOT_RUN = {
    ("numpy", "bf16"): "NumPy has no bfloat16 dtype",
    ("numpy", "fp16"): "NumPy fp16 matmul has no BLAS kernel (emulated, ~1 GFLOP/s); not run",
    ("numpy", "tf32"): "TF32 is a CUDA tensor-core mode",
    ("torch", "fp16", "cpu"): ("torch fp16 CPU matmul not run (not measured here: on the CPUs "
                               "measured so far it was emulated at 0.4-3 GFLOP/s, one 2048^3 "
                               "matmul took 41 s)"),
    ("torch", "tf32", "cpu"): "TF32 is a CUDA tensor-core mode",
    ("numpy", "int8"): "NumPy's integer matmul is no BLAS kernel (a plain loop); not run",
}


def matmul_gflops(n: int, seconds: float) -> float:
    """GFLOP/s of one n x n by n x n matmul taking `seconds`: 2·n³ / seconds / 1e9."""
    if n < 1:
        raise ValueError(f"n: expected a size >= 1, got {n}")
    if not seconds > 0:
        raise ValueError(f"seconds: expected a duration > 0, got {seconds}")
    return 2.0 * n ** 3 / seconds / 1e9


def not_run_reason(library: str, dtype: str, device: str) -> str | None:
    """Why (library, dtype) is not measured on `device`, or None when it is."""
    if library == "numpy":
        return NOT_RUN.get((library, dtype))
    return NOT_RUN.get((library, dtype, device))


def _dtypes(library: str, device: str) -> tuple[str, ...]:
    return CUDA_TORCH_DTYPES if (library == "torch" and device == "cuda") else CPU_DTYPES


def _numpy_matmul(dtype: str, n: int, seed: int) -> Callable[[], object]:
    import numpy as np

    rng = np.random.default_rng(seed)
    np_dtype = {"fp64": np.float64, "fp32": np.float32}[dtype]
    a = rng.standard_normal((n, n)).astype(np_dtype)     # (n, n)
    b = rng.standard_normal((n, n)).astype(np_dtype)     # (n, n)
    c = np.empty((n, n), dtype=np_dtype)                 # (n, n), reused
    return lambda: np.matmul(a, b, out=c)


def _torch_matmul(dtype: str, n: int, seed: int, device: str) -> Callable[[], object]:
    import torch

    if dtype == "int8":
        return _torch_int8_linear(n, seed)
    torch_dtype = {"fp64": torch.float64, "fp32": torch.float32, "tf32": torch.float32,
                   "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, n, generator=g).to(device=device, dtype=torch_dtype)   # (n, n)
    b = torch.randn(n, n, generator=g).to(device=device, dtype=torch_dtype)   # (n, n)
    c = torch.empty(n, n, device=device, dtype=torch_dtype)                   # (n, n), reused
    return lambda: torch.mm(a, b, out=c)


def _torch_int8_linear(n: int, seed: int) -> Callable[[], object]:
    import torch

    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, n, generator=g)                                        # (n, n) fp32
    w = torch.quantize_per_tensor(torch.randn(n, n, generator=g), 4.0 / 127, 0, torch.qint8)
    packed = torch.ops.quantized.linear_prepack(w, None)                      # (n, n) int8
    return lambda: torch.ops.quantized.linear_dynamic(a, packed, True)        # (n, n) fp32


@contextmanager
def _cuda_tf32(allow: bool) -> Iterator[None]:
    """CUDA matmuls in TF32 exactly when `allow` (the `tf32` entry), restored after."""
    import torch

    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = allow
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous


def measure_one(library: str, dtype: str, n: int, settings: Measure, device: str = "cpu",
                clock: Callable[[], float] = time.perf_counter, seed: int = 0) -> dict:
    """Time one n³ matmul; {"n", "min_s", "median_s", "n_samples", "gflops", "gflops_median"}."""
    if library == "numpy":
        fn = _numpy_matmul(dtype, n, seed)
    elif library == "torch":
        fn = _torch_matmul(dtype, n, seed, device)
    else:
        raise ValueError(f"library: expected one of {LIBRARIES}, got {library!r}")
    on_gpu = library == "torch" and device == "cuda"
    with _cuda_tf32(dtype == "tf32") if on_gpu else nullcontext():
        stats = measure_time(fn, settings, clock=clock,
                             timer_factory=CudaEventTimer if on_gpu else None)
    return {"n": n, "min_s": stats.min_s, "median_s": stats.median_s,
            "n_samples": stats.n_samples, "gflops": matmul_gflops(n, stats.min_s),
            "gflops_median": matmul_gflops(n, stats.median_s)}


def default_threads() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def measure_peak(threads: int | None = None, sizes=DEFAULT_SIZES,
                 time_budget_s: float = DEFAULT_TIME_BUDGET_S, device: str = "cpu",
                 clock: Callable[[], float] = time.perf_counter, seed: int = 0,
                 bandwidth_bytes: int | None = None,
                 bandwidth_budget_s: float = DEFAULT_BANDWIDTH_BUDGET_S) -> dict:
    """Peak matmul GFLOP/s per library and dtype: {"numpy": {"fp64": g, ...}, "torch": {...},
    "notes": {"numpy.bf16": reason, ...}, "details": {"torch.fp32": [per-size dicts]},
    "bandwidth": bench.machine.bandwidth.measure_bandwidth(...), "ridge": {lib: {dtype: FLOP/B}}, ...}.

    `time_budget_s` of timed time is shared equally among the (library, dtype, size) points;
    the bandwidth gets `bandwidth_budget_s` more, on arrays of `bandwidth_bytes` (default:
    4x the last-level cache, at least 128 MiB). `load_avg_before` (1-minute load average at
    the start) tells whether other work competed.
    """
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device: expected 'cpu' or 'cuda', got {device!r}")
    threads = default_threads() if threads is None else threads
    sizes = tuple(sizes)
    if not sizes or any(not isinstance(n, int) or n < 1 for n in sizes):
        raise ValueError(f"sizes: expected positive integers, got {sizes!r}")
    if not time_budget_s > 0:
        raise ValueError(f"time_budget_s: expected > 0, got {time_budget_s!r}")

    plan = [(lib, dt) for lib in LIBRARIES for dt in _dtypes(lib, device)
            if not_run_reason(lib, dt, device) is None]
    share_s = time_budget_s / (len(plan) * len(sizes))
    settings = Measure(warmup=1, min_repeats=3, min_time_s=share_s, max_time_s=2 * share_s)

    result: dict = {lib: {} for lib in LIBRARIES}
    notes, details = {}, {}
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    started = time.perf_counter()
    with fixed_threads(threads):
        for lib in LIBRARIES:
            for dt in _dtypes(lib, device):
                reason = not_run_reason(lib, dt, device)
                if reason is not None:
                    result[lib][dt] = None
                    notes[f"{lib}.{dt}"] = reason
                    continue
                points = []
                for n in sizes:
                    if points:                # a slow dtype stops before a call of many seconds
                        last = points[-1]
                        guess = last["min_s"] * (n / last["n"]) ** 3
                        if guess > max(SLOW_CALL_S, time_budget_s / 2):
                            notes[f"{lib}.{dt}"] = (
                                f"sizes above {last['n']} not run: one {n}^3 call would take "
                                f"~{guess:.0f} s at {last['gflops']:.2g} GFLOP/s")
                            break
                    points.append(measure_one(lib, dt, n, settings, device, clock, seed))
                details[f"{lib}.{dt}"] = points
                result[lib][dt] = max(p["gflops"] for p in points)
        result["bandwidth"] = bandwidth.measure_bandwidth(threads, bandwidth_bytes, device,
                                                          bandwidth_budget_s, clock, seed)
    result["ridge"] = bandwidth.ridge_points(result, result["bandwidth"])
    result.update(notes=notes, details=details, threads=threads, device=device,
                  sizes=list(sizes), time_budget_s=time_budget_s, load_avg_before=load_before,
                  elapsed_s=time.perf_counter() - started, measured_at=time.time(),
                  key=cache_key(threads, device))
    return result


# --- cache -------------------------------------------------------------------------------------

def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tfbench"


def cache_path(threads: int, device: str = "cpu", directory: Path | None = None) -> Path:
    suffix = "-cuda" if device == "cuda" else ""
    return Path(directory or cache_dir()) / f"peak-{socket.gethostname()}{suffix}-{threads}.json"


def cache_key(threads: int, device: str = "cpu") -> dict:
    """What the peak depends on; a cached result is reused only while all of it matches."""
    versions = package_versions(("numpy", "torch"))
    key = {"hostname": socket.gethostname(), "cpu_model": cpu_model(), "threads": threads,
           "device": device, "numpy": versions["numpy"], "torch": versions["torch"],
           "env": {k: v for k, v in sorted(os.environ.items())
                   if k.startswith(KEY_ENV_PREFIXES) and k not in KEY_ENV_IGNORED}}
    if device == "cuda":
        import torch

        key["gpu_name"] = torch.cuda.get_device_name(0)
    return key


def load_cached(threads: int, device: str = "cpu", directory: Path | None = None) -> dict | None:
    """The cached peak if its file is readable, its key matches this machine now and it has
    the bandwidth and, on CPU, torch's int8 entry (a cache written before bench.machine.peak
    measured them is stale; the key itself is unchanged, so such a cache is replaced in place)."""
    path = cache_path(threads, device, directory)
    try:
        cached = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(cached, dict) or cached.get("key") != cache_key(threads, device):
        return None
    if not isinstance(cached.get("bandwidth"), dict):
        return None
    if device == "cpu" and "int8" not in (cached.get("torch") or {}):
        return None                       # written before the int8 peak was measured: stale
    return cached


def save(result: dict, directory: Path | None = None) -> Path:
    """Write atomically (temporary file, then rename) and return the path."""
    path = cache_path(result["threads"], result["device"], directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, path)
    return path


def load_or_measure_peak(threads: int | None = None, cache: bool = True, measure: bool = True,
                         device: str = "cpu", directory: Path | None = None,
                         measure_fn: Callable[..., dict] = measure_peak, **measure_kwargs
                         ) -> dict | None:
    """The cached peak, else a fresh measurement (saved to the cache), else None.

    cache=False ignores a cached result (the fresh one still replaces it); measure=False never
    measures (None when nothing valid is cached). The result says where it came from:
    result["source"] is "cache" or "measured", result["cache_path"] the file.
    """
    threads = default_threads() if threads is None else threads
    if cache:
        cached = load_cached(threads, device, directory)
        if cached is not None:
            return {**cached, "source": "cache",
                    "cache_path": str(cache_path(threads, device, directory))}
    if not measure:
        return None
    result = measure_fn(threads=threads, device=device, **measure_kwargs)
    path = save(result, directory)
    return {**result, "source": "measured", "cache_path": str(path)}
