"""Attention that does less work than n²: sliding window, window + global tokens, linear
(mirrors tfimpl.numpy.sparse_attention function for function; costs in tfimpl.costs.sparse).

Self-attention on q, k, v of shape (B, H, n, d) (d_v = d_k), batch-first like tfimpl.attention.

    sliding_window_attention   query i sees the w keys of its window (tfimpl.tiling.window_bounds:
                               i-w+1 .. i causal, about w/2 either side bidirectional), computed
                               a block of c = min(64, w) queries at a time against the c + w - 1
                               keys that block can see: work and memory O(n·(c + w)·d), never n×n
    global_window_attention    the window plus the first g tokens as global tokens (Longformer,
                               Beltagy et al. 2020; BigBird, Zaheer et al. 2020): every query sees
                               them and they see every key; O(n·(w + g)·d)
    linear_attention           softmax(q·kᵀ) replaced by the kernel φ(q)·φ(k)ᵀ, φ = elu + 1
                               (Katharopoulos et al. 2020): out_i = φ(q_i)·S / φ(q_i)·z with
                               S = Σ_j φ(k_j)ᵀv_j, z = Σ_j φ(k_j), so O(n·d²); causal through a
                               running sum over chunks of LINEAR_CHUNK positions
    window_mask / banded_attention
                               the same patterns as a dense (n, n) mask, and dense attention
                               with it (explicit or torch's SDPA): the reference for parity, and
                               the control: masking without sparsity still costs O(n²)
    linear_attention_quadratic the linear attention's own quadratic form (φ(Q)φ(K)ᵀ)V / row sums

The normaliser rides along with the values: v is widened by a column of ones, (B, H, n, d + 1),
so φ(q)·z is the last column of the same matmul and every FLOP is a matmul FLOP (the counts of
tfimpl.costs.sparse are what torch's FlopCounterMode counts).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from tfimpl.numpy._checks import check_key_padding_mask, check_qkv, check_window
from tfimpl.tiling import LINEAR_CHUNK, sparse_block, window_bounds
from tfimpl.torch.attention import scaled_dot_product_attention

NEG_INF = float("-inf")


def _check_self(q, k, v) -> int:
    check_qkv(q, k, v)
    if k.shape[2] != q.shape[2] or v.shape[-1] != q.shape[-1]:
        raise ValueError(f"self-attention with d_v = d_k: q, k, v must share shape, got "
                         f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    return q.shape[2]


def window_mask(seq_len: int, window: int, causal: bool = False, global_tokens: int = 0,
                device="cpu") -> torch.Tensor:
    """(n, n) boolean, True where query i may see key j: j - i in [-left, right]
    (tfimpl.tiling.window_bounds), or i < g, or j < g; and j <= i when causal."""
    check_window(seq_len, window, global_tokens)
    left, right = window_bounds(window, causal)
    allowed = torch.ones(seq_len, seq_len, dtype=torch.bool, device=device)  # (n, n), no other n×n
    allowed.tril_(right).triu_(-left)                                         # the band
    allowed[:global_tokens] = True                                            # global rows
    allowed[:, :global_tokens] = True                                         # global columns
    return allowed.tril_() if causal else allowed


def banded_attention(q, k, v, window: int, causal: bool = False, global_tokens: int = 0,
                     attn_impl: str = "explicit"):
    """Dense attention with the window (+ global) pattern as a mask: (B, H, n, d). The (n, n)
    mask and, on the explicit path, the (B, H, n, n) scores exist in full: O(n²)."""
    n = _check_self(q, k, v)
    mask = window_mask(n, window, causal, global_tokens, q.device)            # (n, n)
    return scaled_dot_product_attention(q, k, v, mask=mask, attn_impl=attn_impl)


def _blocks(x, c: int, nb: int):
    """(B, H, n, d) -> (B, H, nb, c, d), zero rows appended up to nb·c."""
    batch, heads, n, d = x.shape
    return F.pad(x, (0, 0, 0, nb * c - n)).view(batch, heads, nb, c, d)


def _key_windows(x, c: int, nb: int, left: int, right: int):
    """(B, H, n, d) -> (B, H, nb, d, L), L = c + left + right: block b's keys b·c - left ..
    b·c + c - 1 + right (zeros outside 0..n-1), as an unfold view of the padded keys."""
    n = x.shape[2]
    padded = F.pad(x, (0, 0, left, nb * c - n + right))                       # (B, H, left + nb·c + right, d)
    return padded.unfold(2, c + left + right, c)                              # (B, H, nb, d, L) view


def _band_allowed(n: int, c: int, nb: int, left: int, right: int, device):
    """(nb, c, L) boolean: row r of block b may see slot t (key j = b·c - left + t) when
    0 <= t - r <= left + right and 0 <= j < n; the padded rows (i >= n) see their slots, so no
    row is empty (their outputs are dropped)."""
    L = c + left + right
    r = torch.arange(c, device=device)[:, None]                               # (c, 1)
    t = torch.arange(L, device=device)[None, :]                               # (1, L)
    band = (t - r >= 0) & (t - r <= left + right)                             # (c, L)
    start = torch.arange(nb, device=device)[:, None, None] * c                # (nb, 1, 1)
    j = start - left + t                                                      # (nb, 1, L) key index
    padded_row = start + r >= n                                               # (nb, c, 1)
    return band & (((j >= 0) & (j < n)) | padded_row)                         # (nb, c, L)


def sliding_window_attention(q, k, v, window: int, causal: bool = False):
    """softmax over the w keys of each query's window: (B, H, n, d), blockwise, O(n·(c + w)·d).

        per block b of c queries:  s = (q_b / √d) · K_bᵀ     (c, d) @ (d, L),  L = c + w - 1
                                   s = -inf outside the band;  p = softmax(s)
                                   out_b = p · V_b           (c, L) @ (L, d)
    All blocks at once, as batched matmuls over (B, H, nb).
    """
    n = _check_self(q, k, v)
    check_window(n, window)
    batch, heads, _, d = q.shape
    left, right = window_bounds(window, causal)
    c = sparse_block(window)
    nb = -(-n // c)                                                            # ceil(n / c)
    qb = _blocks(q * (1.0 / math.sqrt(d)), c, nb)                             # (B, H, nb, c, d)
    kw = _key_windows(k, c, nb, left, right)                                  # (B, H, nb, d, L)
    vw = _key_windows(v, c, nb, left, right).transpose(-1, -2)               # (B, H, nb, L, d)
    s = qb @ kw                                                               # (B, H, nb, c, L)
    s.masked_fill_(~_band_allowed(n, c, nb, left, right, q.device), NEG_INF)
    p = torch.softmax(s, dim=-1, out=s) if not s.requires_grad else torch.softmax(s, dim=-1)
    out = p @ vw                                                              # (B, H, nb, c, d)
    return out.view(batch, heads, nb * c, d)[:, :, :n]                       # (B, H, n, d)


def global_window_attention(q, k, v, window: int, global_tokens: int, causal: bool = False):
    """The sliding window plus g global tokens (positions 0..g-1): (B, H, n, d).

        rows i >= g:  one softmax over [the g global keys, the window's keys j >= g]
                      (c, d) @ (d, g) and (c, d) @ (d, L) per block: O(n·(w + g)·d)
        rows i < g:   dense rows, (g, d) @ (d, n): O(g·n·d)
    With causal, key j <= i throughout.
    """
    n = _check_self(q, k, v)
    check_window(n, window, global_tokens)
    g = global_tokens
    if g == 0:
        return sliding_window_attention(q, k, v, window, causal)
    batch, heads, _, d = q.shape
    left, right = window_bounds(window, causal)
    c = sparse_block(window)
    nb = -(-n // c)
    qs = q * (1.0 / math.sqrt(d))                                             # (B, H, n, d)
    qb = _blocks(qs, c, nb)                                                   # (B, H, nb, c, d)
    kg = k[:, :, :g].transpose(-1, -2)[:, :, None]                           # (B, H, 1, d, g)
    s_glob = qb @ kg                                                          # (B, H, nb, c, g)
    i = torch.arange(nb * c, device=q.device).view(nb, c, 1)                 # (nb, c, 1) query index
    if causal:
        s_glob.masked_fill_(torch.arange(g, device=q.device) > i, NEG_INF)   # (nb, c, g) j > i
    s_loc = qb @ _key_windows(k, c, nb, left, right)                         # (B, H, nb, c, L)
    j = i - i % c - left + torch.arange(c + left + right, device=q.device)   # (nb, c, L) key index
    s_loc.masked_fill_(~_band_allowed(n, c, nb, left, right, q.device) | (j < g), NEG_INF)  # global keys: counted once
    s = torch.cat([s_glob, s_loc], dim=-1)                                    # (B, H, nb, c, g + L)
    del s_glob, s_loc
    p = torch.softmax(s, dim=-1, out=s) if not s.requires_grad else torch.softmax(s, dim=-1)
    vw = _key_windows(v, c, nb, left, right).transpose(-1, -2)               # (B, H, nb, L, d)
    out = p[..., :g] @ v[:, :, None, :g] + p[..., g:] @ vw                   # (B, H, nb, c, d)
    out = out.view(batch, heads, nb * c, d)[:, :, :n]                        # (B, H, n, d)
    s_rows = qs[:, :, :g] @ k.transpose(-1, -2)                              # (B, H, g, n) global rows
    if causal:
        s_rows.masked_fill_(~torch.ones(g, n, dtype=torch.bool, device=q.device).tril_(),
                            NEG_INF)
    rows = torch.softmax(s_rows, dim=-1) @ v                                 # (B, H, g, d)
    return torch.cat([rows, out[:, :, g:]], dim=2)                           # (B, H, n, d)


def feature_map(x):
    """φ(x) = elu(x) + 1 > 0 (Katharopoulos et al. 2020, eq. 7)."""
    return F.elu(x) + 1.0


def _features(q, k, v, key_padding_mask):
    """φ(q), φ(k) with padded keys zeroed, and v widened by a column of ones (B, H, n, d + 1)."""
    fq, fk = feature_map(q), feature_map(k)                                   # (B, H, n, d)
    if key_padding_mask is not None:
        check_key_padding_mask("key_padding_mask", key_padding_mask, q.shape[0], q.shape[2])
        fk = fk * key_padding_mask[:, None, :, None].to(fk.dtype)            # a padded key adds 0
    v1 = F.pad(v, (0, 1), value=1.0)                                          # (B, H, n, d + 1)
    return fq, fk, v1


def _normalise(num):
    """(…, d + 1) numerator and normaliser -> (…, d)."""
    return num[..., :-1] / num[..., -1:]


def linear_attention(q, k, v, causal: bool = False, key_padding_mask=None):
    """φ(q_i)·Σ_j φ(k_j)ᵀv_j / φ(q_i)·Σ_j φ(k_j), j over all keys (or j <= i): (B, H, n, d).

        bidirectional:  S = φ(K)ᵀ·[V 1]          (d, n) @ (n, d + 1)
                        out = φ(Q)·S              (n, d) @ (d, d + 1)           O(n·d²)
        causal, chunks of c positions:
                        S_b = φ(K_b)ᵀ·[V_b 1]     per chunk, (d, c) @ (c, d + 1)
                        R_b = S_0 + .. + S_{b-1}  the running sum (exclusive cumsum)
                        out_b = φ(Q_b)·R_b + tril(φ(Q_b)·φ(K_b)ᵀ)·[V_b 1]      O(n·(d + c)·d)
    key_padding_mask: (B, n) boolean, True = real token; a padded key contributes nothing.
    """
    n = _check_self(q, k, v)
    batch, heads, _, d = q.shape
    fq, fk, v1 = _features(q, k, v, key_padding_mask)
    if not causal:
        state = fk.transpose(-1, -2) @ v1                                     # (B, H, d, d + 1)
        return _normalise(fq @ state)                                         # (B, H, n, d)
    c = min(LINEAR_CHUNK, n)
    nb = -(-n // c)
    fqb, fkb, v1b = _blocks(fq, c, nb), _blocks(fk, c, nb), _blocks(v1, c, nb)  # (B, H, nb, c, ·)
    chunk_state = fkb.transpose(-1, -2) @ v1b                                 # (B, H, nb, d, d + 1)
    running = chunk_state.cumsum(dim=2) - chunk_state                         # (B, H, nb, d, d + 1) exclusive
    scores = fqb @ fkb.transpose(-1, -2)                                      # (B, H, nb, c, c)
    scores.masked_fill_(~torch.ones(c, c, dtype=torch.bool, device=q.device).tril_(), 0.0)
    num = fqb @ running + scores @ v1b                                        # (B, H, nb, c, d + 1)
    return _normalise(num.view(batch, heads, nb * c, d + 1)[:, :, :n])       # (B, H, n, d)


def linear_attention_quadratic(q, k, v, causal: bool = False, key_padding_mask=None):
    """The same attention in its quadratic form: A = φ(Q)·φ(K)ᵀ (n, n), lower triangle when
    causal, out = A·V / A·1. O(n²·d): the reference linear_attention must equal."""
    _check_self(q, k, v)
    fq, fk, v1 = _features(q, k, v, key_padding_mask)
    a = fq @ fk.transpose(-1, -2)                                             # (B, H, n, n)
    if causal:
        a = a.tril()
    return _normalise(a @ v1)                                                 # (B, H, n, d)


def flex_mask_mod(window: int, causal: bool = False, global_tokens: int = 0):
    """window_mask's pattern as FlexAttention's mask_mod(b, h, q_idx, kv_idx) -> bool."""
    left, right = window_bounds(window, causal)
    g = global_tokens

    def mask_mod(b, h, q_idx, kv_idx):
        allowed = (kv_idx - q_idx >= -left) & (kv_idx - q_idx <= right)
        if g:
            allowed = allowed | (q_idx < g) | (kv_idx < g)
        return allowed & (kv_idx <= q_idx) if causal else allowed

    return mask_mod


def flex_window_attention(q, k, v, window: int, causal: bool = False, global_tokens: int = 0,
                          kernel=None, block_mask=None):
    """The window (+ global) pattern through torch's FlexAttention: its BlockMask skips the
    (128, 128) tiles the pattern leaves empty. kernel: flex_attention, or a torch.compile'd
    flex_attention (what makes it fast; compiling is the caller's business). (B, H, n, d)."""
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    n = _check_self(q, k, v)
    check_window(n, window, global_tokens)
    if block_mask is None:
        block_mask = create_block_mask(flex_mask_mod(window, causal, global_tokens), None, None,
                                       n, n, device=q.device)
    return (kernel or flex_attention)(q, k, v, block_mask=block_mask)
