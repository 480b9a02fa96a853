"""The sub-quadratic attention blocks: what each computes, what it costs, and the price it pays.

    block               one call (tfimpl/*/sparse_attention.py)                       work
    window_attention    sliding window of `window` keys per query, blockwise           O(n·w·d)
    global_attention    the window + the first `global_tokens` tokens global           O(n·(w+g)·d)
    linear_attention    φ(Q)(φ(K)ᵀV), φ = elu + 1 (causal: a running sum)              O(n·d²)
    banded_attention    dense attention with the window (+ global) pattern as an       O(n²·d)
                        (n, n) mask: the control (masking is not sparsity)

Inputs (`inputs:`): "random" draws q, k, v ~ N(0, 1) (B, H, n, d_k) from
`default_rng(seed + 1)`, like every qkv block; "pretrained" takes the Q, K, V that the pretrained
all-MiniLM-L6-v2 (tfimpl.pretrained) computes inside its layers 0..B-1 (one per batch entry)
on PASSAGE (the real sentences the project already uses, one after the other), its first n
tokens: d_model 384, 12 heads.

The price (`price`, into the record after the measurements, for n <= PRICE_MAX_N): the case's
float64 inputs, R = min(n, PRICE_ROWS) query rows evenly spaced, the exact softmax attention on them, and

    approx_rel_l2_err   ||out_approx - out_exact||_F / ||out_exact||_F over those rows
    attn_mass_captured  mean over rows (and heads, batch) of the exact attention probability
                        that falls inside the pattern (None for linear attention: no pattern)
    useful_fraction     pattern pairs / n² (tfimpl.costs.sparse): the share of a dense count
                        the pattern needs (linear: its FLOPs over the dense FLOPs)

(For the window patterns the approximate rows are the exact rows' scores soft-maxed within the
pattern, which is what the kernels compute: tests/tfimpl/test_sparse_attention.py proves that
to 1e-12. Linear attention is computed in full in float64, then the same rows are taken.)

Tests: tests/impls/test_sparse_blocks.py.
"""

from __future__ import annotations

import functools

from bench import precision
from bench.case import Case
from bench.guide import DEFAULT_SENTENCE
from bench.record import keys_of
from tfimpl.costs import footprint, sparse as cs
from tfimpl.tiling import window_bounds

SPARSE_BLOCKS = ("window_attention", "global_attention", "linear_attention", "banded_attention")
WINDOWED = ("window_attention", "global_attention", "banded_attention")     # read `window`
GLOBAL = ("global_attention", "banded_attention")                           # read `global_tokens`
INPUTS = ("random", "pretrained")
PRICE_KEYS = keys_of("blocks.sparse")
PRICE_ROWS = 128
PRICE_MAX_N = 8192       # beyond: no price (its float64 exact rows would cost more than the case)
PASSAGE = " ".join(("Hello world.", DEFAULT_SENTENCE,
                    "Attention is all you need, said the paper; the rest is layer norms, "
                    "feed-forward networks and a great deal of matrix multiplication."))
PRETRAINED_SHAPE = {"d_model": 384, "n_heads": 12}     # all-MiniLM-L6-v2
PRETRAINED_LAYERS = 6


def rules(case: Case) -> tuple[str, str] | None:
    """(field, reason) for a window, global_tokens or inputs the case's block cannot take."""
    block, n = case.block, case.seq_len
    if block not in WINDOWED and case.window:
        return "window", f"window applies to {', '.join(WINDOWED)} only, not {block!r}"
    if block not in GLOBAL and case.global_tokens:
        return "global_tokens", f"global_tokens applies to {', '.join(GLOBAL)} only, not {block!r}"
    if block in WINDOWED and case.window < 1:
        return "window", f"block {block!r} needs window >= 1 (keys each query sees), got {case.window}"
    if block in WINDOWED and case.window > n:
        return "window", (f"window={case.window} is wider than seq_len={n}: that is dense "
                          f"attention (block attention); use window <= seq_len")
    if case.global_tokens > n:
        return "global_tokens", f"global_tokens={case.global_tokens} is more than seq_len={n}"
    if block == "global_attention" and case.global_tokens < 1:
        return "global_tokens", "block 'global_attention' needs global_tokens >= 1"
    if case.inputs not in INPUTS:
        return "inputs", f"must be one of {', '.join(INPUTS)}; got {case.inputs!r}"
    if case.inputs == "pretrained":
        if block not in SPARSE_BLOCKS:
            return "inputs", f"inputs: pretrained is for the {', '.join(SPARSE_BLOCKS)} blocks"
        for key, value in PRETRAINED_SHAPE.items():
            if getattr(case, key) != value:
                return key, f"inputs: pretrained is all-MiniLM-L6-v2's Q/K/V: {key} must be {value}"
        if case.batch > PRETRAINED_LAYERS:
            return "batch", f"inputs: pretrained has {PRETRAINED_LAYERS} layers (one per batch entry)"
    if block in SPARSE_BLOCKS and case.mode != "forward":
        return "mode", f"block {block!r} is measured forward only"
    return None


def flops(case: Case) -> dict:
    """Matmul FLOPs of one call of a sparse block (tfimpl.costs.sparse)."""
    b, h, n, d = case.batch, case.n_heads, case.seq_len, case.d_head
    if case.block == "linear_attention":
        return cs.linear_flops(b, h, n, d, case.causal)
    if case.block == "banded_attention":
        return cs.dense_flops(b, h, n, d)
    return cs.window_flops(b, h, n, d, case.window, case.global_tokens)


def peak_bytes(case: Case, cfg, backend: str, attn_impl: str = "explicit") -> int:
    b, h, n, d = case.batch, case.n_heads, case.seq_len, case.d_head
    e = precision.get(case.precision).bytes_per_element
    if case.block == "linear_attention":
        return cs.linear_peak_bytes(b, h, n, d, e, case.causal)
    if case.block == "banded_attention":
        return cs.banded_peak_bytes(cfg, b, n, e, attn_impl, case.causal, case.threads, backend)
    return cs.window_peak_bytes(b, h, n, d, case.window, e, case.global_tokens, backend)


def costs(case: Case, cfg) -> dict:
    """bench.plan's analytic facts (torch's peak; bench/impls/sparse_ours.py gives NumPy's)."""
    counted = flops(case)
    e = precision.get(case.precision).bytes_per_element
    materialised = case.block == "banded_attention"
    return {"flops_analytic": counted["total"],
            "flops_by_component": {k: v for k, v in counted.items() if k != "total"},
            "peak_bytes_predicted": peak_bytes(case, cfg, "torch"),
            "working_set_bytes": footprint.working_set_bytes("attention", cfg, case.batch,
                                                             case.seq_len, e, materialised),
            "params": 0}


def make_inputs(case: Case) -> dict:
    """q, k, v (B, H, n, d_k) float64: seeded N(0, 1), or the pretrained model's (module doc)."""
    import numpy as np

    if case.inputs == "pretrained":
        return pretrained_qkv(case.batch, case.seq_len)
    rng = np.random.default_rng(case.seed + 1)
    shape = (case.batch, case.n_heads, case.seq_len, case.d_head)           # (B, H, n, d_k)
    return {"q": rng.standard_normal(shape), "k": rng.standard_normal(shape),
            "v": rng.standard_normal(shape)}


def pretrained_qkv(layers: int, seq_len: int) -> dict:
    """MiniLM's Q, K, V of layers 0..layers-1 on PASSAGE's first seq_len tokens, stacked on the
    batch axis: (layers, 12, seq_len, 32) float64, the caller's own copy. ValueError when the
    passage is shorter."""
    import numpy as np

    q, k, v = _pretrained_states()                                        # (6, H, T, d_k) each
    if seq_len > q.shape[2]:
        raise ValueError(f"seq_len={seq_len}: the passage has {q.shape[2]} tokens")
    return {name: np.ascontiguousarray(x[:layers, :, :seq_len]) for name, x in
            (("q", q), ("k", k), ("v", v))}


@functools.lru_cache(maxsize=1)
def _pretrained_states():
    """Q, K, V of all PRETRAINED_LAYERS layers on PASSAGE (the model is loaded once per process;
    the arrays are read-only)."""
    import numpy as np

    from tfimpl import pretrained
    from tfimpl.numpy.attention import project_qkv
    from tfimpl.numpy.bert import bert_embeddings
    from tfimpl.numpy.layers import encoder_layer
    from tfimpl.params import subtree

    model = pretrained.load(dtype=np.float64)
    batch = pretrained.encode(model.tokenizer, [PASSAGE])
    x = bert_embeddings(model.params, batch.input_ids, model.cfg, batch.token_type_ids)  # (1, T, D)
    qs, ks, vs = [], [], []
    for i in range(PRETRAINED_LAYERS):
        p = subtree(model.params, f"encoder.layers.{i}.")
        q, k, v = project_qkv(subtree(p, "self_attn."), x, x, model.cfg.n_heads)  # (1, H, T, d_k)
        qs.append(q), ks.append(k), vs.append(v)
        x = encoder_layer(p, x, model.cfg)                                        # (1, T, D)
    out = tuple(np.concatenate(t) for t in (qs, ks, vs))
    for a in out:
        a.flags.writeable = False
    return out


def pattern_rows(rows, n: int, window: int, global_tokens: int, causal: bool):
    """Rows `rows` of tfimpl's window_mask(n, window, causal, global_tokens): (R, n) boolean,
    without the (n, n) mask."""
    import numpy as np

    left, right = window_bounds(window, causal)
    i, j = np.asarray(rows)[:, None], np.arange(n)[None, :]                      # (R, 1), (1, n)
    allowed = (j - i >= -left) & (j - i <= right)
    allowed |= (i < global_tokens) | (j < global_tokens)
    return allowed & (j <= i) if causal else allowed


def price(case: Case, inputs: dict) -> dict:
    """The PRICE_KEYS of a sparse case on its own float64 inputs (module docstring)."""
    import numpy as np

    from tfimpl.numpy import sparse_attention as ns
    from tfimpl.numpy.softmax import softmax

    if case.seq_len > PRICE_MAX_N:
        return dict.fromkeys(PRICE_KEYS)
    q, k, v = (np.asarray(inputs[x], np.float64) for x in ("q", "k", "v"))
    n, d = q.shape[2], q.shape[3]
    rows = np.unique(np.linspace(0, n - 1, min(n, PRICE_ROWS)).round().astype(int))
    scores = (q[:, :, rows] / np.sqrt(d)) @ k.swapaxes(-1, -2)                    # (B, H, R, n)
    if case.causal:
        scores[..., np.arange(n)[None, :] > rows[:, None]] = -np.inf
    exact_p = softmax(scores, axis=-1)
    exact = exact_p @ v                                                           # (B, H, R, d)
    dense = 4 * case.batch * case.n_heads * n * n * case.d_head
    if case.block == "linear_attention":
        approx = ns.linear_attention(q, k, v, causal=case.causal)[:, :, rows]
        mass, useful = None, flops(case)["total"] / dense
    else:
        g = case.global_tokens if case.block in GLOBAL else 0
        allowed = pattern_rows(rows, n, case.window, g, case.causal)             # (R, n)
        mass = float((exact_p * allowed).sum(-1).mean())
        scores[..., ~allowed] = -np.inf
        approx = softmax(scores, axis=-1) @ v
        useful = cs.useful_fraction(n, case.window, g, case.causal)
    err = float(np.linalg.norm(approx - exact) / np.linalg.norm(exact))
    return {"approx_rel_l2_err": err, "attn_mass_captured": mass,
            "useful_fraction": float(useful), "price_rows": int(len(rows))}
