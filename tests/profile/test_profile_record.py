"""measure.profile: true puts the per-step breakdown on each record (bench.profile.record)."""

import pytest

from bench.case import Case, Measure
from bench.profile.record import PROFILE_KEYS, profile_fields, why_not
from bench.run.runner import RECORD_KEYS, run_case
from tfimpl.costs import components

QUICK = Measure(warmup=1, min_repeats=2, min_time_s=0.0, max_time_s=0.5, accuracy=False,
                measure_memory=False, count_flops=False, profile=True)
SMALL = dict(batch=1, seq_len=16, d_model=32, n_heads=4, d_ff=64, threads=1)


@pytest.mark.parametrize("impl, block", [("numpy", "attention"), ("torch", "encoder_layer"),
                                         ("torch-sdpa", "mha")])
def test_profiled_record(impl, block):
    if impl != "numpy":
        pytest.importorskip("torch")
    case = Case(impl=impl, block=block, **SMALL)
    record = run_case(case, QUICK)
    assert record["status"] == "ok" and record["profile_status"] == "ok"
    attn = "sdpa" if impl == "torch-sdpa" else "explicit"
    assert list(record["profile_steps_s"]) == list(components(block, attn))
    assert all(s > 0 for s in record["profile_steps_s"].values())
    assert record["profile_sum_s"] == pytest.approx(sum(record["profile_steps_s"].values()))
    assert record["profile_overhead"] == pytest.approx(record["profile_sum_s"] / record["median_s"] - 1)
    assert set(record["profile_steps_flops"]) == set(record["profile_steps_bytes"])


def test_profile_off_leaves_the_fields_null():
    record = run_case(Case(impl="numpy", block="ffn", **SMALL),
                      Measure(warmup=1, min_repeats=2, min_time_s=0.0, accuracy=False,
                              measure_memory=False))
    assert set(PROFILE_KEYS) <= set(RECORD_KEYS)
    assert all(record[k] is None for k in PROFILE_KEYS)


def test_unsupported_impl_is_skipped_not_failed():
    assert "torch-nn" in why_not(Case(impl="torch-nn", block="mha"))
    assert "forward" in why_not(Case(impl="torch", block="mha", mode="forward+backward"))
    fields = profile_fields(Case(impl="hf-bert", block="model"), 1.0)
    assert fields["profile_status"].startswith("skipped:") and fields["profile_steps_s"] is None


def test_config_accepts_measure_profile(tmp_path):
    from bench.config import ConfigError, load_config

    path = tmp_path / "c.yaml"
    path.write_text("measure: {profile: true}\ndefaults: {impl: numpy, block: ffn, threads: 1}\n"
                    "grid: {seq_len: [16, 32]}\n")
    assert load_config(path, []).measure.profile is True
    path.write_text("measure: {profile: 3}\ndefaults: {impl: numpy, block: ffn, threads: 1}\n"
                    "grid: {seq_len: [16]}\n")
    with pytest.raises(ConfigError, match="measure.profile"):
        load_config(path, [])
