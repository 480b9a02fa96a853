"""Run element-wise NumPy work on row blocks in parallel, as many threads as BLAS may use.

NumPy's element-wise functions (exp, max, erf, ...) run on one core; its matrix products use all
the threads BLAS is allowed (set with threadpoolctl, as the benchmark harness does). To keep the
two on equal terms, long element-wise passes are cut into row blocks that Python threads share:
NumPy releases the GIL inside its loops, so the blocks run truly in parallel.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor

import numpy as np


@functools.cache
def _blas_controllers():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().select(user_api="blas").lib_controllers


def blas_threads() -> int:
    """How many threads NumPy's BLAS may use right now (threadpoolctl's live setting)."""
    return max([c.num_threads for c in _blas_controllers()] + [1])


def for_row_blocks(fn, *arrays: np.ndarray, block_elements: int = 1 << 16) -> None:
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
    workers = min(blas_threads(), len(blocks))
    if workers <= 1:
        for block in blocks:
            fn(*block)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(lambda block: fn(*block), blocks):
            pass
