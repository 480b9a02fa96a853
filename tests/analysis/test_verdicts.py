"""The verdict table on synthetic runs with known exponents, and the d-sweep's figures."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from bench.analysis import claims, precisions, verdicts
from bench.analysis.frame import records_frame

_spec = importlib.util.spec_from_file_location(
    "synthetic_run", Path(__file__).parent.parent / "data" / "synthetic_run.py")
synthetic = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(synthetic)

FAKE_BERT = {"model": "bert-base", "counts": {"analytic": 109482240, "numpy": 109482240,
                                             "torch": 109482240, "huggingface": None},
             "errors": {"huggingface": "ImportError: no transformers"}, "expected": 109482240,
             "agree": False, "bytes": {"fp32": 437928960, "bf16": 218964480},
             "breakdown": {"embeddings": 23837184, "per_layer": 7087872, "layers": 12,
                           "pooler": 590592}}


def _bend(rec, extra_exponent: float, n0: float = 128.0):
    """Make a record's time grow as n^(k + extra) instead of n^k (samples and median)."""
    f = (rec["seq_len"] / n0) ** extra_exponent
    rec["samples_s"] = [s * f for s in rec["samples_s"]]
    for k in ("median_s", "min_s", "mean_s", "iqr_s", "std_s"):
        rec[k] *= f
    return rec


def _records():
    """numpy attention (n², held), torch ffn bent to n^1.6 (did not hold), torch attention
    with three sizes past the cache (not enough data), torch fp32/bf16/amp-bf16 encoder layers
    (bf16 1.8x: held) and a bf16 case slowed to 0.33x (did not hold), numpy ffn (crossover)."""
    rng = np.random.default_rng(1)
    recs = [synthetic.record("numpy", "attention", "fp32", t, 768, rng)
            for t in synthetic.ATTN_SEQ]
    recs += [synthetic.record("numpy", "ffn", "fp32", t, 768, rng) for t in synthetic.SEQ]
    recs += [_bend(synthetic.record("torch", "ffn", "fp32", t, 768, rng), 0.6)
             for t in synthetic.LONG_SEQ]
    recs += [synthetic.record("torch", "attention", "fp32", t, 768, rng)
             for t in (128, 256, 512, 1024, 2048, 3072, 4096)]      # 3 past 2x the L3
    for prec in ("fp32", "bf16", "amp-bf16"):
        recs.append(synthetic.record("torch", "encoder_layer", prec, 512, 768, rng))
    slow = synthetic.record("torch-sdpa", "encoder_layer", "bf16", 512, 768, rng)
    base = synthetic.record("torch-sdpa", "encoder_layer", "fp32", 512, 768, rng)
    factor = base["median_s"] / 0.33 / slow["median_s"]
    slow["samples_s"] = [s * factor for s in slow["samples_s"]]
    slow["median_s"] *= factor
    return recs + [slow, base]


@pytest.fixture(scope="module")
def rows():
    df = records_frame(_records(), synthetic.META)
    rule = claims.FitRule(n_boot=300, window="cache")   # "three sizes past the cache"
    entries = claims.fit_all(df, rule)
    table = precisions.precision_table(df)
    return verdicts.all_rows(entries, df, table, synthetic.META, rule, FAKE_BERT)


def _row(rows, **match):
    hits = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
    assert len(hits) == 1, (match, hits)
    return hits[0]


def test_every_row_has_the_required_fields(rows):
    need = {"claim", "block", "metric", "variable", "theory", "value", "ci_low", "ci_high",
            "verdict", "sentence"}
    assert rows and all(need <= set(r.to_dict()) for r in rows)
    assert {r["verdict"] for r in rows} == {"held", "did not hold", "not enough data"}


def test_verdict_row_dict_keeps_the_summary_key_order(rows):
    scaling = _row(rows, id="attention.time.seq_len", impl="numpy").to_dict()
    assert list(scaling) == ["id", "kind", "claim", "block", "metric", "variable", "impl",
                             "precision", "theory", "theory_text", "value", "ci_low", "ci_high",
                             "unit", "fit_range", "verdict", "sentence"]
    cross = list(_row(rows, kind="crossover", impl="numpy").to_dict())
    assert cross[6:10] == ["impl", "ffn_impl", "precision", "d_model"]
    assert cross[-2:] == ["definition", "band"]


def test_known_exponents_get_the_right_verdicts(rows):
    held = _row(rows, id="attention.time.seq_len", impl="numpy")
    assert held["verdict"] == "held" and held["ci_low"] <= 2.0 <= held["ci_high"]
    assert "grew as n^2.0" in held["sentence"]
    bent = _row(rows, id="ffn.time.seq_len", impl="torch")
    assert bent["verdict"] == "did not hold" and bent["ci_low"] > 1.3       # n^1.6
    assert "outside theory 1 ± 0.3" in bent["sentence"]
    few = _row(rows, id="attention.time.seq_len", impl="torch")
    assert few["verdict"] == "not enough data" and few["value"] is None
    assert "3 of 7 sizes in the fit range" in few["sentence"]
    flops = _row(rows, id="ffn.flops.seq_len", impl="torch")
    assert flops["verdict"] == "held" and flops["value"] == pytest.approx(1.0)


def test_precision_rows_against_two_x(rows):
    fast = _row(rows, kind="precision", impl="torch", precision="bf16")
    assert fast["verdict"] == "held" and fast["value"] == pytest.approx(1.8, rel=0.1)
    assert fast["ci_low"] < fast["value"] < fast["ci_high"]
    slow = _row(rows, kind="precision", impl="torch-sdpa", precision="bf16")
    assert slow["verdict"] == "did not hold" and slow["value"] == pytest.approx(0.33, rel=0.05)
    assert "has avx512_bf16 but no AMX" in slow["sentence"] and "(slower)" in slow["sentence"]


def test_crossover_row_has_one_definition_and_a_ci(rows):
    row = _row(rows, kind="crossover", impl="numpy")
    assert row["theory"] == pytest.approx(3072)                  # n* = d_ff by the FLOPs
    assert row["value"] is not None and row["ci_low"] <= row["value"] <= row["ci_high"]
    assert "FLOP rate" in row["sentence"] and row["definition"].startswith("n* = ")


def test_params_row_counts_four_ways_and_says_what_is_missing(rows):
    row = _row(rows, kind="params")
    assert row["verdict"] == "not enough data"                # HF not counted: undecided
    assert "huggingface not counted" in row["sentence"] and "109,482,240" in row["sentence"]
    agree = verdicts.params_row({**FAKE_BERT, "agree": True,
                                 "counts": {**FAKE_BERT["counts"], "huggingface": 109482240}})
    assert agree[0]["verdict"] == "held"
    assert "417.6 MiB in fp32 (437.9 MB decimal: the guide's ~440 MB)" in agree[0]["sentence"]
    wrong = verdicts.params_row({**FAKE_BERT, "counts": {**FAKE_BERT["counts"], "torch": 7}})
    assert wrong[0]["verdict"] == "did not hold"


@pytest.mark.parametrize("lo, hi, expected", [
    (1.5, 2.5, "held"), (0.3, 0.4, "did not hold"), (3.0, 4.0, "did not hold"),
    (1.2, 1.8, "not enough data"), (None, None, "not enough data")])
def test_band_verdict(lo, hi, expected):
    assert verdicts.band_verdict(lo, hi, 2.0, 2 ** 0.5) == expected


def test_render_puts_the_table_first(rows):
    lines = verdicts.render(rows)
    assert lines[0] == "## Verdicts"
    assert any(line.startswith("| claim | impl | theory | measured [95% CI]") for line in lines)


def test_bert_base_counted_four_ways():
    pytest.importorskip("torch")
    from bench.analysis.bert_params import bert_base_counts

    got = bert_base_counts()
    assert got["counts"]["analytic"] == got["counts"]["numpy"] == got["counts"]["torch"] \
        == 109_482_240
    if got["counts"]["huggingface"] is not None:
        assert got["counts"]["huggingface"] == 109_482_240 and got["agree"]
    assert got["breakdown"] == {"embeddings": 23_837_184, "per_layer": 7_087_872, "layers": 12,
                                "pooler": 590_592}
    assert got["bytes"] == {"fp32": 437_928_960, "bf16": 218_964_480}


def _width_records():
    """Only d varies (n = 256): attention and ffn for numpy and torch, d_ff = 4d, H = d/64."""
    rng = np.random.default_rng(2)
    return [synthetic.record(impl, block, "fp32", 256, d, rng)
            for impl in ("numpy", "torch") for block in ("attention", "ffn")
            for d in synthetic.WIDTHS]


def test_a_d_sweep_draws_d_axis_figures_only(tmp_path, monkeypatch):
    from bench.machine import peak
    from bench.analysis import bert_params
    from bench.analysis.report.markdown import write_report

    monkeypatch.setattr(bert_params, "bert_base_counts", lambda: FAKE_BERT)
    monkeypatch.setattr(peak, "load_or_measure_peak", lambda **kw: None)
    run_dir = synthetic.make_run(tmp_path / "widths", records=_width_records())
    paths = write_report(run_dir)
    names = sorted(p.name for p in paths["plots"])
    assert names and all("d_model" in n for n in names), names
    assert {"time_vs_d_model_attention.png", "time_vs_d_model_ffn.png",
            "flops_vs_d_model.png", "memory_vs_d_model.png"} <= set(names)
    summary = json.loads(paths["summary"].read_text())
    got = {(r["id"], r["impl"]): r for r in summary["claims"]}
    for key in (("attention.time.d_model", "torch"), ("ffn.time.d_model", "numpy"),
                ("ffn.flops.d_model", "torch"), ("attention.flops.d_model", "numpy")):
        r = got[key]
        assert r["value"] is not None and r["ci_low"] <= r["value"] <= r["ci_high"]
        assert r["verdict"] in ("held", "did not hold", "not enough data")
    assert got[("ffn.flops.d_model", "torch")]["verdict"] == "held"          # exactly d²
    assert got[("attention.flops.d_model", "torch")]["theory"] == 1.0
    assert "d^" in got[("ffn.time.d_model", "torch")]["sentence"]
    assert "projections" in got[("attention.time.d_model", "torch")]["sentence"]
    text = paths["report"].read_text()
    assert text.startswith("## Verdicts") and "seq_len" not in " ".join(names)


def test_verdict_row_round_trips_through_its_dict(rows):
    from bench.analysis.verdict_row import VerdictRow

    for r in rows:
        assert VerdictRow.from_dict(r.to_dict()).to_dict() == r.to_dict()
