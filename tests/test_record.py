"""bench.record (the record schema) and bench.reader (reading a run folder, schema_version)."""

import importlib.util
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from bench import metrics, record
from bench.case import Case
from bench.reader import RunDirError, check_run_dir, check_version, merge, read_meta
from bench.run.runner import empty_record
from bench.run.writer import RunWriter

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "results" / "reference"         # committed, written before the stamp

# The record's keys as bench.run.runner assembled them before bench.record (CASE_FIELDS +
# RESULT_KEYS from six modules' tuples): the schema must lay a record out exactly so.
KEYS_BEFORE = (
    "impl", "block", "batch", "seq_len", "d_model", "n_heads", "d_ff", "layers", "precision",
    "device", "threads", "mode", "activation", "norm_first", "causal", "vocab_size", "seed",
    "new_tokens", "max_position", "checkpoint", "compile", "window", "global_tokens", "inputs",
    "case_id", "status", "samples_s", "n_samples", "warmup", "number_per_sample", "stop_reason",
    "median_s", "iqr_s", "min_s", "mean_s", "std_s", "spread", "unstable", "probe_s",
    "flops_analytic", "flops_counted", "flops_match", "gflops_per_s", "fastpath",
    "peak_bytes", "peak_method", "peak_bytes_predicted", "rss_peak_bytes",
    "max_abs_err", "max_rel_err", "rel_l2_err", "attn_max_abs_err", "attn_max_rel_err",
    "attn_rel_l2_err", "hostname", "pid", "node_id", "gpu_name", "gpu_uuid", "start_time",
    "end_time", "elapsed_s", "executor",
    "kv_bytes_measured", "kv_bytes_analytic", "ttft_s", "itl_p50_s", "itl_p90_s", "itl_p99_s",
    "prefill_tokens_per_s", "decode_tokens_per_s", "decode_bytes_min", "compile_s",
    "saved_activation_bytes", "gradient_bytes", "optimizer_state_bytes",
    "saved_activation_bytes_predicted", "gradient_bytes_predicted",
    "optimizer_state_bytes_predicted", "korthikanti_bytes",
    "warmup_calls", "warmup_s", "warmup_settled", "warmup_samples_s", "rounds", "round_medians_s",
    "load_avg_1m", "cpu_steal_frac", "other_cpu_cores", "other_cpu_top", "interference",
    "interference_reason", "timing_attempts",
    "profile_steps_s", "profile_steps_flops", "profile_steps_bytes", "profile_sum_s",
    "profile_overhead", "profile_status",
    "backend", "attn_path", "attn_materialised", "bytes_per_element", "storage_bytes",
    "flops_by_component", "working_set_bytes", "params",
    "calib_s", "calib_probe", "calib_samples_s",            # schema version 3: appended
    "flops_method", "accuracy_reference",                   # schema version 4: appended
    "approx_rel_l2_err", "attn_mass_captured", "useful_fraction", "price_rows",  # sparse blocks
    "weight_bytes", "weight_bytes_predicted", "int8_macs",  # schema version 5: appended
    "graph_optimization")

TYPES = {"int", "float", "str", "bool", "dict", "list[float]", "list[int]"}
UNITS = {"", "s", "bytes", "FLOP", "GFLOP/s", "tokens/s", "cores", "MAC"}


# ---- the schema -------------------------------------------------------------------------------

def test_declared_fields_lay_out_the_record_as_before():
    rec = empty_record(Case(block="ffn", seq_len=64))
    assert tuple(rec) == record.RECORD_KEYS == KEYS_BEFORE == record.columns()
    assert record.RESULT_KEYS == KEYS_BEFORE[24:]


def test_every_field_has_a_type_a_unit_and_a_stage_that_exists():
    names = [f.name for f in record.FIELDS]
    assert len(names) == len(set(names))
    for f in record.FIELDS:
        assert f.type in TYPES and f.unit in UNITS, f
        assert f.kind in ("record", "folded", "pass"), f
        assert importlib.util.find_spec(f"bench.{f.stage}") is not None, f


def test_the_stages_key_tuples_come_from_the_schema():
    from bench.blocks.gpt import GEN_KEYS
    from bench.modes.train import TRAIN_KEYS
    from bench.plan import FACT_KEYS
    from bench.profile.record import PROFILE_KEYS
    from bench.run.passes import PASS_COLUMNS, PASS_KEY
    from bench.trackers.interference import RECORD_KEYS as MEASURING_KEYS

    assert GEN_KEYS == record.keys_of("blocks.gpt", "trackers.generation") and len(GEN_KEYS) == 9
    assert TRAIN_KEYS == record.keys_of("modes.train") and len(TRAIN_KEYS) == 7
    assert set(FACT_KEYS) == {f.name for f in record.FIELDS if f.stage == "plan"}
    assert PROFILE_KEYS == record.keys_of("profile") and len(PROFILE_KEYS) == 6
    assert set(PASS_COLUMNS) <= set(record.RECORD_KEYS)
    assert record.BY_NAME[PASS_KEY].kind == "pass"
    assert {"warmup_calls", "timing_attempts", "interference", "median_s"} <= set(MEASURING_KEYS)


def test_merge_adds_exactly_the_folded_fields():
    first = {"case_id": "a", "status": "ok", "samples_s": [2.0, 2.0], "median_s": 2.0}
    later = {"case_id": "a", "pass": 2, "status": "ok", "samples_s": [1.0, 1.0, 1.5]}
    (merged,) = merge([first, later])
    assert set(merged) - set(first) == set(record.FOLDED_KEYS) | {
        "iqr_s", "min_s", "mean_s", "std_s", "spread", "unstable", "n_samples", "interference"}


def _conforms(type_: str, value) -> bool:
    number = (int, float)
    if type_.startswith("list["):
        inner = {"list[float]": number, "list[int]": int}[type_]
        return isinstance(value, list) and all(isinstance(v, inner) for v in value)
    kinds = {"int": int, "float": number, "str": str, "bool": bool, "dict": dict}[type_]
    return isinstance(value, kinds) and (type_ == "bool" or not isinstance(value, bool))


def test_committed_records_have_the_declared_types():
    records, _ = check_run_dir(REFERENCE)
    assert records
    for rec in records:
        for key, value in rec.items():
            assert value is None or _conforms(record.BY_NAME[key].type, value), (key, value)


def test_a_plugin_metric_adds_its_column_once(monkeypatch):
    monkeypatch.setattr(metrics, "METRICS", dict(metrics.METRICS))
    metrics.register(metrics.Metric("energy", "energy_j", "J", "energy per call (J)", "all"))
    metrics.register(metrics.Metric("energy2", "energy_j", "J", "energy again", "all"))
    metrics.register(metrics.Metric("gflops", "gflops", "GFLOP/s", "derived", "time"))
    metrics.register(metrics.Metric("tail", "max_abs_err", "", "declared", "all"))
    assert record.columns() == record.RECORD_KEYS + ("energy_j",)
    rec = empty_record(Case())
    assert list(rec)[-1] == "energy_j" and rec["energy_j"] is None


def test_builtin_metrics_read_declared_or_derived_columns():
    for metric in metrics.METRICS.values():
        assert metric.column in record.BY_NAME or metric.column in record.DERIVED_COLUMNS


def test_the_frame_derives_the_derived_columns():
    from bench.analysis.frame import records_frame

    df = records_frame([dict(empty_record(Case()), status="ok", median_s=0.1)])
    assert set(record.DERIVED_COLUMNS) <= set(df.columns)


def test_sample_stats_are_the_timers_bit_for_bit():
    from bench.trackers.timer import TimeStats
    from bench.trackers.timer import quantile as timer_quantile

    rng = random.Random(3)
    for n in (1, 2, 3, 4, 7, 10, 25):
        samples = [rng.lognormvariate(-5, 0.3) for _ in range(n)]
        stats = TimeStats(samples_s=tuple(samples), warmup=0, spread_warn=0.05)
        got = record.sample_stats(samples, 0.05)
        assert got == {k: getattr(stats, k) for k in got}
        ordered = tuple(sorted(samples))
        for q in (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0):
            assert record.quantile(ordered, q) == timer_quantile(ordered, q)
    with pytest.raises(ValueError):
        record.sample_stats([], 0.1)


def test_analysis_reaches_no_lower_stage_even_indirectly():
    code = ("import importlib, pkgutil, sys, bench.analysis, bench.analysis.report\n"
            "for pkg in (bench.analysis, bench.analysis.report):\n"
            "    for m in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + '.'):\n"
            "        importlib.import_module(m.name)\n"
            "print(sorted(k for k in sys.modules if k.startswith(('bench.run.', 'bench.trackers',"
            " 'bench.impls', 'bench.machine')) or k == 'bench.run'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# ---- schema_version ----------------------------------------------------------------------------

def _folder(tmp_path, version="absent", name="run"):
    run = tmp_path / name
    run.mkdir()
    meta = {"status": "complete", "n_cases": 1}
    if version != "absent":
        meta["schema_version"] = version
    (run / "meta.json").write_text(json.dumps(meta))
    (run / "records.jsonl").write_text(json.dumps(
        {"case_id": "c0", "status": "ok", "samples_s": [0.01] * 3, "median_s": 0.01}) + "\n")
    return run


def test_create_stamps_the_version(tmp_path):
    writer = RunWriter.create(tmp_path / "run", "name: t\n", {"config_hash": "abc"})
    meta = json.loads((writer.run_dir / "meta.json").read_text())
    assert meta["schema_version"] == record.SCHEMA_VERSION == 5
    assert check_version(read_meta(writer.run_dir)) == 5
    writer.update_meta(status="complete")
    assert writer.read_meta()["schema_version"] == 5


def test_a_folder_without_a_version_is_version_1_and_reads_as_before(tmp_path):
    records, meta = check_run_dir(_folder(tmp_path))
    assert check_version(meta) == 1 and [r["case_id"] for r in records] == ["c0"]
    records, meta = check_run_dir(REFERENCE)
    assert "schema_version" not in meta and check_version(meta) == 1 and len(records) > 100


NEXT = record.SCHEMA_VERSION + 1


@pytest.mark.parametrize("version, shown", [(99, "99"), (NEXT, str(NEXT)), (0, "0"), ("2", '"2"'),
                                            (2.0, "2.0"), (True, "true"), (None, "null")])
def test_an_unknown_version_is_refused_in_one_line(tmp_path, version, shown):
    run = _folder(tmp_path, version)
    for read in (check_run_dir, read_meta, RunWriter.reopen):
        with pytest.raises(RunDirError) as info:
            read(run)
        message = str(info.value)
        assert message.startswith(f"{run / 'meta.json'}: schema_version {shown}: this tfbench "
                                  f"reads versions 1-{record.SCHEMA_VERSION}; ")
        assert "\n" not in message


def test_report_cli_refuses_an_unknown_version_with_exit_2(tmp_path):
    run = _folder(tmp_path, 99)
    out = subprocess.run([sys.executable, "-m", "bench", "report", str(run)],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2
    err = out.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in out.stderr
    assert f"schema_version 99: this tfbench reads versions 1-{record.SCHEMA_VERSION}" in err[0]
    assert not (run / "report.md").exists()


def test_compare_refuses_an_unknown_version_with_exit_2(tmp_path, capsys):
    from support import run as bench

    good, bad = _folder(tmp_path, name="good"), _folder(tmp_path, 99, name="bad")
    for argv in (("compare", str(good), str(bad)), ("compare", str(bad), str(good))):
        rc, _, err = bench(capsys, *argv)
        lines = err.strip().splitlines()
        assert rc == 2 and len(lines) == 1 and "schema_version 99" in lines[0], err
