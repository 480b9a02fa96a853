"""Training tricks as case options: gradient checkpointing per layer, torch.compile."""

import dataclasses

import pytest

pytest.importorskip("torch")

from bench.case import Case, Measure  # noqa: E402
from bench.run.runner import run_case  # noqa: E402

FAST = Measure(warmup=1, min_repeats=2, min_time_s=0.0, max_time_s=2.0, accuracy=False,
               count_flops=False)


def test_checkpointing_lowers_the_measured_peak_of_a_4_layer_encoder_at_512():
    base = Case(impl="torch", block="encoder", mode="train", batch=1, seq_len=512, d_model=64,
                n_heads=4, d_ff=256, layers=4, threads=1, precision="fp32")
    plain = run_case(base, FAST)
    ckpt = run_case(dataclasses.replace(base, checkpoint=True), FAST)
    assert plain["status"] == ckpt["status"] == "ok", (plain["status"], ckpt["status"])
    # without: four (B, H, T, T) softmax outputs (4 MiB each) saved; with: one at a time
    assert ckpt["peak_bytes"] < 0.6 * plain["peak_bytes"], (ckpt["peak_bytes"], plain["peak_bytes"])
    assert ckpt["median_s"] > 0 and plain["median_s"] > 0          # the time cost is recorded


def test_checkpointed_step_equals_the_plain_one():
    import numpy as np
    from bench.impls.prepare import prepare
    base = Case(impl="torch", block="encoder", mode="train", batch=2, seq_len=7, d_model=24,
                n_heads=3, d_ff=40, layers=3, threads=1, precision="fp64")
    a, b = prepare(base), prepare(dataclasses.replace(base, checkpoint=True))
    a.fn(), b.fn()
    assert np.allclose(a.output(), b.output(), rtol=1e-12, atol=0)


@pytest.mark.parametrize("kw, why", [({"block": "ffn"}, "checkpoint applies to block encoder"),
                                     ({"mode": "forward"}, "needs a mode with a backward")])
def test_checkpoint_where_it_does_not_apply_is_skipped(kw, why):
    case = Case(impl="torch", block="encoder", mode="train", batch=1, seq_len=8, d_model=16,
                n_heads=2, d_ff=32, layers=2, threads=1, checkpoint=True)
    rec = run_case(dataclasses.replace(case, **kw), FAST)
    assert rec["status"].startswith("skipped: ") and why in rec["status"]


@pytest.mark.slow
def test_compile_time_is_kept_apart_from_the_samples():
    case = Case(impl="torch", block="ffn", mode="forward", batch=1, seq_len=8, d_model=16,
                n_heads=2, d_ff=32, threads=1, compile=True)
    rec = run_case(case, dataclasses.replace(FAST, count_flops=True))
    assert rec["status"] == "ok", rec["status"]
    assert rec["compile_s"] > 10 * rec["median_s"]             # compiling >> one call
    assert rec["flops_counted"] == rec["flops_analytic"]        # counted on the eager forward
