"""`python -m bench params gpt2` and `python -m bench flops gpt2`: exact numbers from --json,
the text, and the per-token rules of thumb beside ours with their gaps decomposed exactly."""

import pytest

from support import run, run_json


def test_params_gpt2_total_counted_equal_to_huggingface(capsys):
    pytest.importorskip("transformers")
    s = run_json(capsys, "params", "gpt2")
    assert s["kind"] == "gpt" and s["params"]["total"] == 124_439_808
    assert s["library_name"] == "transformers.GPT2LMHeadModel"
    assert s["counted"]["library"] == s["counted"]["analytic"] == 124_439_808
    assert s["check"] is True and s["non_embedding"] == 85_056_000


def test_params_gpt2_medium_and_text(capsys):
    s = run_json(capsys, "params", "gpt2-medium", "--no-counted")
    assert s["params"]["total"] == 354_823_168
    rc, out, _ = run(capsys, "params", "gpt2", "--no-counted")
    assert rc == 0
    for text in ("124,439,808", "38,597,376", "tied", "7,087,872", "85,056,000"):
        assert text in out


def test_params_small_gpt_is_built_and_counted(capsys):
    pytest.importorskip("transformers")
    s = run_json(capsys, "params", "gpt2", "--layers", "2", "--vocab", "1000")
    total = (1000 + 1024) * 768 + 2 * 7_087_872 + 1536
    assert s["counted"]["tfimpl.numpy"] == s["counted"]["tfimpl.torch"] == total
    assert s["counted"]["library"] == total and s["check"] is True


def test_flops_gpt2_numbers(capsys):
    s = run_json(capsys, "flops", "gpt2", "--seq-len", "1024")
    t, d, f, layers, v = 1024, 768, 3072, 12, 50257
    dense = layers * (8 * t * d * d + 4 * t * d * f + 4 * t * t * d) + 2 * t * d * v
    assert s["block"] == "gpt" and s["forward"]["matmul"] == dense
    assert s["forward_causal"]["attn_scores"] == layers * 2 * (t * (t + 1) // 2) * d
    assert s["forward_backward"]["matmul"] == 3 * dense
    n, pt = 85_056_000, s["per_token"]
    assert pt["kaplan_forward"] == 2 * n + 2 * layers * t * d
    assert pt["palm_train"] == 6 * n + 12 * layers * 12 * 64 * t
    assert s["decode"]["kv_cache_bytes"]["fp32"] == 2 * layers * t * d * 4
    assert s["decode"]["step_flops"] == layers * (8 * d * d + 4 * d * f + 4 * t * d) + 2 * d * v


def test_flops_gpt2_gaps_decompose_exactly(capsys):
    s = run_json(capsys, "flops", "gpt2", "--seq-len", "512")
    pt, d, layers = s["per_token"], 768, 12
    extra = s["bias_and_norm_params"]
    assert pt["kaplan_2n"] - pt["ours_linear_forward"] == pytest.approx(2 * extra)
    # ours dense = 2N - 2·extra + 4·L·D·T + 2·D·V;  PaLM forward = 2N + 4·L·H·Q·T
    assert pt["ours_forward_dense"] == pytest.approx(pt["palm_forward"] - 2 * extra + pt["lm_head"])
    # ours causal = 2N - 2·extra + 2·L·D·(T+1) + 2·D·V;  Kaplan = 2N + 2·L·D·T
    assert pt["ours_forward_causal"] == pytest.approx(pt["kaplan_forward"] - 2 * extra
                                                      + 2 * layers * d + pt["lm_head"])
    assert len(s["differences"]) == 5


def test_flops_gpt2_text(capsys):
    rc, out, _ = run(capsys, "flops", "gpt2", "--seq-len", "1024")
    assert rc == 0
    for text in ("Kaplan", "PaLM", "2N + 2·L·n_ctx·D", "6N + 12·L·H·Q·T", "causal", "KV cache",
                 "291,648,307,200"):
        assert text in out
