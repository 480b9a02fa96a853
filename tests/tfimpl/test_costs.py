"""tfimpl.costs against hand-computed values and the libraries' own counts.

FLOP checks use torch.utils.flop_counter.FlopCounterMode, which counts only matmul-like ops
(mm, addmm, bmm, the fused attention kernels it knows) with the same 2·m·n·k convention, so it
is compared with the "matmul" total. Two facts about it are tested here because the harness
relies on them: it counts 0 for scaled_dot_product_attention on CPU (the CPU flash kernel has no
registered formula) and 0 for the torch.nn eval fast path (one fused native op).
"""

import pytest
import torch
import torch.nn as nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from tfimpl import costs
from tfimpl.config import ModelConfig, preset

SMALL = ModelConfig(d_model=64, n_heads=4, d_ff=256, n_layers=2, n_decoder_layers=2,
                    activation="relu", final_norm=True)
B, T = 2, 12


def counted(fn) -> int:
    mode = FlopCounterMode(display=False)
    with mode:
        fn()
    return mode.get_total_flops()


@pytest.fixture
def no_fastpath():
    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    yield
    torch.backends.mha.set_fastpath_enabled(before)


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---- parameter counts: hand-computed -------------------------------------------------------

def test_bert_base_breakdown():
    counts = costs.param_counts("bert", preset("bert-base"))
    assert counts["total"] == 109_482_240
    assert counts["embeddings"] == 23_837_184
    assert counts["embeddings.word"] == 23_440_896
    assert counts["per_layer"] == 7_087_872
    assert counts["pooler"] == 590_592
    assert counts["encoder"] == 12 * 7_087_872


@pytest.mark.parametrize("name, total", [("bert-large", 335_141_888), ("minilm-l6", 22_713_216)])
def test_preset_totals(name, total):
    assert costs.param_counts("bert", preset(name))["total"] == total
    assert costs.param_counts("model", preset(name))["total"] == total


def test_torch_transformer_default_count():
    cfg = ModelConfig(d_model=512, n_heads=8, d_ff=2048, n_layers=6, n_decoder_layers=6,
                      final_norm=True)
    assert costs.param_counts("transformer", cfg)["total"] == 44_140_544


def test_encoder_layer_formula():
    d, f = SMALL.d_model, SMALL.d_ff
    assert costs.param_counts("encoder_layer", SMALL)["total"] == 4 * d * d + 2 * d * f + f + 9 * d


def test_seq2seq_adds_one_shared_table():
    cfg = preset("transformer-base")
    body = costs.param_counts("transformer", cfg)["total"]
    assert costs.param_counts("seq2seq", cfg)["total"] == body + 37000 * 512
    assert costs.non_embedding_params("seq2seq", cfg) == body


def test_unknown_kind_names_the_argument():
    with pytest.raises(ValueError, match="kind must be one of"):
        costs.param_counts("lstm", SMALL)


# ---- parameter counts: the libraries ----------------------------------------------------

def test_params_match_torch_nn():
    d, h, f = SMALL.d_model, SMALL.n_heads, SMALL.d_ff
    assert n_params(nn.MultiheadAttention(d, h)) == costs.param_counts("mha", SMALL)["total"]
    layer = nn.TransformerEncoderLayer(d, h, f)
    assert n_params(layer) == costs.param_counts("encoder_layer", SMALL)["total"]
    dec = nn.TransformerDecoderLayer(d, h, f)
    assert n_params(dec) == costs.param_counts("decoder_layer", SMALL)["total"]
    model = nn.Transformer(d, h, SMALL.n_layers, SMALL.n_decoder_layers, f)
    assert n_params(model) == costs.param_counts("transformer", SMALL)["total"]


def _hf_bert(cfg: ModelConfig):
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.d_model, num_hidden_layers=cfg.n_layers,
        num_attention_heads=cfg.n_heads, intermediate_size=cfg.d_ff,
        max_position_embeddings=cfg.max_position, type_vocab_size=cfg.type_vocab_size)
    return transformers.BertModel(config)


@pytest.mark.parametrize("name", ["bert-tiny", "minilm-l6", "bert-base", "bert-large"])
def test_params_match_hf_bert(name):
    cfg = preset(name)
    assert n_params(_hf_bert(cfg)) == costs.param_counts("bert", cfg)["total"]


# ---- forward FLOPs: formulas ---------------------------------------------------------------

def test_attention_terms_by_hand():
    flops = costs.forward_flops("attention", SMALL, B, T)
    assert flops["attn_scores"] == 2 * B * SMALL.n_heads * T * T * SMALL.d_head
    assert flops["attn_weighted_sum"] == flops["attn_scores"]
    assert flops["matmul"] == flops["total"] == 4 * B * T * T * SMALL.d_model


def test_model_adds_only_the_pooler():
    enc = costs.forward_flops("encoder", SMALL, B, T)
    model = costs.forward_flops("model", SMALL, B, T)
    assert model["pooler"] == 2 * B * SMALL.d_model ** 2
    assert model["matmul"] == enc["matmul"] + model["pooler"]
    assert model["elementwise"] > enc["elementwise"]


def test_elementwise_is_kept_apart():
    flops = costs.forward_flops("encoder_layer", SMALL, B, T)
    assert flops["matmul"] == sum(flops[k] for k in costs.MATMUL_KEYS)
    ew = costs.elementwise_flops("encoder_layer", SMALL, B, T)
    assert flops["elementwise"] == ew["total"]
    assert ew["softmax"] == 5 * B * SMALL.n_heads * T * T
    assert ew["activation"] == B * T * SMALL.d_ff                      # relu: 1 per element


def test_causal_does_not_change_the_dense_count():
    assert (costs.forward_flops("mha", SMALL, B, T, causal=True)
            == costs.forward_flops("mha", SMALL, B, T))


def test_backward_is_twice_forward():
    fwd = costs.forward_flops("encoder", SMALL, B, T)
    bwd = costs.backward_flops("encoder", SMALL, B, T)
    assert bwd == {k: 2 * v for k, v in fwd.items()}


@pytest.mark.parametrize("d, f", [(768, 3072), (64, 256), (512, 1000)])
def test_crossover_balances_quadratic_and_linear(d, f):
    cfg = ModelConfig(d_model=d, n_heads=4, d_ff=f)
    t = costs.crossover_seq_len(cfg)
    assert t == 2 * d + f
    flops = costs.forward_flops("encoder_layer", cfg, 1, t)
    quadratic = flops["attn_scores"] + flops["attn_weighted_sum"]
    assert quadratic == flops["matmul"] - quadratic
    assert costs.attention_share(flops) == 0.5


@pytest.mark.parametrize("kwargs, message", [
    ({"block": "decoder_stack"}, "block must be one of"),
    ({"batch": 0}, "batch must be a positive int"),
    ({"seq_len": 2.5}, "seq_len must be a positive int"),
])
def test_forward_flops_bad_arguments(kwargs, message):
    args = {"block": "mha", "cfg": SMALL, "batch": B, "seq_len": T, **kwargs}
    with pytest.raises(ValueError, match=message):
        costs.forward_flops(**args)


def test_cfg_must_be_a_model_config():
    with pytest.raises(TypeError, match="ModelConfig"):
        costs.forward_flops("mha", {"d_model": 64}, B, T)


# ---- forward FLOPs: FlopCounterMode on torch.nn -------------------------------------------

def test_mha_need_weights_path_counts_exactly(no_fastpath):
    mha = nn.MultiheadAttention(SMALL.d_model, SMALL.n_heads, batch_first=True)
    x = torch.randn(B, T, SMALL.d_model)
    # need_weights=True (the default) takes the explicit bmm path: every term is counted
    assert counted(lambda: mha(x, x, x)) == costs.forward_flops("mha", SMALL, B, T)["matmul"]


def test_encoder_layer_counts_exactly_under_the_math_backend(no_fastpath):
    layer = nn.TransformerEncoderLayer(SMALL.d_model, SMALL.n_heads, SMALL.d_ff, dropout=0.0,
                                       batch_first=True)
    x = torch.randn(B, T, SMALL.d_model)
    with sdpa_kernel(SDPBackend.MATH):
        got = counted(lambda: layer(x))
    assert got == costs.forward_flops("encoder_layer", SMALL, B, T)["matmul"]


def test_cpu_sdpa_counts_zero(no_fastpath):
    """The fact bench/trackers/flops.py corrects for: the fused CPU kernel is invisible to the counter."""
    layer = nn.TransformerEncoderLayer(SMALL.d_model, SMALL.n_heads, SMALL.d_ff, dropout=0.0,
                                       batch_first=True)
    x = torch.randn(B, T, SMALL.d_model)
    flops = costs.forward_flops("encoder_layer", SMALL, B, T)
    invisible = flops["attn_scores"] + flops["attn_weighted_sum"]
    assert counted(lambda: layer(x)) == flops["matmul"] - invisible
    q = torch.randn(B, SMALL.n_heads, T, SMALL.d_head)
    sdpa = torch.nn.functional.scaled_dot_product_attention
    assert counted(lambda: sdpa(q, q, q)) == 0
    with sdpa_kernel(SDPBackend.MATH):
        assert counted(lambda: sdpa(q, q, q)) == costs.forward_flops("attention", SMALL, B, T)["matmul"]


def test_eval_fast_path_counts_zero():
    layer = nn.TransformerEncoderLayer(SMALL.d_model, SMALL.n_heads, SMALL.d_ff,
                                       batch_first=True).eval()
    x = torch.randn(B, T, SMALL.d_model)
    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(True)
    try:
        with torch.inference_mode():
            assert counted(lambda: layer(x)) == 0
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


def test_decoder_layer_and_transformer_count_exactly(no_fastpath):
    cfg = SMALL
    dec = nn.TransformerDecoderLayer(cfg.d_model, cfg.n_heads, cfg.d_ff, dropout=0.0,
                                     batch_first=True)
    model = nn.Transformer(cfg.d_model, cfg.n_heads, cfg.n_layers, cfg.n_decoder_layers,
                           cfg.d_ff, dropout=0.0, batch_first=True)
    x, mem = torch.randn(B, T, cfg.d_model), torch.randn(B, T, cfg.d_model)
    with sdpa_kernel(SDPBackend.MATH):
        assert counted(lambda: dec(x, mem)) == costs.forward_flops("decoder_layer", cfg, B, T)["matmul"]
        assert counted(lambda: model(x, mem)) == costs.forward_flops("transformer", cfg, B, T)["matmul"]


def test_forward_backward_counts_three_times_forward(no_fastpath):
    layer = nn.TransformerEncoderLayer(SMALL.d_model, SMALL.n_heads, SMALL.d_ff, dropout=0.0,
                                       batch_first=True)
    x = torch.randn(B, T, SMALL.d_model, requires_grad=True)
    with sdpa_kernel(SDPBackend.MATH):
        got = counted(lambda: layer(x).sum().backward())
    fwd = costs.forward_flops("encoder_layer", SMALL, B, T)["matmul"]
    assert got == fwd + costs.backward_flops("encoder_layer", SMALL, B, T)["matmul"] == 3 * fwd


# ---- memory ------------------------------------------------------------------------------

def test_activation_memory_attention_matrix():
    acts = costs.activation_memory("mha", SMALL, B, T, 4)
    assert acts["attn_matrix"] == B * SMALL.n_heads * T * T * 4
    assert acts["total"] == sum(v for k, v in acts.items() if k != "total")
    fused = costs.activation_memory("mha", SMALL, B, T, 4, attn_impl="sdpa")
    assert fused["attn_matrix"] == 0 and fused["attn_stats"] == B * SMALL.n_heads * T * 4


def test_activation_memory_scales_with_layers():
    one = costs.activation_memory("encoder_layer", SMALL, B, T, 2)["total"]
    assert costs.activation_memory("encoder", SMALL, B, T, 2)["total"] == SMALL.n_layers * one


def test_explicit_peak_grows_quadratically_sdpa_does_not():
    cfg = preset("bert-base")
    explicit = [costs.predicted_peak_bytes("attention", cfg, 1, t, 4) for t in (1024, 2048)]
    fused = [costs.predicted_peak_bytes("attention", cfg, 1, t, 4, "sdpa") for t in (1024, 2048)]
    assert explicit[1] > 3.5 * explicit[0]
    assert fused[1] < 2.5 * fused[0]
    # the score matrix dominates: B·H·T·T·4 bytes at T=2048 is 192 MiB
    assert explicit[1] >= 12 * 2048 * 2048 * 4


def test_backward_peak_exceeds_forward():
    for block in ("attention", "mha", "ffn", "encoder_layer", "encoder", "model"):
        fwd = costs.predicted_peak_bytes(block, SMALL, B, T, 4)
        both = costs.predicted_peak_bytes(block, SMALL, B, T, 4, mode="forward+backward")
        assert both > fwd > 0


def test_library_holds_one_matrix_more_than_explicit():
    """torch's MATH sdpa: scores + probabilities + a boolean S == -inf, vs one in-place matrix."""
    cfg = preset("bert-base")
    b, t = 1, 2048
    matrix = b * cfg.n_heads * t * t * 4
    explicit = costs.predicted_peak_bytes("attention", cfg, b, t, 4)
    library = costs.predicted_peak_bytes("attention", cfg, b, t, 4, "library")
    assert library - explicit == pytest.approx(1.25 * matrix, rel=0.01)
    assert costs.activation_memory("mha", cfg, b, t, 4, "library")["attn_matrix"] == matrix


def test_numpy_model_mirrors_the_numpy_code():
    """The code and its peak model share one definition of the tile and block sizes."""
    import numpy as np

    from tfimpl import tiling
    from tfimpl.costs import _peak_numpy, _peak_torch
    from tfimpl.numpy import _threads, attention
    from tfimpl.torch import attention as torch_attention

    assert _peak_numpy.NUMPY_BUFSIZE == np.getbufsize()
    assert _threads.for_row_blocks.__kwdefaults__["block_elements"] == tiling.ROW_BLOCK_ELEMENTS
    assert _peak_numpy.ROW_BLOCK_ELEMENTS is tiling.ROW_BLOCK_ELEMENTS
    assert attention.tile_shape is tiling.tile_shape is _peak_numpy.tile_shape
    assert torch_attention.MASK_BLOCK_ELEMENTS is _peak_torch.MASK_BLOCK_ELEMENTS
    for shape, expected in [((12, 128, 128), (12, 128)), ((12, 4096, 4096), (1, 64)),
                            ((2, 300, 1000), (1, 262)), ((16, 8, 8), (16, 8))]:
        assert tiling.tile_shape(*shape) == expected


def test_numpy_workspace_is_bounded():
    """Scores + output + per-thread tiles: the tiles do not grow with T."""
    cfg = preset("bert-base")
    for t in (1024, 4096):
        dense = cfg.n_heads * t * (t + cfg.d_head) * 4
        extra = costs.predicted_peak_bytes("attention", cfg, 1, t, 4, causal=True, threads=4,
                                           backend="numpy") - dense
        assert 0 < extra <= 4 * 2 * 2 ** 20


@pytest.mark.parametrize("kwargs, message", [
    ({"attn_impl": "flash"}, "attn_impl must be one of"),
    ({"mode": "backward"}, "mode must be one of"),
    ({"bytes_per_element": 0}, "bytes_per_element must be a positive int"),
    ({"block": "decoder_layer"}, "block must be one of"),
])
def test_peak_bad_arguments(kwargs, message):
    args = {"block": "mha", "cfg": SMALL, "batch": B, "seq_len": T, "bytes_per_element": 4,
            **kwargs}
    with pytest.raises(ValueError, match=message):
        costs.predicted_peak_bytes(**args)
