"""Grouping keys come from bench.case's fields: a field the hand list used to leave out
(compile, checkpoint, new_tokens, max_position) separates series."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from bench.analysis import claims, grouping
from bench.analysis.frame import records_frame
from bench.case import CASE_FIELDS

_spec = importlib.util.spec_from_file_location(
    "synthetic_run", Path(__file__).parent.parent / "data" / "synthetic_run.py")
synthetic = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(synthetic)


def test_group_fields_are_the_case_fields_less_seed():
    assert grouping.GROUP_FIELDS == tuple(f for f in CASE_FIELDS if f != "seed")
    for f in ("new_tokens", "max_position", "checkpoint", "compile"):
        assert f in grouping.GROUP_FIELDS
    assert grouping.group_keys(["impl", "seq_len", "compile", "seed", "x"],
                               exclude=("seq_len",)) == ["impl", "compile"]


def _sweep(compile_, slope):
    rng = np.random.default_rng(0)
    out = []
    for t in (256, 512, 1024, 2048, 4096, 8192):
        r = synthetic.record("torch", "ffn", "fp32", t, 768, rng)
        r.update(compile=compile_, case_id=f"{r['case_id']}-{compile_}")
        med = 1e-3 * (t / 256) ** slope
        r.update(median_s=med, samples_s=[med] * 7)
        out.append(r)
    return out


def test_a_compile_sweep_and_an_eager_sweep_are_two_fits():
    df = records_frame(_sweep(False, 1.0) + _sweep(True, 1.5), synthetic.META)
    time = [e for e in claims.fit_all(df, claims.FitRule(n_boot=200))
            if e["metric"] == "time" and e["variable"] == "seq_len"]
    assert len(time) == 2
    by = {e["fixed"]["compile"]: e["full_range_exponent"] for e in time}
    assert by[False] == pytest.approx(1.0, abs=0.05) and by[True] == pytest.approx(1.5, abs=0.05)


def test_a_missing_key_is_a_group_not_a_dropped_row():
    recs = _sweep(False, 1.0)
    for r in recs:
        r["compile"] = None                   # an older record without the field
    df = records_frame(recs, synthetic.META)
    groups = list(claims.sweep_groups(df, "seq_len"))
    assert len(groups) == 1 and len(groups[0][1]) == len(recs)
