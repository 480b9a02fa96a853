"""Sustained memory bandwidth, STREAM-style (McCalpin 1995): the roofline's sloped ceiling.

Two kernels over arrays of `n` elements each, far larger than the last-level cache so every
pass goes to DRAM, with the bytes each one must move (STREAM's counting: every array read or
written once per pass; a write-allocate read of the destination is not counted):

    copy    c = a              2·n·s bytes
    triad   a = b + q·c        3·n·s bytes           (s bytes per element, q a scalar)

NumPy: each pass is cut into chunks (~256 KiB, L2-sized) shared by `threads` Python threads
(NumPy releases the GIL in its loops), as tfimpl.numpy shares its element-wise passes. The
triad's q·c goes into a per-thread chunk buffer that stays in cache, so DRAM sees the same
3·n·s bytes as STREAM's fused loop. torch: `copy_` and `torch.add(b, c, alpha=q, out=a)`, one
fused kernel each, on torch's intra-op pool of `threads`.

GB/s = bytes / best sample (the peak convention of bench.machine.peak); the median's rate is kept too.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from bench.case import Measure
from bench.machine.environment import cache_bytes
from bench.trackers.timer import CudaEventTimer, measure_time

KERNELS = ("copy", "triad")
BYTES_PER_ELEMENT = 8                    # float64 arrays, as STREAM
CHUNK_ELEMENTS = 1 << 15                 # 256 KiB of float64 per NumPy chunk
LLC_MULTIPLE = 4                         # each array >= 4x the last-level cache
MIN_ARRAY_BYTES = 128 << 20
MAX_ARRAY_BYTES = 256 << 20              # ... but never above this (see default_array_bytes)
TRIAD_SCALAR = 3.0


def bytes_moved(kernel: str, n: int, itemsize: int = BYTES_PER_ELEMENT) -> int:
    """STREAM's count: copy reads a and writes c (2·n·s); triad reads b, c, writes a (3·n·s)."""
    arrays = {"copy": 2, "triad": 3}
    if kernel not in arrays:
        raise ValueError(f"kernel: expected one of {KERNELS}, got {kernel!r}")
    return arrays[kernel] * n * itemsize


def rate_gbps(kernel: str, n: int, seconds: float) -> float:
    """GB/s of one pass of `kernel` over n float64 elements taking `seconds`."""
    if not seconds > 0:
        raise ValueError(f"seconds: expected a duration > 0, got {seconds!r}")
    return bytes_moved(kernel, n) / seconds / 1e9


def default_array_bytes(llc_bytes: int | None) -> int:
    """LLC_MULTIPLE x the last-level cache per array, within [128 MiB, 256 MiB].

    The cap: a VM reports its host socket's L3 (a 2-vCPU Xeon guest said 260 MiB, shared by every
    tenant), and 4x that is three 1 GiB arrays whose allocation and first touch took a run's
    peak measurement to 37 s. 256 MiB arrays are 8x a 32 MiB L3 (and far above a 2-core slice
    of a shared one); on a CPU whose own cache really holds them, the figure is partly a cache
    bandwidth, and meta.json records the array size beside it."""
    return min(max(LLC_MULTIPLE * (llc_bytes or 0), MIN_ARRAY_BYTES), MAX_ARRAY_BYTES)


def last_level_cache_bytes() -> int | None:
    """The largest data cache bench.machine.environment finds (L3, else L2), None when unknown."""
    try:
        sizes = cache_bytes()
    except OSError:
        return None
    for key in ("L3", "L2"):
        if sizes.get(key):
            return int(sizes[key])
    return None


def _chunks(n: int, step: int = CHUNK_ELEMENTS) -> list[slice]:
    return [slice(start, min(n, start + step)) for start in range(0, n, step)]


def numpy_kernels(n: int, threads: int, seed: int = 0) -> dict[str, Callable[[], None]]:
    """{"copy": fn, "triad": fn, "arrays": (a, b, c)} over float64 arrays of n elements."""
    import numpy as np

    rng = np.random.default_rng(seed)
    a, b, c = (rng.standard_normal(n) for _ in range(3))            # (n,) each, float64
    chunks = _chunks(n)
    pool = ThreadPoolExecutor(max_workers=threads) if threads > 1 else None
    local = threading.local()                                       # one q·c buffer per thread

    def run(fn):
        if pool is None:
            for chunk in chunks:
                fn(chunk)
        else:
            for _ in pool.map(fn, chunks):
                pass

    def copy_chunk(s):
        np.copyto(c[s], a[s])

    def triad_chunk(s):
        if not hasattr(local, "tmp"):
            local.tmp = np.empty(CHUNK_ELEMENTS)
        tmp = local.tmp[: s.stop - s.start]
        np.multiply(c[s], TRIAD_SCALAR, out=tmp)                    # q·c, in cache
        np.add(b[s], tmp, out=a[s])                                 # a = b + q·c

    return {"copy": lambda: run(copy_chunk), "triad": lambda: run(triad_chunk),
            "arrays": (a, b, c), "close": (pool.shutdown if pool else (lambda: None))}


def torch_kernels(n: int, seed: int = 0, device: str = "cpu") -> dict:
    import torch

    g = torch.Generator().manual_seed(seed)
    a, b, c = (torch.randn(n, generator=g, dtype=torch.float64).to(device) for _ in range(3))
    return {"copy": lambda: c.copy_(a), "triad": lambda: torch.add(b, c, alpha=TRIAD_SCALAR, out=a),
            "arrays": (a, b, c), "close": lambda: None}


def measure_bandwidth(threads: int, array_bytes: int | None = None, device: str = "cpu",
                      time_budget_s: float = 4.0, clock: Callable[[], float] = time.perf_counter,
                      seed: int = 0) -> dict:
    """{"numpy": {"copy": GB/s, "triad": GB/s}, "torch": {...}, "details": {...}, ...}.

    NumPy always runs on the CPU; torch on `device` (CUDA events time it there).
    Call under bench.machine.threads.fixed_threads(threads), as bench.machine.peak does.
    """
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads: expected an integer >= 1, got {threads!r}")
    array_bytes = default_array_bytes(last_level_cache_bytes()) if array_bytes is None else array_bytes
    if not isinstance(array_bytes, int) or array_bytes < BYTES_PER_ELEMENT:
        raise ValueError(f"array_bytes: expected an integer >= {BYTES_PER_ELEMENT}, got {array_bytes!r}")
    n = array_bytes // BYTES_PER_ELEMENT
    share_s = time_budget_s / (2 * len(KERNELS))
    settings = Measure(warmup=1, min_repeats=3, min_time_s=share_s, max_time_s=2 * share_s)
    result: dict = {"numpy": {}, "torch": {}, "details": {}, "array_bytes": n * BYTES_PER_ELEMENT,
                    "elements": n, "threads": threads, "device": device}
    for library in ("numpy", "torch"):
        kernels = numpy_kernels(n, threads, seed) if library == "numpy" else torch_kernels(n, seed, device)
        on_gpu = library == "torch" and device == "cuda"
        try:
            for kernel in KERNELS:
                stats = measure_time(kernels[kernel], settings, clock=clock,
                                     timer_factory=CudaEventTimer if on_gpu else None)
                result[library][kernel] = rate_gbps(kernel, n, stats.min_s)
                result["details"][f"{library}.{kernel}"] = {
                    "bytes": bytes_moved(kernel, n), "min_s": stats.min_s,
                    "median_s": stats.median_s, "n_samples": stats.n_samples,
                    "gbps_median": rate_gbps(kernel, n, stats.median_s)}
        finally:
            kernels["close"]()
            del kernels
    return result


def ridge_points(matmul_peak: dict, bandwidth: dict, kernel: str = "triad") -> dict:
    """{library: {dtype: FLOP per byte}}: peak GFLOP/s / bandwidth GB/s (None where either is)."""
    out: dict = {}
    for library in ("numpy", "torch"):
        gbps = (bandwidth.get(library) or {}).get(kernel)
        table = matmul_peak.get(library) or {}
        out[library] = {dtype: (gflops / gbps if gflops and gbps else None)
                        for dtype, gflops in table.items()}
    return out
