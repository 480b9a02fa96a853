"""tfimpl.costs.components and tfimpl.costs.bytes: per-step FLOPs and minimum bytes, by hand."""

import pytest

from tfimpl.config import ModelConfig
from tfimpl.costs import (arithmetic_intensity, component_bytes, component_flops,
                          component_intensity, components, elementwise_flops, forward_flops)

# B=2, T=3, D=4, H=2, F=8, two layers: small enough to count by hand
CFG = ModelConfig(d_model=4, n_heads=2, d_ff=8, n_layers=2, vocab_size=50, max_position=16)
B, T = 2, 3


@pytest.mark.parametrize("block", ["attention", "mha", "ffn", "encoder_layer", "encoder", "model"])
@pytest.mark.parametrize("attn_impl", ["explicit", "sdpa"])
def test_steps_add_up_to_the_flop_model(block, attn_impl):
    steps = component_flops(block, CFG, B, T, attn_impl)
    expected = forward_flops(block, CFG, B, T)["matmul"] + elementwise_flops(block, CFG, B, T)["total"]
    assert sum(steps.values()) == expected
    assert tuple(steps) == components(block, attn_impl)


def test_layer_step_flops_by_hand():
    f = component_flops("encoder_layer", CFG, B, T)
    n, scores = B * T * 4, B * 2 * T * T                       # 24 activations, 36 scores
    assert f["qkv_proj"] == 3 * 2 * B * T * 4 * 4 + 3 * n       # 576 + 72
    assert f["scores"] == 2 * B * T * T * 4 + scores            # 144 + 36
    assert f["softmax"] == 5 * scores
    assert f["weighted_sum"] == 144
    assert f["ffn1"] == 2 * B * T * 4 * 8 + B * T * 8
    assert f["activation"] == 5 * B * T * 8                     # exact gelu: 5 ops
    assert f["add_norm1"] == f["add_norm2"] == 8 * n            # residual + 7-op layer norm


def test_sdpa_merges_the_attention_core():
    explicit = component_flops("mha", CFG, B, T, "explicit")
    fused = component_flops("mha", CFG, B, T, "sdpa")
    assert fused["attention_fused"] == explicit["scores"] + explicit["softmax"] + explicit["weighted_sum"]
    assert "softmax" not in fused


def test_layer_bytes_by_hand_fp32():
    got = component_bytes("encoder_layer", CFG, B, T, bytes_per_element=4)
    n, scores = B * T * 4, B * 2 * T * T
    assert got["qkv_proj"] == {"inputs": 4 * n, "weights": 4 * (3 * 16 + 12),
                               "outputs": 4 * 3 * n, "total": 4 * (n + 60 + 3 * n)}
    assert got["scores"]["total"] == 4 * (2 * n + scores)
    assert got["softmax"] == {"inputs": 4 * scores, "weights": 0, "outputs": 4 * scores,
                              "total": 8 * scores}
    assert got["weighted_sum"]["inputs"] == 4 * (scores + n)
    assert got["o_proj"]["weights"] == 4 * (16 + 4)
    assert got["add_norm1"] == {"inputs": 8 * n, "weights": 32, "outputs": 4 * n,
                                "total": 12 * n + 32}
    assert got["ffn1"]["outputs"] == 4 * B * T * 8 and got["ffn1"]["weights"] == 4 * (32 + 8)
    assert got["ffn2"]["inputs"] == 4 * B * T * 8 and got["ffn2"]["weights"] == 4 * (32 + 4)
    assert got["activation"]["total"] == 2 * 4 * B * T * 8


def test_model_bytes_embeddings_pooler_and_layers():
    one = component_bytes("encoder_layer", CFG, B, T, 2)
    model = component_bytes("model", CFG, B, T, 2, weight_bytes_per_element=4)
    emb = model["embeddings"]
    assert emb["inputs"] == 2 * B * T * 8                       # input and token-type ids, int64
    assert emb["weights"] == 4 * (B * T * 4 + T * 4 + 2 * 4 + 2 * 4)
    assert emb["outputs"] == 2 * B * T * 4
    assert model["pooler"] == {"inputs": 2 * B * 4, "weights": 4 * 20, "outputs": 2 * B * 4,
                               "total": 16 + 80 + 16}
    assert model["softmax"]["total"] == 2 * one["softmax"]["total"]        # two layers
    assert model["ffn1"]["weights"] == 2 * 4 * (32 + 8)                    # 4-byte weights


def test_fused_attention_never_writes_scores():
    fused = component_bytes("attention", CFG, B, T, 4, attn_impl="sdpa")
    n = B * T * 4
    assert fused == {"attention_fused": {"inputs": 12 * n, "weights": 0, "outputs": 4 * n,
                                         "total": 16 * n}}


def test_intensity_softmax_is_flat_in_t():
    cfg = ModelConfig()
    short = component_intensity("encoder_layer", cfg, 1, 128, 4)
    long = component_intensity("encoder_layer", cfg, 1, 2048, 4)
    assert short["softmax"] == long["softmax"] == pytest.approx(5 / 8)
    assert long["ffn1"] > short["ffn1"] > 50                    # GEMMs: intensity grows with B·T
    assert arithmetic_intensity(10, 4) == 2.5
    with pytest.raises(ValueError, match="n_bytes"):
        arithmetic_intensity(1, 0)


@pytest.mark.parametrize("kwargs, key", [(dict(bytes_per_element=0), "bytes_per_element"),
                                         (dict(bytes_per_element=4, attn_impl="flash"), "attn_impl")])
def test_bad_arguments_name_the_field(kwargs, key):
    with pytest.raises(ValueError, match=key):
        component_bytes("mha", CFG, B, T, **kwargs)
