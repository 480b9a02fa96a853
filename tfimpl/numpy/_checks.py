"""Argument checks shared by both backends (they read only `.shape`, `.ndim` and `.dtype`).

Each raises ValueError naming the argument and what was expected, so a wrong shape fails at the
call that received it, not three matmuls later.
"""

from __future__ import annotations

from tfimpl.config import ACTIVATIONS  # noqa: F401  (the one definition; re-exported)


def check_ndim(name: str, x, ndim: int, layout: str) -> None:
    if x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D {layout}, got shape {tuple(x.shape)}")


def check_last_dim(name: str, x, size: int, what: str) -> None:
    if x.shape[-1] != size:
        raise ValueError(f"{name} must have last dimension {size} ({what}), "
                         f"got shape {tuple(x.shape)}")


def check_heads(d_model: int, n_heads: int) -> None:
    if not isinstance(n_heads, int) or n_heads <= 0:
        raise ValueError(f"n_heads must be a positive int, got {n_heads!r}")
    if d_model % n_heads:
        raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")


def check_activation(activation: str) -> None:
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")


def check_qkv(q, k, v) -> None:
    """q: (B, H, Tq, d_k), k: (B, H, Tk, d_k), v: (B, H, Tk, d_v)."""
    for name, x in (("q", q), ("k", k), ("v", v)):
        check_ndim(name, x, 4, "(B, H, T, d_k)")
    if k.shape[-1] != q.shape[-1]:
        raise ValueError(f"k must have the same d_k as q ({q.shape[-1]}), got shape {tuple(k.shape)}")
    if k.shape[:3] != v.shape[:3]:
        raise ValueError(f"v must match k in (B, H, Tk) = {tuple(k.shape[:3])}, "
                         f"got shape {tuple(v.shape)}")
    if q.shape[:2] != k.shape[:2]:
        raise ValueError(f"k must match q in (B, H) = {tuple(q.shape[:2])}, got shape {tuple(k.shape)}")


def check_mask(mask, target: tuple[int, int, int, int]) -> None:
    """A boolean mask (True = may attend) broadcastable to (B, H, Tq, Tk)."""
    if str(mask.dtype) not in ("bool", "torch.bool"):
        raise ValueError(f"mask must be boolean (True = may attend), got dtype {mask.dtype}")
    shape = tuple(mask.shape)
    ok = len(shape) <= 4 and all(m in (1, t) for m, t in zip(shape[::-1], target[::-1]))
    if not ok:
        raise ValueError(f"mask must be broadcastable to (B, H, Tq, Tk) = {target}, got shape {shape}")


def check_key_padding_mask(name: str, mask, batch: int, seq_len: int) -> None:
    """A boolean (B, Tk) mask, True = real token."""
    if str(mask.dtype) not in ("bool", "torch.bool"):
        raise ValueError(f"{name} must be boolean (True = real token), got dtype {mask.dtype}")
    if tuple(mask.shape) != (batch, seq_len):
        raise ValueError(f"{name} must have shape (B, Tk) = {(batch, seq_len)}, "
                         f"got {tuple(mask.shape)}")


def check_same_batch(name: str, x, batch: int, d_model: int) -> None:
    check_ndim(name, x, 3, "(B, T, D)")
    if x.shape[0] != batch or x.shape[2] != d_model:
        raise ValueError(f"{name} must have shape (B={batch}, T, D={d_model}), got {tuple(x.shape)}")


def check_window(seq_len: int, window: int, global_tokens: int = 0) -> None:
    """A sliding window 1 <= w <= n, and 0 <= g <= n global tokens (tfimpl.*.sparse_attention)."""
    if not isinstance(window, int) or isinstance(window, bool) or window < 1:
        raise ValueError(f"window must be a positive int, got {window!r}")
    if window > seq_len:
        raise ValueError(f"window ({window}) must not exceed the sequence length ({seq_len}): "
                         f"a window that wide is dense attention")
    if not isinstance(global_tokens, int) or global_tokens < 0 or global_tokens > seq_len:
        raise ValueError(f"global_tokens must be an int in 0..{seq_len} (the sequence length), "
                         f"got {global_tokens!r}")
