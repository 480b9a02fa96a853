"""Share NumPy work between threads: element-wise passes in row blocks, attention in tiles.

NumPy's element-wise functions (exp, max, erf, ...) run on one core; its matrix products use all
the threads BLAS is allowed (set with threadpoolctl, as the benchmark harness does). To keep the
two on equal terms, long element-wise passes are cut into row blocks that Python threads share:
NumPy releases the GIL inside its loops, so the blocks run truly in parallel.

Many small matrix products (attention's per-head Q·Kᵀ and weights·V) are another case: BLAS
threads spend more time synchronising than computing on them. `map_tiles` runs such tiles on
our own threads instead, each tile's products single-threaded, for the duration of the call.

The threads are made once per process and kept (one pool per worker count): starting two
threads on every call cost more than a small pass itself (a NumPy FFN at T=128 on a 2-core
machine: best quarter-second median 8.5 ms with a pool per call, 6.9 ms with the kept pool).
A call made from one of the pool's own threads runs inline (a pool thread waiting on its own
pool could deadlock).
"""

from __future__ import annotations

import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from tfimpl.tiling import ROW_BLOCK_ELEMENTS


@functools.cache
def _controller():
    """threadpoolctl's handle on the loaded BLAS libraries (found once; reading it is cheap)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def blas_threads() -> int:
    """How many threads NumPy's BLAS may use right now (threadpoolctl's live setting)."""
    libs = _controller().select(user_api="blas").lib_controllers
    return max([lib.num_threads for lib in libs] + [1])


_POOL_PREFIX = "tfimpl-numpy"
_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _pool(workers: int) -> ThreadPoolExecutor:
    """The process's pool of `workers` threads, made on first use and kept."""
    with _pools_lock:
        pool = _pools.get(workers)
        if pool is None:
            pool = _pools[workers] = ThreadPoolExecutor(
                max_workers=workers, thread_name_prefix=f"{_POOL_PREFIX}-{workers}")
        return pool


def _forget_pools() -> None:
    """In a forked child the pools' threads do not exist: start afresh."""
    global _pools_lock
    _pools.clear()
    _pools_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools)


def _run(fn, items, workers: int) -> None:
    if workers <= 1 or threading.current_thread().name.startswith(_POOL_PREFIX):
        for item in items:
            fn(item)
        return
    for _ in _pool(workers).map(fn, items):
        pass


def for_row_blocks(fn, *arrays: np.ndarray, block_elements: int = ROW_BLOCK_ELEMENTS) -> None:
    """fn(*blocks) for consecutive row blocks (views) of same-shaped arrays, in parallel.

    Each array is viewed as (rows, last axis); fn must write its result in place, into one of
    the blocks it is given. The arrays must be C-contiguous (so the views share their memory).
    """
    if not all(a.flags.c_contiguous for a in arrays):
        raise ValueError("for_row_blocks needs C-contiguous arrays (their row blocks are views)")
    rows = [a.reshape(-1, a.shape[-1]) for a in arrays]                      # (N, n) views
    n_rows, width = rows[0].shape
    step = max(1, block_elements // max(1, width))
    blocks = [[r[start:start + step] for r in rows] for start in range(0, n_rows, step)]
    _run(lambda block: fn(*block), blocks, min(blas_threads(), len(blocks)))


def map_tiles(fn, tiles: list) -> None:
    """fn(tile) for every tile, on as many threads as BLAS may use, BLAS single-threaded meanwhile."""
    workers = min(blas_threads(), len(tiles))
    if workers <= 1:
        _run(fn, tiles, 1)
        return
    with _controller().limit(limits=1, user_api="blas"):
        _run(fn, tiles, workers)
