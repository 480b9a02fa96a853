"""The affine map every projection uses, in the torch nn.Linear convention.

    y = x · Wᵀ + b,   W: (out, in),  b: (out,)
"""

from __future__ import annotations

import numpy as np

from tfimpl.numpy._threads import for_row_blocks


def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """(..., in) -> (..., out). One GEMM over all leading positions, bias added in place."""
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(f"x must have last dimension {weight.shape[1]} (the weight's input size), "
                         f"got shape {x.shape}")
    rows = x.reshape(-1, x.shape[-1])                     # (N, in)  a view when x is contiguous
    y = rows @ weight.T                                   # (N, in) @ (in, out) -> (N, out)
    if bias is not None:                                  # + b, in place, row blocks in parallel
        for_row_blocks(lambda y_rows: np.add(y_rows, bias, out=y_rows), y)
    return y.reshape(*x.shape[:-1], weight.shape[0])      # (..., out)
