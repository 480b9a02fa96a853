"""The GPT blocks in the harness (bench/blocks/gpt.py, bench/impls/gpt_ours.py, hf_gpt2.py,
bench/analysis/generation.py): tiny cases run end to end, counted FLOPs equal the analytic, the KV
cache's allocated bytes equal 2·L·B·n·D·s, the implementations agree, bad input is a one-line
config error (exit 2), and the verdicts on synthetic records say what the numbers say."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from bench.analysis import generation as verdicts
from bench.case import Case, Measure
from bench.cli import dispatch as main
from bench.run.runner import RECORD_KEYS, run_case

FAST = Measure(warmup=1, min_repeats=2, min_time_s=0.0, max_time_s=0.5, budget_s=30)
TINY = dict(d_model=32, n_heads=4, d_ff=48, layers=2, vocab_size=97, threads=1, causal=True,
            norm_first=True, activation="gelu_tanh", precision="fp32")
IMPLS = ["numpy", "torch", "torch-sdpa", "hf-gpt2"]


def case(impl, block, seq_len=12, **kw):
    return Case(impl=impl, block=block, seq_len=seq_len, **{**TINY, **kw})


@pytest.mark.parametrize("block", ["prefill", "decode", "decode-recompute"])
def test_blocks_run_count_and_agree(block):
    if "hf-gpt2" in IMPLS:
        pytest.importorskip("transformers")
    outputs = {}
    for impl in IMPLS:
        r = run_case(case(impl, block), FAST)
        assert r["status"] == "ok", r["status"]
        assert set(RECORD_KEYS) <= set(r)
        if impl != "numpy":
            assert r["flops_match"] is True, (impl, r["flops_counted"], r["flops_analytic"])
        if block == "decode-recompute":
            assert r["kv_bytes_measured"] is None and r["kv_bytes_analytic"] is None
        else:
            tokens = 12 + (block == "decode")
            assert r["kv_bytes_measured"] == r["kv_bytes_analytic"] == 2 * 2 * 1 * tokens * 32 * 4
        assert r["max_rel_err"] is not None and r["max_rel_err"] < 1e-3      # fp32 vs fp64
        assert (r["decode_bytes_min"] is not None) == (block == "decode")
        outputs[impl] = r
    flops = {r["flops_analytic"] for r in outputs.values()}
    assert len(flops) == 1


@pytest.mark.parametrize("block", ["decode", "decode-recompute", "generate"])
def test_the_implementations_give_the_same_logits(block):
    """decode: the same seeded context cache in all four (bench.blocks.gpt.context_cache)."""
    pytest.importorskip("transformers")
    from bench.impls.prepare import prepare

    logits = []
    for impl in IMPLS:
        p = prepare(case(impl, block, precision="fp64", new_tokens=3 * (block == "generate")))
        p.fn()
        p.fn()                                               # a second call sees the same state
        logits.append(p.output())
    for other in logits[1:]:
        assert np.abs(other - logits[0]).max() <= 1e-10 * np.abs(logits[0]).max()


def test_generate_records_latencies_and_throughput():
    pytest.importorskip("transformers")
    for impl in IMPLS:
        r = run_case(case(impl, "generate", seq_len=6, new_tokens=5), FAST)
        assert r["status"] == "ok", r["status"]
        assert r["kv_bytes_measured"] == r["kv_bytes_analytic"] == 2 * 2 * (6 + 4) * 32 * 4
        assert 0 < r["ttft_s"] and 0 < r["itl_p50_s"] <= r["itl_p90_s"] <= r["itl_p99_s"]
        assert r["prefill_tokens_per_s"] > 0 and r["decode_tokens_per_s"] > 0
        if impl != "numpy":
            assert r["flops_match"] is True


def validate(tmp_path, capsys, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    rc = main(["validate", str(path)])
    return rc, capsys.readouterr().err


DEFAULTS = ("defaults: {d_model: 32, n_heads: 4, d_ff: 48, layers: 2, vocab_size: 97, "
            "threads: 1, causal: true, norm_first: true}\n")


@pytest.mark.parametrize("fixed, key, words", [
    ("{impl: torch, block: decode, seq_len: 64, max_position: 64}", "seq_len",
     "beyond the position table"),
    ("{impl: torch, block: encoder, seq_len: 8, new_tokens: 4, causal: false}", "new_tokens",
     "has no cache"),
    ("{impl: torch-nn, block: decode, seq_len: 8}", "impl", "cannot run block 'decode'"),
    ("{impl: numpy, block: decode, seq_len: 8, precision: bf16}", "precision", "bf16"),
    ("{impl: torch, block: decode, seq_len: 8, mode: forward+backward}", "mode", "inference only"),
    ("{impl: torch, block: generate, seq_len: 8}", "new_tokens", "new_tokens >= 1"),
])
def test_bad_input_is_a_one_line_config_error(tmp_path, capsys, fixed, key, words):
    rc, err = validate(tmp_path, capsys, DEFAULTS + f"fixed: {fixed}\n")
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert key in err.split(": ")[2] and words in err              # the field to blame


# ---- verdicts on synthetic records ---------------------------------------------------------

def record(block, n, seconds, impl="torch", **extra):
    rng = np.random.default_rng(n)
    samples = list(seconds * (1 + 0.01 * rng.standard_normal(9)))
    return {"impl": impl, "block": block, "precision": "fp32", "seq_len": n, "batch": 1,
            "ok": True, "median_s": float(np.median(samples)), "samples_s": samples,
            "backend": "torch", "flops_analytic": extra.pop("flops", 1e9),
            "flops_by_component": extra.pop("parts", {}), "kv_bytes_measured": None,
            "kv_bytes_analytic": None, "decode_bytes_min": None, "new_tokens": 0, **extra}


def test_verdicts_follow_the_numbers():
    ns = [64, 128, 256, 512, 1024, 2048]
    rows = [record("decode", n, 0.02 + 2e-6 * n, kv_bytes_measured=10 * n, kv_bytes_analytic=10 * n,
                   decode_bytes_min=5e8 + 1e4 * n) for n in ns]
    rows += [record("decode-recompute", n, 1e-4 * n + 1e-7 * n * n, flops=10.0,
                    parts={"attn_scores": 1.0, "attn_weighted_sum": 1.0}) for n in ns]
    rows += [record("prefill", 2048, 0.5, flops=2e11), ]
    rows[-1]["kv_bytes_measured"] = rows[-1]["kv_bytes_analytic"] = 3
    df = pd.DataFrame(rows)
    meta = {"machine_peak": {"bandwidth": {"torch": {"triad": 40.0}}}}     # GB/s
    out = {(r["block"], r["metric"]): r for r in verdicts.all_rows(df, meta)}
    assert out[("decode", "time")]["verdict"] in ("held",)
    assert out[("decode-recompute", "time")]["verdict"] == "held"
    assert out[("decode", "memory")]["verdict"] == "held"
    assert out[("prefill", "flops")]["verdict"] == "held"
    floor = [r for r in verdicts.floor_rows(df, meta)][0]
    expected = (0.02 + 2e-6 * 2048) / ((5e8 + 1e4 * 2048) / 40e9)      # 1.85x the floor
    assert floor["value"] == pytest.approx(expected, rel=0.02)
    assert floor["verdict"] == "held"
    # a quadratic decode is caught, unequal KV bytes too
    bad = df.copy()
    bad.loc[bad["block"] == "decode", "median_s"] = [1e-7 * n * n for n in ns]
    bad["samples_s"] = [[m] * 9 for m in bad["median_s"]]
    bad.loc[bad["block"] == "decode", "kv_bytes_measured"] = [11 * n for n in ns]
    out = {(r["block"], r["metric"]): r for r in verdicts.all_rows(bad, meta)}
    assert out[("decode", "time")]["verdict"] == "did not hold"
    assert out[("decode", "memory")]["verdict"] == "did not hold"
    assert verdicts.section(df, meta)[0].startswith("## Generation")


def test_no_gpt_blocks_no_rows():
    df = pd.DataFrame([dataclasses.asdict(Case()) | {"ok": True, "median_s": 1.0}])
    assert verdicts.all_rows(df, {}) == []
