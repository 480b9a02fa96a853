"""bench.profile: the verdict rule by hand, option checks, and small end-to-end profiles."""

import json
import math

import pytest

from bench.case import Measure
from bench.profile import report, roofline
from bench.profile.spec import SpecError, make_spec

FAST = Measure(warmup=1, min_repeats=2, min_time_s=0.0, max_time_s=1.0)
PEAK = {"numpy": {"fp32": 100.0, "fp64": 50.0}, "torch": {"fp32": 100.0, "fp64": 50.0},
        "bandwidth": {"numpy": {"triad": 10.0}, "torch": {"triad": 20.0}},
        "threads": 1, "device": "cpu", "source": "test"}


@pytest.mark.parametrize("intensity, gflops, expected, bound", [
    (1.0, 8.0, "memory-bound", "memory"),          # roof 10 GFLOP/s: 80 % of it
    (1.0, 0.5, "overhead-bound", "memory"),        # 5 % of its roof
    (50.0, 60.0, "compute-bound", "compute"),      # roof 100: 60 %
    (10.0, 90.0, "compute-bound", "compute"),      # at the ridge (100 / 10) the flat roof counts
])
def test_verdict_rule(intensity, gflops, expected, bound):
    got = roofline.verdict(intensity, gflops, peak_gflops=100.0, bandwidth_gbps=10.0)
    assert got["verdict"] == expected and got["bound_by"] == bound
    assert got["attainable_gflops"] == pytest.approx(min(100.0, 10.0 * intensity))


def test_no_ceilings_no_verdict():
    assert roofline.verdict(1.0, 1.0, math.nan, 10.0)["verdict"] == "no ceilings"
    roof = roofline.ceilings(None, "torch", "fp32")
    assert math.isnan(roof["ridge"]) and "bench peak" in roof["note"]


def test_ceilings_pick_backend_and_matmul_dtype():
    roof = roofline.ceilings(PEAK, "torch", "fp32")
    assert (roof["peak_gflops"], roof["bandwidth_gbps"], roof["ridge"]) == (100.0, 20.0, 5.0)
    assert roofline.ceilings(PEAK, "torch", "amp-bf16")["peak_dtype"] == "bf16"


def test_step_rows_arithmetic():
    flops = {"a": 2e9, "b": 1e9}
    traffic = {"a": {"inputs": 1e9, "weights": 0, "outputs": 1e9, "total": 2e9},
               "b": {"inputs": 1e6, "weights": 0, "outputs": 0, "total": 1e6}}
    rows = roofline.step_rows({"a": 1.0, "b": 3.0}, flops, traffic,
                              roofline.ceilings(PEAK, "numpy", "fp32"), {})
    a, b = rows
    assert a["gflops"] == pytest.approx(2.0) and a["gbps"] == pytest.approx(2.0)
    assert a["intensity"] == 1.0 and a["time_share"] == 0.25 and a["flop_share"] == pytest.approx(2 / 3)
    assert a["pct_bandwidth"] == pytest.approx(20.0) and a["verdict"] == "memory-bound"
    assert b["intensity"] == 1000.0 and b["verdict"] == "overhead-bound"   # 0.33 of 100 GFLOP/s


@pytest.mark.parametrize("kwargs, option", [
    (dict(target="gpt9"), "MODEL_OR_BLOCK"),
    (dict(target="bert-base", impl="jax"), "--impl"),
    (dict(target="bert-base", impl="numpy", precision="bf16"), "--precision"),
    (dict(target="bert-base", precision="fp16"), "--precision"),
    (dict(target="bert-base", seq_len=1024), "--seq-len"),
    (dict(target="mha", preset="nope"), "--preset"),
    (dict(target="bert-base", threads=10_000), "--threads"),
    (dict(target="ffn", batch=0), "--batch"),
    (dict(target="bert-base", impl="numpy", device="cuda"), "--device"),
])
def test_bad_options_name_the_option(kwargs, option):
    with pytest.raises(SpecError, match=option):
        make_spec(**kwargs)


def test_cli_bad_input_exits_2_with_one_line(capsys):
    from bench.cli import dispatch as main

    assert main(["profile", "bert-base", "--impl", "numpy", "--precision", "bf16"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --precision") and "\n" not in err


def _profile(tmp_path, target, impl, **kwargs):
    from bench.profile.run import run_profile

    spec = make_spec(target, impl=impl, threads=1, repeats=2, **kwargs)
    result = run_profile(spec, tmp_path, PEAK, whole_settings=FAST)
    return result, report.write(result, tmp_path)


def _check_rows(result, names):
    assert [r["step"] for r in result["rows"]] == list(names)
    for r in result["rows"]:
        assert r["flops"] > 0 and r["bytes"] > 0 and r["intensity"] > 0 and r["time_s"] > 0
        assert r["verdict"] in ("memory-bound", "compute-bound", "overhead-bound")
    assert sum(r["time_share"] for r in result["rows"]) == pytest.approx(1.0)
    paired = result["whole"]["paired_median_s"]                # unprofiled calls between
    assert paired > 0 and result["overhead"] == pytest.approx(result["steps_sum_s"] / paired - 1)


def test_torch_model_profile_end_to_end(tmp_path):
    pytest.importorskip("torch")
    from tfimpl.costs import components

    result, paths = _profile(tmp_path, "bert-tiny", "torch", seq_len=16)
    _check_rows(result, components("model"))
    trace = json.loads((tmp_path / "trace.json").read_text())
    names = {e.get("name") for e in trace["traceEvents"]}
    assert "tfbench/softmax" in names and "tfbench.forward" in names
    assert result["rows"][2]["allocated_bytes"] > 0            # scores: the (B, H, T, T) matrix
    md = (tmp_path / "profile.md").read_text()
    assert "## Claims" in md and "memory-bound" in md and ("within" in md or "OUTSIDE" in md)
    saved = json.loads((tmp_path / "profile.json").read_text())
    assert saved["rows"][0]["step"] == "embeddings" and saved["claims"]
    assert (tmp_path / "roofline.png").stat().st_size > 10_000
    header = (tmp_path / "profile.csv").read_text().splitlines()[0]
    assert header.startswith("step,label,time_s") and "verdict" in header


def test_numpy_layer_profile_has_no_trace_and_memory_lines(tmp_path):
    from tfimpl.costs import components

    result, paths = _profile(tmp_path, "encoder_layer", "numpy", seq_len=16, preset="bert-tiny")
    _check_rows(result, components("encoder_layer"))
    assert result["trace"] is None and "no trace" in result["trace_note"]
    assert not (tmp_path / "trace.json").exists()
    lines = (tmp_path / "memory_lines.txt").read_text()
    assert "tfimpl/numpy/attention.py" in lines and "Increment" in lines
    assert "no trace" in (tmp_path / "profile.md").read_text()


def test_sdpa_block_profile_fuses_the_attention(tmp_path):
    pytest.importorskip("torch")
    result, _ = _profile(tmp_path, "mha", "torch-sdpa", seq_len=16, preset="bert-tiny")
    _check_rows(result, ("qkv_proj", "attention_fused", "o_proj"))


def test_cuda_profile_has_kernel_times(tmp_path):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    result, _ = _profile(tmp_path, "encoder_layer", "torch", seq_len=64, preset="bert-tiny",
                         device="cuda")
    assert result["kernels"] and all(k["device_s"] > 0 for k in result["kernels"])
    assert "device_time_total" in result["time_source"]
    _check_rows(result, [r["step"] for r in result["rows"]])
