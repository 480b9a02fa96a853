"""GPT-2 costs (tfimpl.costs.params kind "gpt", tfimpl.costs.decode): parameter counts exact
against HuggingFace's GPT2Model (built on the meta device: no memory), FLOPs against
FlopCounterMode on our torch model, causal pair counts against the mask, KV-cache bytes against
the cache we allocate, and the hand-derived numbers of the docstrings."""

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import tfimpl.numpy.gpt as ng
import tfimpl.torch.gpt as tg
from tfimpl import costs
from tfimpl import params as P
from tfimpl.config import PRESETS, ModelConfig
from tfimpl.costs import decode as D

HF_COUNTS = {"gpt2": 124_439_808, "gpt2-medium": 354_823_168, "gpt2-large": 774_030_080,
             "gpt2-xl": 1_557_611_200}
SMALL = ModelConfig(d_model=32, n_heads=4, d_ff=48, n_layers=2, vocab_size=70, max_position=64,
                    type_vocab_size=0, activation="gelu_tanh", norm_first=True,
                    layer_norm_eps=1e-5, final_norm=True, decoder_only=True)


@pytest.mark.parametrize("name", list(HF_COUNTS))
def test_param_counts_equal_huggingface(name):
    transformers = pytest.importorskip("transformers")
    cfg = PRESETS[name]
    counts = costs.param_counts("gpt", cfg)
    assert counts["total"] == HF_COUNTS[name]
    config = transformers.GPT2Config(n_embd=cfg.d_model, n_layer=cfg.n_layers, n_head=cfg.n_heads,
                                     vocab_size=cfg.vocab_size, n_positions=cfg.max_position)
    with torch.device("meta"):
        model = transformers.GPT2Model(config)
    assert sum(p.numel() for p in model.parameters()) == counts["total"]
    layout = P.param_shapes("gpt", cfg)                    # the layout init_params fills
    assert sum(int(np.prod(s)) for s in layout.values()) == counts["total"]


def test_gpt2_breakdown_by_hand():
    c = costs.param_counts("gpt", PRESETS["gpt2"])
    assert c["embeddings.word"] == 50257 * 768 == 38_597_376
    assert c["embeddings.position"] == 1024 * 768
    assert c["per_layer"] == 7_087_872 and c["blocks"] == 12 * 7_087_872
    assert c["final_norm"] == 1536 and c["lm_head"] == 0
    assert costs.non_embedding_params("gpt", PRESETS["gpt2"]) == 85_056_000


def counted(fn) -> int:
    with FlopCounterMode(display=False) as mode:
        fn()
    return mode.get_total_flops()


@pytest.mark.parametrize("batch, prompt", [(1, 7), (2, 5)])
def test_flops_equal_flop_counter_on_our_torch_model(batch, prompt):
    p = P.to_torch(P.init_params("gpt", SMALL, seed=0), torch.float64)
    ids = torch.randint(0, SMALL.vocab_size, (batch, prompt + 3))
    with torch.no_grad():
        cache = tg.new_cache(SMALL, batch, prompt + 3, torch.float64)
        n = counted(lambda: tg.gpt(p, ids[:, :prompt], SMALL, cache=cache, logits="last"))
        assert n == costs.prefill_flops(SMALL, batch, prompt)["total"]
        for step in range(3):
            context = prompt + step
            n = counted(lambda: tg.decode_step(p, ids[:, context], SMALL, cache))
            assert n == costs.decode_flops(SMALL, batch, context)["total"]
        n = counted(lambda: tg.gpt(p, ids, SMALL, logits="last"))
        assert n == costs.decode_recompute_flops(SMALL, batch, prompt + 2)["total"]
        n = counted(lambda: tg.gpt(p, ids, SMALL, logits="all"))
        assert n == costs.prefill_flops(SMALL, batch, prompt + 3, logits="all")["total"]


@pytest.mark.parametrize("new, context", [(1, 0), (1, 9), (6, 0), (4, 5)])
def test_causal_pairs_are_the_mask_true_count(new, context):
    from tfimpl.numpy.attention import causal_mask

    allowed = int(causal_mask(new, context + new, offset=context).sum())
    assert D.attention_pairs(new, context, "causal") == allowed
    assert D.attention_pairs(new, context, "dense") == new * (context + new)


def test_decode_is_linear_in_context_and_recompute_quadratic():
    cfg = PRESETS["gpt2"]
    f = [costs.decode_flops(cfg, 1, n)["total"] for n in (0, 1000, 2000)]
    assert f[2] - f[1] == f[1] - f[0] == 4 * cfg.n_layers * 1000 * cfg.d_model     # slope 4·L·D
    assert costs.decode_flops(cfg, 1, 1000, "causal") == costs.decode_flops(cfg, 1, 1000)
    r = [costs.decode_recompute_flops(cfg, 1, n)["total"] for n in (999, 1999, 2999)]
    assert (r[2] - r[1]) - (r[1] - r[0]) == 4 * cfg.n_layers * cfg.d_model * 2 * 1000 ** 2
    dense, causal = costs.prefill_flops(cfg, 1, 1024), costs.prefill_flops(cfg, 1, 1024, "causal")
    assert dense["attn_scores"] == 12 * 2 * 1024 * 1024 * 768
    assert causal["attn_scores"] == 12 * 2 * (1024 * 1025 // 2) * 768
    assert dense["lm_head"] == 2 * 768 * 50257 and dense["ffn1"] == 12 * 2 * 1024 * 768 * 3072


def test_kv_cache_bytes_match_the_allocated_cache():
    cfg = PRESETS["gpt2"]
    assert costs.kv_cache_bytes(cfg, 1, 1024, 4) == 75_497_472                  # 2·12·1024·768·4
    p = P.init_params("gpt", SMALL, seed=1, dtype=np.float32)
    _, cache = ng.prefill(p, np.zeros((3, 10), np.int64), SMALL, capacity=10)
    assert cache.nbytes == cache.allocated_bytes == costs.kv_cache_bytes(SMALL, 3, 10, 4)
    ptc = tg.new_cache(SMALL, 2, 16, torch.bfloat16)
    assert ptc.allocated_bytes == costs.kv_cache_bytes(SMALL, 2, 16, 2)


def test_decode_bytes_and_time_floor():
    cfg = PRESETS["gpt2"]
    b = costs.decode_bytes(cfg, 1, 1024, 4)
    weights = 12 * 7_087_872 + 1536 + 38_597_376 + 768           # blocks, LN_f, token table, 1 position row
    assert b["weights"] == 4 * weights
    assert b["kv_read"] == 75_497_472 and b["kv_write"] == 2 * 12 * 768 * 4
    assert b["logits"] == 4 * 50257 and b["total"] == sum(v for k, v in b.items() if k != "total")
    assert costs.decode_time_floor_s(cfg, 1, 1024, 4, 10e9) == pytest.approx(b["total"] / 10e9)
    with pytest.raises(ValueError, match="bandwidth"):
        costs.decode_time_floor_s(cfg, 1, 1024, 4, 0)


def test_rules_of_thumb_by_hand():
    r = costs.rules_of_thumb(PRESETS["gpt2"], 1024)
    n = 85_056_000
    assert r["kaplan_forward"] == 2 * n + 2 * 12 * 1024 * 768
    assert r["palm_train"] == 6 * n + 12 * 12 * 12 * 64 * 1024 and r["palm_forward"] * 3 == r["palm_train"]


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match="count"):
        costs.decode_flops(SMALL, 1, 4, count="useful")
    with pytest.raises(ValueError, match="context"):
        costs.decode_flops(SMALL, 1, -1)
    with pytest.raises(ValueError, match="logits"):
        D.step_flops(SMALL, 1, 2, logits="some")
