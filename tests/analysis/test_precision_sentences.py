"""The precision "because" sentences come from the run's measured matmul peak, not the CPU flags
(issue #23 item 2): bench.analysis.precisions.isa_sentence / isa_lines / dtype_words, the
training amp row, the README findings' machine words, and a re-rendered report of real runs."""

import json
import shutil
from pathlib import Path

import pytest

from bench.analysis import precisions
from bench.analysis.report import findings, write_report

ROOT = Path(__file__).resolve().parents[2]
XEON = Path("/work/shared/runs/xeon-207-seq_sweep")
REFERENCE = ROOT / "results" / "reference"
AVX512_BF16 = ["avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni"]


def _meta(bf16, fp32=327.0, flags=AVX512_BF16, fp16=None, source="measured"):
    return {"cpu_flags": flags,
            "machine_peak": {"torch": {"fp32": fp32, "bf16": bf16, "fp16": fp16},
                             "numpy": {"fp32": 300.0, "bf16": None, "fp16": None},
                             "threads": 2, "device": "cpu", "source": source}}


def test_bf16_peak_below_fp32_says_slower_with_the_ratio():
    text = precisions.isa_sentence(_meta(167.9, 326.7))
    assert text.startswith("bf16 matmul ran at 0.51× fp32 here (slower; torch, 168 vs 327 "
                           "GFLOP/s, this run's peak measurement)")
    assert "lists avx512_bf16 but no AMX: the library's bf16 kernels do not use it here" in text
    assert "can beat" not in text and "natively" not in text      # the old flag-derived claim


def test_bf16_peak_above_fp32_says_faster_with_the_ratio():
    text = precisions.isa_sentence(_meta(939.6, 226.0, source="cache"))
    assert text.startswith("bf16 matmul ran at 4.16× fp32 here (faster; torch, 940 vs 226 "
                           "GFLOP/s, this machine's peak measurement, cached)")
    assert "has avx512_bf16 but no AMX: the library's bf16 kernels use it here" in text


def test_fp16_ratio_quoted_where_measured():
    text = precisions.isa_sentence(_meta(167.9, 326.7, flags=AVX512_BF16 + ["avx512_fp16"],
                                         fp16=3.0))
    assert "bf16 matmul ran at 0.51× fp32" in text and "fp16 matmul ran at 0.01× fp32" in text
    assert "the library's fp16 kernels do not use it here" in text
    assert "fp16" not in precisions.isa_sentence(_meta(167.9, 326.7))     # not measured: bf16 only


@pytest.mark.parametrize("meta", [
    _meta(None), {"cpu_flags": AVX512_BF16, "machine_peak": None}, {"cpu_flags": AVX512_BF16}])
def test_no_peak_falls_back_to_the_flags_saying_so(meta):
    text = precisions.isa_sentence(meta)
    assert text.startswith("This run did not measure the bf16 matmul peak (torch)")
    assert "expected to beat fp32" in text and "an expectation from the flags, not measured" in text
    no_native = precisions.isa_sentence({**meta, "cpu_flags": ["avx2", "fma"]})
    assert "expected slower than fp32" in no_native and "not measured" in no_native


def test_no_flags_still_quotes_the_peak():
    text = precisions.isa_sentence({"machine_peak": _meta(167.9)["machine_peak"]})
    assert text.startswith("bf16 matmul ran at 0.51× fp32") and "not in meta.json" in text


def test_peak_at_other_threads_is_said():
    text = precisions.isa_sentence(_meta(167.9), threads=1, device="cpu")
    assert "peak measured with 2 thread(s), case runs 1" in text


def test_measured_faster_without_native_flags_is_not_contradicted():
    text = precisions.dtype_words(_meta(400.0, 200.0, flags=["avx2"]), "bf16")
    assert "2.00× fp32 here (faster" in text and "yet the library's bf16 matmul kept pace" in text
    assert "expected slower" not in text


def test_findings_machine_words_quote_the_peak():
    words = findings.machine_words({**_meta(167.9), "cpu": {"model": "X", "logical_cores": 2}})
    assert words == ("2 cores of X (avx512_bf16: yes, AMX-BF16: no; bf16 matmul peak 0.51× "
                     "fp32, torch, measured)")


def _rerender(src: Path, tmp_path: Path) -> tuple[str, dict]:
    if not (src / "meta.json").exists():
        pytest.skip(f"{src} not present")
    run = tmp_path / src.name
    run.mkdir()
    for name in ("meta.json", "records.jsonl", "config.yaml"):
        if (src / name).exists():
            shutil.copy(src / name, run / name)
    paths = write_report(run)
    return paths["report"].read_text(), json.loads(paths["summary"].read_text())


def _precision_sentences(summary: dict) -> list[str]:
    return [r["sentence"] for r in summary["claims"] if r["kind"] == "precision"]


def test_xeon_run_rerendered_quotes_its_measured_ratio(tmp_path):
    """The 2-vCPU Xeon (avx512_bf16, no AMX) where bf16 ran at 0.58× fp32: the sentence now
    says its bf16 matmul peak was 0.51× fp32, not that bf16 can beat fp32."""
    report, summary = _rerender(XEON, tmp_path)
    sentences = _precision_sentences(summary)
    assert sentences
    for s in sentences:
        assert "(slower)" in s
        assert "bf16 matmul ran at 0.51× fp32 here (slower; torch, 168 vs 327 GFLOP/s" in s
        assert "the library's bf16 kernels do not use it here" in s and "can beat" not in s
    assert "- bf16: bf16 matmul ran at 0.51× fp32 here" in report
    assert "NOT as expected" not in report and "can beat fp32" not in report


def test_reference_run_rerendered_quotes_its_measured_ratio(tmp_path):
    """The AMD EPYC reference (avx512_bf16, bf16 3.7× fp32): the sentence gives 4.16×."""
    report, summary = _rerender(REFERENCE, tmp_path)
    sentences = _precision_sentences(summary)
    assert sentences
    for s in sentences:
        assert "bf16 matmul ran at 4.16× fp32 here (faster; torch, 940 vs 226 GFLOP/s" in s
        assert "has avx512_bf16 but no AMX: the library's bf16 kernels use it here" in s
    assert "can beat fp32" not in report


def test_training_amp_row_quotes_the_peak_not_the_flags():
    import pandas as pd

    from bench.analysis import training

    base = dict(impl="torch", block="encoder_layer", batch=2, seq_len=64, d_model=32, n_heads=2,
                d_ff=64, layers=1, activation="gelu", norm_first=False, causal=False, threads=2,
                device="cpu", checkpoint=False, compile=False, ok=True, mode="train",
                peak_bytes=100.0, backend="torch")
    fp32 = {**base, "precision": "fp32", "samples_s": [1.0, 1.0, 1.01], "median_s": 1.0}
    amp = {**base, "precision": "amp-bf16", "samples_s": [1.7, 1.7, 1.71], "median_s": 1.7,
           "peak_bytes": 80.0}
    rows = training.trick_rows(pd.DataFrame([fp32, amp]), _meta(167.9, 326.7))
    row = [r for r in rows if r["id"] == "train.amp"][0]
    assert "bf16 matmul ran at 0.51× fp32 here (slower; torch" in row["sentence"]
    assert "the library's bf16 kernels do not use it here" in row["sentence"]
    rows = training.trick_rows(pd.DataFrame([fp32, amp]), {"cpu_flags": ["avx2"]})
    text = [r for r in rows if r["id"] == "train.amp"][0]["sentence"]
    assert "did not measure the bf16 matmul peak" in text and "expected slower" in text
