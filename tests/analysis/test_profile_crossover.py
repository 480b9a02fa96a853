"""bench.analysis.step_crossover: the excess-time split by hand, and a section from real records."""

import pytest

from bench.analysis import step_crossover


def test_explain_by_hand():
    # ffn: 4 GFLOP in 2 s -> 2 GFLOP/s. scores 2 GFLOP in 1 s (expected 1 s), softmax 0.2 GFLOP
    # in 0.6 s (expected 0.1 s, excess 0.5 s), weighted sum 2 GFLOP in 1.2 s (excess 0.2 s)
    attn = {"scores": 1.0, "softmax": 0.6, "weighted_sum": 1.2}
    attn_flops = {"scores": 2e9, "softmax": 2e8, "weighted_sum": 2e9}
    got = step_crossover.explain(attn, attn_flops, {"ffn1": 1.0, "activation": 0.2, "ffn2": 0.8},
                                 {"ffn1": 2e9, "activation": 1e7, "ffn2": 2e9 - 1e7})
    assert got["r_ffn_gflops"] == pytest.approx(2.0)
    assert got["steps"]["softmax"]["expected_s"] == pytest.approx(0.1)
    assert got["steps"]["softmax"]["excess_s"] == pytest.approx(0.5)
    assert got["steps"]["scores"]["excess_s"] == pytest.approx(0.0)
    assert got["worst"] == "softmax"


def test_no_profile_no_section():
    import pandas as pd

    assert step_crossover.section(pd.DataFrame()) == []
    from bench.analysis.frame import records_frame

    df = records_frame([{"impl": "numpy", "block": "ffn", "status": "ok", "median_s": 1.0,
                         "mode": "forward"}])
    assert step_crossover.section(df) == []


def test_section_from_profiled_records():
    from bench.analysis.frame import records_frame
    from bench.case import Case, Measure
    from bench.run.runner import run_case

    quick = Measure(warmup=1, min_repeats=2, min_time_s=0.0, max_time_s=0.3, accuracy=False,
                    measure_memory=False, count_flops=False, profile=True)
    records = [run_case(Case(impl="numpy", block=block, seq_len=n, d_model=32, n_heads=4,
                             d_ff=64, threads=1), quick)
               for block in ("attention", "ffn") for n in (16, 32, 64)]
    assert all(r["profile_status"] == "ok" for r in records)
    lines = step_crossover.section(records_frame(records, {}))
    text = "\n".join(lines)
    assert lines[0].startswith("## The crossover, step by step")
    assert "**numpy** attention vs **numpy** ffn" in text and "predicted 64 from FLOPs" in text
    assert "| 16 |" in text and "| 64 |" in text and "softmax ms" in text
