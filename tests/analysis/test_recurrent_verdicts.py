"""bench.analysis.recurrent and its figure on a synthetic run whose answers are known: attention
time a·n², LSTM time b·n (so the times cross at n = b/a), LSTM memory ∝ n, and batching that
buys the LSTM 10× per token and attention 1.5×."""

import copy
import re
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from bench.analysis import claims, recurrent, verdicts
from bench.analysis.frame import records_frame
from bench.analysis.report import recurrent_plot
from bench.analysis.verdict_row import HELD

_spec = importlib.util.spec_from_file_location(
    "synthetic_run", Path(__file__).parent.parent / "data" / "synthetic_run.py")
synthetic = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(synthetic)

SEQ = [64, 128, 256, 512, 1024, 2048, 4096]
D = 256
CROSS = 700.0                          # b / a by construction


def _timed(rec, seconds, rng):
    samples = seconds * np.exp(rng.normal(0, 0.01, 7))
    rec.update(samples_s=samples.tolist(), median_s=float(np.median(samples)),
               min_s=float(samples.min()), mean_s=float(samples.mean()))
    return rec


def _records(a=1e-9, b=1e-9 * CROSS):
    rng = np.random.default_rng(0)
    recs = []
    for batch, attn_gain, lstm_gain in ((1, 1.0, 1.0), (16, 1.5, 10.0)):
        for t in SEQ if batch == 1 else [1024]:
            att = synthetic.record("torch", "attention", "fp32", t, D, rng, batch=batch)
            att.update(n_heads=4, d_ff=1024, case_id=f"att-{batch}-{t}",
                       peak_bytes=4 * t * t * 4 + 4096)
            recs.append(_timed(att, a * t * t * batch / attn_gain, rng))
            lstm = copy.deepcopy(att)
            g = 4 * D
            lstm.update(block="lstm", impl="torch-nn", n_heads=12, d_ff=3072,
                        case_id=f"lstm-{batch}-{t}", attn_path=None, attn_materialised=None,
                        flops_by_component={"input_proj": 2 * batch * t * D * g,
                                            "recurrent": 2 * batch * t * D * g},
                        peak_bytes=batch * t * (g + D) * 4 + 8192)
            lstm["flops_analytic"] = lstm["flops_counted"] = 4 * batch * t * D * g
            recs.append(_timed(lstm, b * t * batch / lstm_gain, rng))
    return recs


@pytest.fixture(scope="module")
def frame():
    return records_frame(_records(), synthetic.META)


@pytest.fixture(scope="module")
def rows(frame):
    rule = claims.FitRule(n_boot=200)
    return recurrent.rows(frame, claims.fit_all(frame, rule), rule)


def _one(rows, kind):
    found = [r for r in rows if r.kind == kind]
    assert len(found) == 1, [r.id for r in rows]
    return found[0]


def test_predicted_crossover_is_4d_for_the_lstm_3d_for_the_gru():
    assert recurrent.predicted("lstm", 256, 4, zero_state_matmul=True) == pytest.approx(1024)
    assert recurrent.predicted("lstm", 256, 4) == pytest.approx(1024 - 0.5, abs=0.01)
    assert recurrent.predicted("gru", 512, 8, batch=3, zero_state_matmul=True) == \
        pytest.approx(1536)


def test_measured_crossover_with_ci_and_the_reason(rows):
    r = _one(rows, "recurrent-crossover")
    assert r.value == pytest.approx(CROSS, rel=0.02)
    assert r.ci_low <= r.value <= r.ci_high
    assert r.theory == pytest.approx(1024)                    # nn.LSTM: the zero state counted
    assert r.verdict == HELD                                   # within a factor 2 of 1024
    assert "× the LSTM's FLOP rate" in r.sentence and "torch-nn" in r.impl


def test_memory_row_reads_the_fitted_exponent(rows):
    r = _one(rows, "recurrent-memory")
    assert r.value == pytest.approx(1.0, abs=0.05) and r.verdict == HELD
    assert r.extra["state_bytes"] == 2 * D * 4
    assert "at every n" in r.sentence and "KV cache" in r.sentence


def test_batching_buys_the_lstm_more(rows):
    r = _one(rows, "recurrent-parallelism")
    assert r.value == pytest.approx(10.0, rel=0.05)
    assert r.theory == pytest.approx(1.5, rel=0.05)
    assert r.verdict == HELD and r.ci_low > 1.5
    assert r.extra["sequential_steps"] == 1024


def test_conclusion_and_table(rows):
    text = recurrent.conclusion(rows, "Synthetic CPU")
    assert "Synthetic CPU" in text and re.search(r"attention faster below n ≈ (69\d|70\d)", text)
    table = "\n".join(verdicts.render(rows, "Synthetic CPU"))
    assert "Where each wins" in table and "n* = 1024" in table


def test_no_recurrent_block_no_rows():
    df = records_frame([synthetic.record("torch", "attention", "fp32", t, 256,
                                         np.random.default_rng(0)) for t in SEQ], synthetic.META)
    assert recurrent.rows(df, [], claims.FitRule(n_boot=50)) == []
    assert recurrent_plot.plot(df, [], Path("unused.png")) is None


def test_figure_is_drawn(frame, rows, tmp_path):
    path = recurrent_plot.plot(frame, rows, tmp_path / "rnn.png")
    assert path.exists() and path.stat().st_size > 10_000


def test_a_crossover_never_reached_far_past_the_prediction_did_not_hold():
    df = records_frame(_records(a=1e-12), synthetic.META)    # attention 1000x cheaper
    rule = claims.FitRule(n_boot=50)
    r = _one(recurrent.crossover_rows(df, rule), "recurrent-crossover")
    assert r.value is None and r.verdict == "did not hold"   # faster up to 4096 > 2 x 1024
    assert "attention stayed faster" in r.sentence
