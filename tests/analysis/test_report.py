"""report.md, summary.json and PNGs from a synthetic run folder; the `report` command."""

import importlib.util
import json
from pathlib import Path

import pytest

from bench.analysis.report.markdown import write_report
from bench.cli import dispatch as cli

_spec = importlib.util.spec_from_file_location(
    "synthetic_run", Path(__file__).parent.parent / "data" / "synthetic_run.py")
synthetic = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(synthetic)

SUMMARY_KEYS = {"impl", "block", "precision", "metric", "variable", "exponent", "ci_low",
                "ci_high", "theory", "verdict", "r2", "n_points", "range", "method"}


def _small_records():
    """numpy + torch, attention / mha / ffn, fp32 + one bf16 series: every plot, fewer lines."""
    keep = []
    for r in synthetic.make_records(seed=0):
        if r["impl"] == "torch-sdpa" or r["block"] == "encoder_layer":
            continue
        if r["precision"] == "bf16" and r["block"] != "attention":
            continue
        keep.append(r)
    return keep


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run_dir = synthetic.make_run(tmp_path_factory.mktemp("run") / "synthetic-run",
                                 records=_small_records())
    return run_dir, write_report(run_dir)


def test_files_written(run):
    run_dir, paths = run
    assert paths["report"] == run_dir / "report.md" and paths["report"].stat().st_size > 0
    assert paths["summary"] == run_dir / "summary.json"
    names = {p.name for p in paths["plots"]}
    for expected in ("time_vs_seq_len_attention.png", "flops_vs_seq_len.png",
                     "memory_vs_seq_len.png", "attention_share.png", "gflops_vs_peak.png",
                     "time_vs_d_model_ffn.png", "precision.png", "local_slopes.png"):
        assert expected in names
    for p in paths["plots"]:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000


def test_summary_json(run):
    run_dir, _ = run
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["fits"]
    for entry in summary["fits"]:
        assert SUMMARY_KEYS <= set(entry)
        assert entry["verdict"] in ("held", "did not hold", "not enough data", None)
    attn = [e for e in summary["fits"] if e["impl"] == "numpy" and e["block"] == "attention"
            and e["metric"] == "time" and e["variable"] == "seq_len"]
    assert len(attn) == 1 and attn[0]["verdict"] == "held" and attn[0]["theory"] == 2
    assert summary["rule"]["llc_bytes"] == synthetic.L3
    assert summary["attention_share_source"] == ["attention / (attention + ffn)"]   # the crossover definition


def test_report_text(run):
    run_dir, paths = run
    text = paths["report"].read_text()
    assert "**Machine:** Synthetic CPU" in text and "**Software:** Python" in text
    assert "| block | metric vs | impl |" in text
    assert text.startswith("## Verdicts\n")
    assert "| Attention: O(n²) time (O(n²·d)) | numpy fp32 | n^2 |" in text
    assert "Time of numpy fp32 at d = 768 grew as n^" in text
    assert "**Matmul peak source:**" in text
    assert "cache-set aliasing suspected" in text          # numpy at T = 1024
    assert "![" in text and "(plots/time_vs_seq_len_attention.png)" in text
    assert "## Precision" in text and "bf16" in text
    assert "## Every case" in text and "failed: MemoryError" in text
    for p in paths["plots"]:
        assert f"(plots/{p.name})" in text


def test_report_survives_a_run_without_measurements(tmp_path):
    recs = [synthetic.record("torch", "attention", "fp32", 512, 768, None, status="failed: x")]
    run_dir = synthetic.make_run(tmp_path / "empty", records=recs, meta={})
    paths = write_report(run_dir)
    assert paths["plots"] == []
    text = paths["report"].read_text()
    assert "0 measured" in text and "unknown CPU" in text
    assert json.loads(paths["summary"].read_text())["fits"] == []


def test_report_command(tmp_path, capsys):
    recs = [r for r in _small_records() if r["block"] == "ffn" and r["d_model"] == 768]
    run_dir = synthetic.make_run(tmp_path / "cli-run", records=recs)
    assert cli(["report", str(run_dir), "--min-points", "5", "--top-octaves", "2"]) == 0
    assert "wrote" in capsys.readouterr().out
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["rule"]["min_points"] == 5 and summary["rule"]["top_octaves"] == 2
    mem = next(e for e in summary["fits"] if e["metric"] == "memory" and e["impl"] == "torch"
               and e["precision"] == "fp32")
    assert mem["regime"] == "top octaves" and mem["range"] == [4096.0, 16384.0]
    assert cli(["report", str(tmp_path / "nope")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert cli(["report", str(run_dir), "--min-points", "1"]) == 2


def test_report_parser_does_not_import_numpy():
    """The CLI builds every sub-command's parser for --help: no NumPy at that point."""
    import subprocess
    import sys

    code = ("import argparse, sys\n"
            "from bench.commands import report\n"
            "report.add_arguments(argparse.ArgumentParser())\n"
            "print('numpy' in sys.modules, 'pandas' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


PEAK = {"numpy": {"fp64": 100.0, "fp32": 200.0, "bf16": None, "fp16": None},
        "torch": {"fp64": 100.0, "fp32": 210.0, "bf16": 50.0, "fp16": None},
        "notes": {"numpy.bf16": "no dtype"}, "details": {"torch.fp32": [{"n": 1024}]},
        "threads": 2, "device": "cpu", "key": {"threads": 2, "device": "cpu"}}


@pytest.mark.parametrize("backend, precision, threads, device, expected", [
    ("torch", "fp32", 2, "cpu", 210.0),
    ("torch", "amp-bf16", 2, "cpu", 50.0),       # autocast matmuls run in bf16
    ("torch", "tf32", 2, "cpu", 210.0),          # tf32 is an fp32 matmul on a CPU
    ("numpy", "fp32", 2, "cpu", 200.0),
    ("torch", "fp16", 2, "cpu", None),           # not measured
    ("torch", "amp-fp16", 2, "cpu", None),
    ("torch", "fp32", 1, "cpu", None),           # peak at 2 threads, case at 1
    ("torch", "fp32", 2, "cuda", None),          # peak on the CPU, case on a GPU
    ("torch", "fp32", None, None, 210.0),        # unknown on the case side: no mismatch
])
def test_machine_peak_lookup(backend, precision, threads, device, expected):
    from bench.analysis.frame import machine_peak, peak_values

    got = machine_peak({"machine_peak": PEAK}, backend, precision, threads, device)
    assert (got == expected) if expected is not None else got != got      # NaN
    assert set(peak_values({"machine_peak": PEAK})) == {
        ("numpy", "fp64"), ("numpy", "fp32"), ("torch", "fp64"), ("torch", "fp32"),
        ("torch", "bf16")}                  # notes / details / key are not peaks


def test_report_without_usable_peak(tmp_path, monkeypatch):
    """Peak measured at 1 thread, cases at 2: no % of peak, and the report and plot say why."""
    from bench.machine import peak

    monkeypatch.setattr(peak, "load_or_measure_peak", lambda **kw: None)   # nothing cached
    recs = [r for r in _small_records() if r["block"] == "ffn" and r["d_model"] == 768]
    meta = {**synthetic.META, "machine_peak": {**PEAK, "threads": 1}}
    paths = write_report(synthetic.make_run(tmp_path / "peak-threads", records=recs, meta=meta))
    text = paths["report"].read_text()
    assert "measured with 1 thread" in text
    assert "without % of peak: peak measured with 1 thread(s), case runs 2" in text
    assert any(p.name == "gflops_vs_peak.png" for p in paths["plots"])
    no_peak = {k: v for k, v in synthetic.META.items() if k != "machine_peak"}
    paths = write_report(synthetic.make_run(tmp_path / "no-peak", records=recs, meta=no_peak))
    assert "no matmul peak in meta.json" in paths["report"].read_text()


def test_report_uses_a_cached_peak_when_the_run_has_none(tmp_path, monkeypatch):
    """An older run without a peak gets the cached one (never measured by `report`)."""
    from bench.commands.report import cached_peak
    from bench.machine import peak

    calls = []

    def fake(threads=None, device="cpu", measure=True, **kw):
        calls.append((threads, device, measure))
        return {**PEAK, "threads": threads, "device": device, "source": "cache",
                "cache_path": "/cache/peak-x-2.json"}

    monkeypatch.setattr(peak, "load_or_measure_peak", fake)
    recs = [r for r in _small_records() if r["block"] == "ffn" and r["d_model"] == 768]
    no_peak = {k: v for k, v in synthetic.META.items() if k != "machine_peak"}
    run_dir = synthetic.make_run(tmp_path / "old", records=recs, meta=no_peak)
    write_report(run_dir)                   # the analysis alone looks up no cache (bench.machine)
    assert calls == []
    paths = write_report(run_dir, cached_peak=cached_peak)      # what the commands hand it
    assert calls == [(2, "cpu", False)]
    text = paths["report"].read_text()
    assert "**Matmul peak source:** cache (added at report time), 2 thread(s); cache file " \
           "/cache/peak-x-2.json" in text
    summary = json.loads(paths["summary"].read_text())
    assert summary["machine_peak_source"].startswith("cache (added at report time)")
    assert "no matmul peak in meta.json" not in text


def _prec_records():
    """One case in fp32 / bf16 (half the time, 0.6x memory) / fp16 (budget skip), plus a
    numpy fp32-only case (nothing to compare) and an amp-bf16 case without an fp32 twin."""
    import numpy as np

    rng = np.random.default_rng(0)
    fp32 = synthetic.record("torch", "ffn", "fp32", 512, 768, rng)
    bf16 = synthetic.record("torch", "ffn", "bf16", 512, 768, rng)
    bf16.update(median_s=fp32["median_s"] * 2.0, peak_bytes=int(fp32["peak_bytes"] * 0.6))
    fp16 = synthetic.record("torch", "ffn", "fp16", 512, 768, rng, status=synthetic.FP16_SKIP)
    lone = synthetic.record("numpy", "ffn", "fp32", 512, 768, rng)
    amp = synthetic.record("torch", "attention", "amp-bf16", 256, 768, rng)
    amp32 = synthetic.record("torch", "attention", "fp32", 256, 768, rng, status="failed: x")
    return [fp32, bf16, fp16, lone, amp, amp32]


def test_precision_table_rows_ratios_and_slow_paths():
    from bench.analysis import precisions
    from bench.analysis.frame import records_frame

    recs = _prec_records()
    table = precisions.precision_table(records_frame(recs, synthetic.META))
    ffn = table[table["block"] == "ffn"]
    assert ffn["precision"].tolist() == ["fp32", "bf16", "fp16"]          # numpy left out
    bf16 = ffn[ffn["precision"] == "bf16"].iloc[0]
    assert bf16["speedup"] == pytest.approx(0.5)
    assert bf16["mem_ratio"] == pytest.approx(0.6, rel=1e-3)
    fp16 = ffn[ffn["precision"] == "fp16"].iloc[0]
    assert fp16["slow_path"] and fp16["status"] == synthetic.FP16_SKIP and fp16["speedup"] != \
        fp16["speedup"]                                                      # NaN
    attn = table[table["block"] == "attention"]                              # fp32 twin failed
    assert attn["speedup"].isna().all() and not attn["slow_path"].any()
    sentence = precisions.block_sentence("ffn", ffn)
    assert sentence.startswith("Feed-forward at T=512 (d=768): bf16 ran at 0.50× fp32 speed "
                               "with torch (slower), rel. L2 error")
    assert "fp16 was not measured in 1 case(s): a slow path" in sentence
    assert "estimated 188 s > budget 15 s" in sentence


@pytest.mark.parametrize("flags, expected", [
    (["avx2", "fma", "avx512f", "avx512_vnni"],
     ["lacks avx512_bf16", "bf16 matmul ran at 0.24× fp32 here (slower; torch, 50 vs 210 GFLOP/s",
      "neither avx512_bf16 nor AMX-BF16: its bf16 matmuls convert to fp32 and back",
      "cases ran at 0.50× fp32 at their largest size", "did not measure the fp16 matmul peak",
      "fp16 matmuls have no CPU kernel", "an expectation from the flags, not measured"]),
    (["avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"],
     ["bf16 matmul ran at 0.24× fp32 here (slower",                    # the measurement leads
      "lists AMX-BF16 and avx512_bf16: the library's bf16 kernels do not use it here"]),
    (None, ["not in meta.json", "bf16 matmul ran at 0.24× fp32 here"]),
])
def test_isa_lines(flags, expected):
    from bench.analysis import precisions
    from bench.analysis.frame import records_frame

    table = precisions.precision_table(records_frame(_prec_records(), synthetic.META))
    text = " ".join(precisions.isa_lines({"cpu_flags": flags, "machine_peak": PEAK}, table))
    for phrase in expected:
        assert phrase in text
    gpu = table.assign(device="cuda")
    assert precisions.isa_lines({"cpu_flags": flags}, gpu) == []


def test_report_precision_section(run):
    run_dir, paths = run
    text = paths["report"].read_text()
    section = text[text.index("## Precision"):]
    assert "**CPU instruction set**" in section and "has avx512_bf16 but no AMX" in section
    assert "it has AMX" not in section
    assert "**attention**: Attention at T=4096 (d=768): bf16 ran at" in section
    assert "(faster)" in section                        # synthetic bf16 is 1.8x fp32
    assert "| torch | forward | 512 | 768 | fp16 |" in section
    assert "**slow path**: skipped: estimated 188 s > budget 15 s" in section
    summary = json.loads((run_dir / "summary.json").read_text())["precision"]
    assert summary["cpu_flags"] == synthetic.META["cpu_flags"]
    assert set(summary["sentences"]) == {"attention"}
    row = next(r for r in summary["rows"] if r["precision"] == "bf16" and r["seq_len"] == 512)
    assert row["speedup"] == pytest.approx(1.8, rel=0.1)


def _flop_records():
    """torch-sdpa forward+backward counted as torch does (excess ½ of forward attention),
    one with an off count, and a forward explicit case counted 10% high."""
    import numpy as np

    rng = np.random.default_rng(0)
    quad = 4 * 512 * 512 * 768                                  # forward QKᵀ + P·V
    known = synthetic.record("torch-sdpa", "attention", "fp32", 512, 768, rng)
    known.update(mode="forward+backward", flops_analytic=3 * quad,
                 flops_counted=3 * quad + quad // 2, flops_match=False)
    off = synthetic.record("torch-sdpa", "attention", "fp32", 1024, 768, rng)
    q2 = 4 * 1024 * 1024 * 768
    off.update(mode="forward+backward", flops_analytic=3 * q2, flops_counted=3 * q2 + q2,
               flops_match=False)
    loud = synthetic.record("torch", "attention", "fp32", 512, 768, rng)
    loud.update(flops_counted=int(quad * 1.1), flops_match=False)
    fine = synthetic.record("torch", "attention", "fp32", 1024, 768, rng)
    return [known, off, loud, fine]


def test_flop_check_explains_only_the_known_cause():
    from bench.analysis.flopcheck import flop_check
    from bench.analysis.frame import records_frame

    check = flop_check(records_frame(_flop_records(), synthetic.META))
    assert (check["n_counted"], check["n_match"], check["n_unexplained"]) == (4, 1, 2)
    kinds = {(m["impl"], m["seq_len"]): m for m in check["mismatches"]}
    assert kinds[("torch-sdpa", 512)]["kind"] == "known"
    assert kinds[("torch-sdpa", 512)]["ratio"] == pytest.approx(3.5 / 3)
    assert kinds[("torch-sdpa", 1024)]["kind"] == "unexplained"       # not the ½ excess
    assert kinds[("torch", 512)]["kind"] == "unexplained-forward-explicit"
    assert kinds[("torch", 512)]["ratio"] == pytest.approx(1.1)


def test_report_flops_section_and_alarm(tmp_path):
    paths = write_report(synthetic.make_run(tmp_path / "flops", records=_flop_records()))
    text = paths["report"].read_text()
    alarm = text.index("⚠ **Unexplained FLOP mismatch in 2 case(s)** (1 on a forward explicit")
    assert text.index("## Verdicts") < alarm < text.index("## Fits in detail")   # after verdicts
    section = text[text.index("## FLOPs: counted vs analytic"):]
    assert "4 case(s) counted with FlopCounterMode; 1 equal" in section
    assert "known cause: FlopCounterMode counts the fused SDPA backward" in section
    assert "| 1.1667 |" in section and "UNEXPLAINED on a forward explicit path" in section
    summary = json.loads(paths["summary"].read_text())
    assert summary["flops_check"]["n_unexplained"] == 2


def test_sdpa_backward_recount_is_what_torch_counts():
    """The known cause, measured: FlopCounterMode on a tiny fused-SDPA forward+backward exceeds
    tfimpl.costs by exactly ½ of the forward attention matmuls."""
    import dataclasses

    from bench.analysis.flopcheck import explain
    from bench.case import Case
    from bench.trackers.flops import count_flops
    from bench.plan import plan
    from bench.impls.prepare import prepare

    case = Case(impl="torch-sdpa", block="attention", batch=1, seq_len=16, d_model=64,
                n_heads=2, d_ff=256, mode="forward+backward")
    row = {**dataclasses.asdict(case), "flops_counted": count_flops(prepare(case).flops_fn),
           **plan(case).facts()}
    assert row["flops_counted"] - row["flops_analytic"] == 2 * 16 * 16 * 64   # ½ · 4·T²·D
    assert explain(row)[0] == "known"


def test_the_first_line_says_how_well_passes_of_a_case_agreed():
    import pandas as pd

    from bench.analysis.compare import pass_agreement
    from bench.analysis.report.markdown import passes_sentence

    df = pd.DataFrame({"status": ["ok", "ok", "ok", "failed: x"],
                       "median_s": [0.01, 0.02, 1e-5, None],
                       "pass_medians_s": [[0.01, 0.0102], [0.02, 0.026], [1e-5, 2e-5], None]})
    text = passes_sentence(pass_agreement(df.to_dict("records")))
    assert "up to 2 passes" in text and "2 cases" in text and "within ±5% in 50% of pass pairs" in text
    assert passes_sentence(pass_agreement(df.drop(columns="pass_medians_s").to_dict("records"))) == ""
    one_pass = df.assign(pass_medians_s=[[0.01], [0.02], [1e-5], None])
    assert passes_sentence(pass_agreement(one_pass.to_dict("records"))) == ""
    w = pass_agreement(df.to_dict("records"))
    assert (w["n"], w["passes"], w["share_pairs_within_5pct"]) == (2, 2, 0.5)
