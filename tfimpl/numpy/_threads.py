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


def for_row_blocks(fn, x: np.ndarray, block_elements: int = 1 << 16) -> None:
    """fn(block) for consecutive row blocks (views) of x viewed as (rows, last axis), in parallel.

    fn must write its result in place (into the block); x must be C-contiguous.
    """
    rows = x.reshape(-1, x.shape[-1]) if x.ndim != 2 else x             # (N, n) view
    step = max(1, block_elements // max(1, rows.shape[1]))
    blocks = [rows[start:start + step] for start in range(0, rows.shape[0], step)]
    workers = min(blas_threads(), len(blocks))
    if workers <= 1:
        for block in blocks:
            fn(block)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(fn, blocks):
            pass
