"""One declaration per block: what it is in tfimpl, what it takes, and what the theory claims.

A block is the unit a case measures (`Case.block`). Its declaration says, once:

- `param_kind`: the tfimpl.params / tfimpl.costs.param_counts kind of its weights;
- `cost_block`: the block name tfimpl.costs' FLOP and memory functions take;
- `inputs`: what the harness feeds it: "qkv" (q, k, v of shape (B, H, T, d_k)), "hidden"
  (x of shape (B, T, D)) or "ids" (token ids (B, T));
- `attention`: whether it computes attention (so an implementation may expose the weights);
- `causal`: whether a causal mask is wired through it (`causal: true` is refused otherwise);
- `claims`: the exponents the textbook analysis predicts for (metric, variable), each with the
  words the report uses. The exponent is the leading term's power at a fixed everything else:

    attention  softmax(QKᵀ/√d_k)·V on (B, H, T, d_k): 4·B·H·T²·d_k FLOPs = 4·B·T²·D
               -> T² and, at fixed H and T, D¹ (the bare block keeps the projections' D² out);
               memory: the (B, H, T, T) matrix -> T² when materialised, T when fused
    ffn        2·2·B·T·D·d_ff FLOPs -> T¹; with d_ff = r·D zipped -> D²; memory B·T·d_ff -> T¹
    window_attention, global_attention   4·B·H·T·(c + w - 1 [+ g])·d_k -> T¹ at fixed w
    linear_attention   4·B·H·T·d_k·(d_k + 1) -> T¹, and D² at fixed H and T
    banded_attention   the dense scores, masked -> T² (bench/blocks/sparse.py)
    lstm, gru  2·B·T·(D + D)·G FLOPs with G = 4D (LSTM) or 3D (GRU) gate rows, in T sequential
               steps -> T¹ and D²; memory: the (B, T, G) input projection and (B, T, D) output
               -> T¹ (the state carried between steps is B·D: T⁰); tfimpl.costs.recurrent
    any block  parameters per layer ∝ D² (every weight matrix is D×D or D×d_ff = D×rD)

The theory numbers are the powers of tfimpl.costs' leading terms (tests/test_blocks.py checks them against
the cost model by finite differences of log FLOPs), stated here once for the report's verdicts.
To add a block: a new `Block(...)` in `BLOCKS` below (or `register()` from a plugin module), the
tfimpl functions it names, and the implementations that list it (bench/impls/).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from bench.blocks import gpt as decode
from bench.blocks import sparse

MATERIALISED = "materialised"     # the (B, H, T, T) matrix exists in memory
FUSED = "fused"                   # a fused kernel never holds it


@dataclass(frozen=True)
class Claim:
    """The theory's exponent of `metric` in `variable`, with the words the report uses.

    attention: the claim holds only for this attention path (MATERIALISED / FUSED), None = any.
    zipped_ratio: the claim needs d_ff/d_model fixed while d_model varies (O(d²) of the FFN).
    """

    metric: str
    variable: str
    exponent: float
    words: str
    attention: str | None = None
    zipped_ratio: bool = False


@dataclass(frozen=True)
class Block:
    name: str
    title: str                      # for headings ("Attention", "Encoder layer")
    words: str                      # in sentences ("multi-head attention")
    param_kind: str
    cost_block: str
    inputs: str                     # "qkv" | "hidden" | "ids"
    attention: bool
    causal: bool
    mixed: bool = False             # contains both attention and FFN (two-term fits, crossover)
    heads: bool = True              # has attention heads: n_heads applies (False: a config may
                                    # not set it, and d_model need not divide by it)
    claims: tuple[Claim, ...] = field(default_factory=tuple)
    # optional hooks for a block tfimpl.costs' generic functions do not know (a decode step):
    # costs(case, cfg) -> dict with any of bench.plan's analytic facts ("flops_analytic",
    # "flops_by_component", "peak_bytes_predicted", "working_set_bytes", "params"), each
    # computed by tfimpl.costs functions; make_inputs(case) -> {name: ndarray} seeded inputs
    costs: Callable | None = None
    make_inputs: Callable | None = None
    # rules(case) -> (field, reason) | None: what the block refuses (bench.capabilities)
    rules: Callable | None = None

    def claim(self, metric: str, variable: str, attention_path: str | None = None,
              ratio_fixed: bool = True) -> Claim | None:
        """The claim for (metric, variable) under this attention path, or None."""
        for c in self.claims + GENERAL_CLAIMS:
            if (c.metric, c.variable) != (metric, variable):
                continue
            if c.attention is not None and c.attention != attention_path:
                continue
            if c.zipped_ratio and not ratio_fixed:
                continue
            return c
        return None


GENERAL_CLAIMS = (Claim("params", "d_model", 2.0, "O(d²) parameters per layer"),)

BLOCKS: dict[str, Block] = {}


def register(block: Block) -> Block:
    """Add a block declaration (a plugin module may call this at import)."""
    if block.inputs not in ("qkv", "hidden", "ids"):
        raise ValueError(f"block {block.name}: inputs must be qkv, hidden or ids")
    BLOCKS[block.name] = block
    return block


def add_claim(block: str, claim: Claim) -> Block:
    """Add `claim` to block `block`'s declaration (a plugin's metric declares its theory here:
    docs/PLUGINS.md). A claim for the same (metric, variable, attention path) is replaced."""
    import dataclasses

    decl = get(block)
    kept = tuple(c for c in decl.claims if (c.metric, c.variable, c.attention)
                 != (claim.metric, claim.variable, claim.attention))
    BLOCKS[block] = dataclasses.replace(decl, claims=kept + (claim,))
    return BLOCKS[block]


register(Block(
    "attention", "Attention", "attention", param_kind="attention", cost_block="attention",
    inputs="qkv", attention=True, causal=True,
    claims=(Claim("time", "seq_len", 2.0, "O(n²) time"),
            Claim("flops", "seq_len", 2.0, "O(n²) FLOPs"),
            Claim("memory", "seq_len", 2.0, "O(n²) memory (materialised path)",
                  attention=MATERIALISED),
            Claim("memory", "seq_len", 1.0, "O(n) memory (fused path)", attention=FUSED),
            Claim("time", "d_model", 1.0, "O(d) time at fixed n"),
            Claim("flops", "d_model", 1.0, "O(d) FLOPs at fixed n"))))
register(Block(
    "mha", "MHA", "multi-head attention", param_kind="mha", cost_block="mha",
    inputs="hidden", attention=True, causal=True))
register(Block(
    "ffn", "FFN", "feed-forward", param_kind="ffn", cost_block="ffn",
    inputs="hidden", attention=False, causal=False,
    claims=(Claim("time", "seq_len", 1.0, "O(n) time"),
            Claim("flops", "seq_len", 1.0, "O(n) FLOPs"),
            Claim("memory", "seq_len", 1.0, "O(n) memory"),
            Claim("time", "d_model", 2.0, "O(d²) time", zipped_ratio=True),
            Claim("flops", "d_model", 2.0, "O(d²) FLOPs", zipped_ratio=True))))
register(Block(
    "encoder_layer", "Encoder layer", "encoder layer", param_kind="encoder_layer",
    cost_block="encoder_layer", inputs="hidden", attention=True, causal=False, mixed=True))
register(Block(
    "encoder", "Encoder", "encoder stack", param_kind="encoder", cost_block="encoder",
    inputs="hidden", attention=True, causal=False, mixed=True))
register(Block(
    "model", "Model", "BERT model", param_kind="bert", cost_block="model",
    inputs="ids", attention=True, causal=False, mixed=True))


# Recurrent layers (tfimpl.numpy.recurrent / tfimpl.torch.recurrent, torch.nn.LSTM / nn.GRU):
# hidden size = input size = d_model, `layers` layers; no heads, no causal flag (a recurrence is
# causal by construction). Their costs come from bench.impls.recurrent.costs (the impls' hook).
for _name, _title, _words, _gates in (("lstm", "LSTM", "LSTM layer", "4"),
                                      ("gru", "GRU", "GRU layer", "3")):
    register(Block(
        _name, _title, _words, param_kind=_name, cost_block=_name, inputs="hidden",
        attention=False, causal=False, heads=False,
        claims=(Claim("time", "seq_len", 1.0, "O(n) time (n sequential steps)"),
                Claim("flops", "seq_len", 1.0, "O(n) FLOPs"),
                Claim("memory", "seq_len", 1.0, "O(n) memory (the output; the state is O(1))"),
                Claim("time", "d_model", 2.0, "O(d²) time at fixed n"),
                Claim("flops", "d_model", 2.0, f"O(d²) FLOPs ({_gates}·2d·d per token)"))))


# GPT-2-style autoregressive inference (bench/blocks/gpt.py says what each call does; seq_len is the
# prompt for prefill/generate and the cached context n for decode/decode-recompute). Their times
# are not single powers of n (a decode step is a + b·n: the weights, then the cache), so their
# claims are judged by bench.analysis.generation's two-term fits, not by a power-law Claim here.
for _name, _title, _words in (
        ("prefill", "Prefill", "prefill (the prompt into the KV cache)"),
        ("decode", "Decode step", "decode step against a KV cache"),
        ("decode-recompute", "Decode (recompute)", "decode step recomputing the prefix"),
        ("generate", "Generate", "generation (prefill + decode steps)")):
    register(Block(_name, _title, _words, param_kind="gpt", cost_block="gpt", inputs="ids",
                   attention=True, causal=True, costs=decode.costs,
                   make_inputs=decode.make_inputs))


# Sub-quadratic attention (bench/blocks/sparse.py says what each computes and what the price is).
# Exponents at fixed everything else: the window blocks do 4·B·H·n·(c + w - 1)·d FLOPs (c =
# min(64, w) queries per block), linear attention 4·B·H·n·d·(d + 1); the banded control
# computes the dense n² scores and masks them.
_LINEAR_IN_N = (Claim("time", "seq_len", 1.0, "O(n) time at fixed w"),
                Claim("flops", "seq_len", 1.0, "O(n) FLOPs at fixed w"),
                Claim("memory", "seq_len", 1.0, "O(n) memory at fixed w"))
for _name, _title, _words, _claims in (
        ("window_attention", "Sliding-window attention", "sliding-window attention",
         _LINEAR_IN_N + (Claim("time", "window", 1.0, "O(w) time at fixed n"),)),
        ("global_attention", "Window + global attention", "window + global-token attention",
         _LINEAR_IN_N),
        ("linear_attention", "Linear attention", "linear attention (elu + 1)",
         (Claim("time", "seq_len", 1.0, "O(n) time"), Claim("flops", "seq_len", 1.0, "O(n) FLOPs"),
          Claim("memory", "seq_len", 1.0, "O(n) memory"),
          Claim("time", "d_model", 2.0, "O(d²) time at fixed n and heads"),
          Claim("flops", "d_model", 2.0, "O(d²) FLOPs at fixed n and heads"))),
        ("banded_attention", "Dense attention with a band mask", "dense attention with a band mask",
         (Claim("time", "seq_len", 2.0, "O(n²) time: a mask removes no work"),
          Claim("flops", "seq_len", 2.0, "O(n²) FLOPs"),
          Claim("memory", "seq_len", 2.0, "O(n²) memory (the (n, n) mask)")))):
    register(Block(_name, _title, _words, param_kind="attention", cost_block="attention",
                   inputs="qkv", attention=True, causal=True, claims=_claims, costs=sparse.costs,
                   make_inputs=sparse.make_inputs, rules=sparse.rules))


def get(name: str) -> Block:
    """The declaration of block `name`; ValueError listing the known blocks otherwise."""
    try:
        return BLOCKS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown block {name!r}; allowed: {', '.join(BLOCKS)}") from None


def names() -> tuple[str, ...]:
    return tuple(BLOCKS)


def theory_exponent(block: str, metric: str, variable: str, attention_path: str | None = None,
                    ratio_fixed: bool = True) -> float | None:
    """The exponent the theory predicts, or None when it makes no single-power claim."""
    decl = BLOCKS.get(block)
    if decl is None:
        found = next((c for c in GENERAL_CLAIMS if (c.metric, c.variable) == (metric, variable)),
                     None)
        return None if found is None else found.exponent
    claim = decl.claim(metric, variable, attention_path, ratio_fixed)
    return None if claim is None else claim.exponent


def claim_words(block: str, metric: str, variable: str, attention_path: str | None = None,
                ratio_fixed: bool = True) -> str | None:
    decl = BLOCKS.get(block)
    if decl is None:
        return None
    claim = decl.claim(metric, variable, attention_path, ratio_fixed)
    return None if claim is None else claim.words
