"""bench.analysis.quantization: the int8 verdict rows (speedup with CI, weight bytes against
the cost model, errors), the because from the measured int8 peak, ORT vs torch, and the report
opening with them."""

import pandas as pd

from bench.analysis import precisions, quantization
from bench.analysis.verdict_row import HELD, NOT_ENOUGH

META = {"machine_peak": {"torch": {"fp32": 25.0, "int8": 60.0}, "numpy": {"fp32": 30.0}},
        "cpu_flags": ["avx2", "fma"]}


def _case(impl, precision, median, weight, predicted, err, block="encoder_layer", n=512):
    return {"impl": impl, "block": block, "batch": 1, "seq_len": n, "d_model": 768,
            "n_heads": 12, "d_ff": 3072, "layers": 1, "precision": precision, "device": "cpu",
            "threads": 2, "mode": "forward", "status": "ok", "ok": True, "median_s": median,
            "samples_s": [median * f for f in (0.99, 1.0, 1.01, 1.0, 0.995)],
            "peak_bytes": 1e6, "rel_l2_err": err, "weight_bytes": weight,
            "weight_bytes_predicted": predicted, "compile_s": 3.0}


def _frame():
    fp32_bytes, int8_bytes = 4 * 7_077_888, 7_077_888 + 30
    return pd.DataFrame([
        _case("hf-bert", "fp32", 0.10, fp32_bytes, fp32_bytes, 3e-7),
        _case("hf-bert", "int8", 0.05, int8_bytes, int8_bytes, 1e-2),
        _case("onnxruntime", "fp32", 0.08, fp32_bytes, fp32_bytes, 3e-7),
        _case("onnxruntime", "int8", 0.081, int8_bytes, int8_bytes + 5, 1e-2),
    ])


def test_rows_speedup_ci_bytes_and_errors():
    df = _frame()
    rows = quantization.rows(precisions.precision_table(df), df, META)
    by = {r.impl: r for r in rows}
    assert set(by) == {"hf-bert", "onnxruntime"}
    hf = by["hf-bert"]
    assert hf.value == 2.0 and hf.ci_low > 1 and hf.verdict == HELD
    assert "4.00× smaller" in hf.sentence and "= tfimpl.costs exactly" in hf.sentence
    assert "2.40× fp32's" in hf.sentence and "60 vs 25 GOP/s" in hf.sentence
    assert "no VNNI" in quantization.because(META)
    assert "1.0e-02 vs fp64 (fp32: 3.0e-07)" in hf.sentence
    ort = by["onnxruntime"]
    assert ort.verdict == NOT_ENOUGH                  # 0.99×, its CI straddles 1
    assert "tfimpl.costs predicts" in ort.sentence and "(+0 B)" not in ort.sentence
    assert "MLAS" in ort.sentence


def test_runtime_lines_compare_ort_with_the_module_it_came_from():
    lines = quantization.runtime_lines(_frame())
    assert len(lines) == 2 and "fp32: onnxruntime ran at 1.25×" in lines[0]


def test_because_without_the_int8_peak_says_it_was_not_measured():
    text = quantization.because({"machine_peak": {"torch": {"fp32": 25.0}}, "cpu_flags": None})
    assert text.startswith("This run did not measure the int8 matmul peak")


def test_section_lists_each_case_in_full():
    df = _frame()
    lines = quantization.section(precisions.precision_table(df), df, META)
    assert lines[0] == "## int8 (dynamic quantization)" and "no VNNI" in lines[2]
    assert any("(fp32: 3.0e-07)." in line for line in lines)


def test_section_is_empty_without_int8():
    df = _frame()
    df = df[df["precision"] == "fp32"]
    assert quantization.section(precisions.precision_table(df), df, META) == []
