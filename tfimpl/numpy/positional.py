"""Position information added to token embeddings.

Sinusoidal (Vaswani et al. 2017, section 3.5):
    PE[pos, 2i]   = sin(pos / 10000^(2i / d_model))
    PE[pos, 2i+1] = cos(pos / 10000^(2i / d_model))
Learned (BERT): row `pos` of a trained (max_position, d_model) table.
"""

from __future__ import annotations

import numpy as np


def sinusoidal_positional_encoding(seq_len: int, d_model: int, dtype=np.float64) -> np.ndarray:
    """The (seq_len, d_model) table of sines (even columns) and cosines (odd columns)."""
    if seq_len < 0 or d_model <= 0:
        raise ValueError(f"seq_len must be >= 0 and d_model > 0, got {seq_len} and {d_model}")
    position = np.arange(seq_len, dtype=np.float64)[:, None]              # (T, 1)
    two_i = np.arange(0, d_model, 2, dtype=np.float64)                    # (ceil(D/2),)
    angle = position / np.power(10000.0, two_i / d_model)                 # (T, ceil(D/2))
    pe = np.empty((seq_len, d_model), dtype=np.float64)                   # (T, D)
    pe[:, 0::2] = np.sin(angle)
    pe[:, 1::2] = np.cos(angle[:, : d_model // 2])
    return pe.astype(dtype, copy=False)


def learned_positional_embedding(table: np.ndarray, seq_len: int, offset: int = 0) -> np.ndarray:
    """Rows offset .. offset+seq_len-1 of the (max_position, D) table -> (T, D)."""
    if offset < 0 or offset + seq_len > table.shape[0]:
        raise ValueError(f"seq_len + offset ({seq_len} + {offset}) must be <= the table's "
                         f"max_position ({table.shape[0]})")
    return table[offset:offset + seq_len]
