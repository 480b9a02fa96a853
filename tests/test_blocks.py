"""bench.blocks: every declared claim's exponent is the power of tfimpl.costs' leading term.

The slope of log(cost) between two large sizes (finite differences of the logarithm: the lower
terms have faded there) must equal the exponent each Claim states, for FLOPs (and time, which
claims the same power), the predicted memory of each attention path, and parameters.
"""

import math

import pytest

from bench import blocks
from tfimpl import costs
from tfimpl.config import ModelConfig

N, D = 8192, 512           # large enough that each leading term dominates


def _cfg(d_model: int = 256, n_heads: int = 4, ratio: int = 4) -> ModelConfig:
    return ModelConfig(d_model=d_model, n_heads=n_heads, d_ff=ratio * d_model, n_layers=1)


def _cost(block, metric: str, attention: str | None, cfg: ModelConfig, n: int) -> float:
    if metric in ("time", "flops"):
        return costs.forward_flops(block.cost_block, cfg, 1, n)["total"]
    if metric == "memory":
        attn = "sdpa" if attention == blocks.FUSED else "explicit"
        return costs.predicted_peak_bytes(block.cost_block, cfg, 1, n, 4, attn)
    if metric == "params":
        return costs.param_counts("encoder_layer", cfg)["total"]
    raise AssertionError(metric)


def _slope(block, claim) -> float:
    if claim.variable == "seq_len":
        lo, hi = (_cost(block, claim.metric, claim.attention, _cfg(), n) for n in (N, 2 * N))
    else:                       # d_model, heads fixed (d_ff zipped at 4·d where the claim needs it)
        lo, hi = (_cost(block, claim.metric, claim.attention, _cfg(d, n_heads=8), 256)
                  for d in (4 * D, 8 * D))
    return math.log2(hi / lo)


CLAIMS = [(b, c) for b in blocks.BLOCKS.values() for c in b.claims + blocks.GENERAL_CLAIMS
          if b.name in ("attention", "ffn") and c.metric in ("time", "flops", "memory", "params")]


@pytest.mark.parametrize("block,claim", CLAIMS, ids=lambda x: getattr(x, "name", None)
                         or f"{x.metric}-{x.variable}-{x.attention}")
def test_each_claim_is_the_leading_power_of_the_cost_model(block, claim):
    assert _slope(block, claim) == pytest.approx(claim.exponent, abs=0.05)


def test_the_claims_cover_both_variables_of_both_textbook_blocks():
    got = {(b.name, c.metric, c.variable) for b, c in CLAIMS}
    for name in ("attention", "ffn"):
        for metric in ("time", "flops"):
            for variable in ("seq_len", "d_model"):
                assert (name, metric, variable) in got


def test_unknown_inputs_kind_is_refused():
    with pytest.raises(ValueError, match="inputs must be"):
        blocks.register(blocks.Block("x", "X", "x", param_kind="ffn", cost_block="ffn",
                                     inputs="pixels", attention=False, causal=False))
