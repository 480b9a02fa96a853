"""bench.analysis.libraries: time ratios to torch, size by size, with hand-computed values."""

import math

import pandas as pd

from bench.analysis.libraries import library_lines, library_ratios


def frame(rows):
    base = {"block": "encoder_layer", "precision": "fp32", "mode": "forward", "batch": 1,
            "d_model": 64, "n_heads": 4, "d_ff": 256, "layers": 1, "threads": 2, "ok": True,
            "compile_s": None}
    return pd.DataFrame([{**base, **r} for r in rows])


def test_ratios_pair_equal_cases_and_take_the_geometric_mean():
    df = frame([
        {"impl": "torch", "seq_len": 64, "median_s": 0.010},
        {"impl": "torch", "seq_len": 128, "median_s": 0.020},
        {"impl": "keras", "seq_len": 64, "median_s": 0.020},          # 2x
        {"impl": "keras", "seq_len": 128, "median_s": 0.010},         # 0.5x
        {"impl": "keras", "seq_len": 256, "median_s": 0.5},           # no torch case: left out
        {"impl": "keras-xla", "seq_len": 64, "median_s": 0.005, "compile_s": 2.0},
        {"impl": "keras-xla", "seq_len": 64, "median_s": 0.005, "precision": "bf16"},
        {"impl": "numpy", "seq_len": 64, "median_s": 1.0, "ok": False},
    ])
    rows = {(r["impl"], r["precision"]): r for r in library_ratios(df)}
    assert set(rows) == {("keras", "fp32"), ("keras-xla", "fp32")}   # bf16 has no torch partner
    keras = rows[("keras", "fp32")]
    assert keras["ratios"] == [2.0, 0.5] and keras["seq_lens"] == [64, 128]
    assert math.isclose(keras["geomean_ratio"], 1.0)
    assert keras["largest_ratio"] == 0.5 and keras["compile_s_median"] is None
    assert rows[("keras-xla", "fp32")]["compile_s_median"] == 2.0
    text = "\n".join(library_lines(library_ratios(df)))
    assert "keras/torch time ratio 1× (geometric mean over 2 sizes), 0.5× at n=128" in text
    assert "2.00 s median, not in the samples" in text


def test_no_torch_no_section():
    df = frame([{"impl": "keras", "seq_len": 64, "median_s": 0.02}])
    assert library_ratios(df) == [] and library_lines([]) == []
