"""bench.analysis.training: verdict rows from hand-made records (no measuring)."""

import pytest

pd = pytest.importorskip("pandas")

from bench.analysis import training  # noqa: E402

BASE = dict(impl="torch", block="encoder_layer", batch=2, seq_len=64, d_model=32, n_heads=2,
            d_ff=64, layers=1, activation="gelu", norm_first=False, causal=False, threads=1,
            device="cpu", precision="fp32", checkpoint=False, compile=False, ok=True,
            attn_path="explicit", params=1000, compile_s=None, peak_bytes=100.0,
            peak_bytes_predicted=110.0, optimizer_state_bytes=None,
            saved_activation_bytes_predicted=None)


def rec(**kw):
    r = {**BASE, **kw}
    r["median_s"] = sorted(r["samples_s"])[len(r["samples_s"]) // 2]
    return r


def frame(*records):
    return pd.DataFrame(list(records))


def test_backward_rows_hold_at_two_and_fail_beyond():
    df = frame(rec(mode="forward", samples_s=[1.0, 1.01, 0.99], flops_analytic=100, flops_counted=100),
               rec(mode="forward+backward", samples_s=[3.0, 3.02, 2.98], flops_analytic=300,
                   flops_counted=300))
    rows = {r["id"]: r for r in training.backward_rows(df)}
    assert rows["train.bwd_flops"]["verdict"] == "held" and rows["train.bwd_flops"]["value"] == 2
    assert rows["train.bwd_time"]["verdict"] == "held"
    df.loc[1, "samples_s"] = [9.0, 9.1, 8.9]
    df.loc[1, "median_s"] = 9.0
    assert {r["id"]: r for r in training.backward_rows(df)}["train.bwd_time"]["verdict"] == "did not hold"


def test_adamw_and_bytes_rows():
    r = rec(mode="train", samples_s=[1.0], optimizer_state_bytes=8000, gradient_bytes=4000,
            saved_activation_bytes=500, saved_activation_bytes_predicted=500,
            gradient_bytes_predicted=4000, optimizer_state_bytes_predicted=8000,
            korthikanti_bytes=300)
    rows = {x["id"]: x for x in training.memory_rows(frame(r))}
    assert rows["train.adamw_state"]["verdict"] == "held"
    assert rows["train.bytes"]["verdict"] == "held"
    r["saved_activation_bytes"] = 600                           # 20% off
    assert {x["id"]: x for x in training.memory_rows(frame(r))}["train.bytes"]["verdict"] == "did not hold"


def test_checkpoint_and_compile_pairs():
    plain = rec(mode="train", block="encoder", layers=4, samples_s=[1.0, 1.0, 1.01], peak_bytes=100.0)
    ckpt = rec(mode="train", block="encoder", layers=4, checkpoint=True,
               samples_s=[1.3, 1.31, 1.29], peak_bytes=40.0, peak_bytes_predicted=45.0)
    rows = training.trick_rows(frame(plain, ckpt), {})
    assert [r["verdict"] for r in rows if r["id"] == "train.checkpoint"] == ["held"]
    comp = rec(mode="forward", compile=True, compile_s=20.0, samples_s=[0.5, 0.5, 0.51])
    eager = rec(mode="forward", samples_s=[1.0, 1.0, 1.01])
    rows = training.trick_rows(frame(eager, comp), {})
    row = [r for r in rows if r["id"] == "train.compile"][0]
    assert row["verdict"] == "held" and "20.0 s apart" in row["sentence"]
