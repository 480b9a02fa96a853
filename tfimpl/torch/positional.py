"""Position information added to token embeddings (mirrors tfimpl.numpy.positional).

Sinusoidal (Vaswani et al. 2017, section 3.5):
    PE[pos, 2i]   = sin(pos / 10000^(2i / d_model))
    PE[pos, 2i+1] = cos(pos / 10000^(2i / d_model))
Learned (BERT): row `pos` of a trained (max_position, d_model) table.
"""

from __future__ import annotations

import torch


def sinusoidal_positional_encoding(seq_len: int, d_model: int, dtype=torch.float32,
                                   device="cpu") -> torch.Tensor:
    """The (seq_len, d_model) table of sines (even columns) and cosines (odd columns)."""
    if seq_len < 0 or d_model <= 0:
        raise ValueError(f"seq_len must be >= 0 and d_model > 0, got {seq_len} and {d_model}")
    position = torch.arange(seq_len, dtype=torch.float64)[:, None]            # (T, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)                   # (ceil(D/2),)
    angle = position / torch.pow(10000.0, two_i / d_model)                     # (T, ceil(D/2))
    pe = torch.empty(seq_len, d_model, dtype=torch.float64)                    # (T, D)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle[:, : d_model // 2])
    return pe.to(device=device, dtype=dtype)


def learned_positional_embedding(table: torch.Tensor, seq_len: int, offset: int = 0) -> torch.Tensor:
    """Rows offset .. offset+seq_len-1 of the (max_position, D) table -> (T, D)."""
    if offset < 0 or offset + seq_len > table.shape[0]:
        raise ValueError(f"seq_len + offset ({seq_len} + {offset}) must be <= the table's "
                         f"max_position ({table.shape[0]})")
    return table[offset:offset + seq_len]
