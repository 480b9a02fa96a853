"""The `train` mode and numpy's forward+backward through the harness (bench.run.runner.run_case)."""

import numpy as np
import pytest

pytest.importorskip("torch")

from bench.case import Case, Measure  # noqa: E402
from bench.run.runner import RECORD_KEYS, run_case  # noqa: E402
from bench.modes.train import TRAIN_KEYS  # noqa: E402

FAST = Measure(warmup=1, min_repeats=2, min_time_s=0.0, max_time_s=1.0)
SIZES = dict(batch=2, seq_len=9, d_model=24, n_heads=3, d_ff=40, layers=2, threads=1)


def case(**kw):
    return Case(**{**dict(impl="numpy", block="encoder", precision="fp32", mode="train"),
                   **SIZES, **kw})


@pytest.mark.parametrize("impl", ["numpy", "torch", "torch-sdpa"])
@pytest.mark.parametrize("block", ["encoder_layer", "encoder", "model"])
def test_train_records_bytes_equal_to_the_prediction(impl, block):
    rec = run_case(case(impl=impl, block=block), FAST)
    assert rec["status"] == "ok", rec["status"]
    assert set(TRAIN_KEYS) <= set(rec) and set(TRAIN_KEYS) <= set(RECORD_KEYS)
    for kind in ("saved_activation", "gradient", "optimizer_state"):
        measured, predicted = rec[f"{kind}_bytes"], rec[f"{kind}_bytes_predicted"]
        assert measured > 0 and abs(measured - predicted) <= 0.05 * predicted, kind
    # AdamW: two moments per parameter, fp32 (+ torch's float32 step counter per tensor)
    counters = rec["optimizer_state_bytes"] - 2 * rec["gradient_bytes"]
    assert counters == 0 if impl == "numpy" else 0 < counters <= 4 * 100 and counters % 4 == 0
    assert rec["gradient_bytes"] == 4 * rec["params"]
    assert rec["rel_l2_err"] < 1e-5                      # fp32 step vs the fp64 forward


@pytest.mark.parametrize("block", ["attention", "mha", "ffn", "encoder_layer", "model"])
def test_numpy_forward_backward_runs(block):
    rec = run_case(case(block=block, mode="forward+backward"), FAST)
    assert rec["status"] == "ok", rec["status"]
    assert rec["flops_analytic"] > 0 and rec["saved_activation_bytes"] is None


def test_train_step_repeats_the_same_first_step():
    from bench.impls.prepare import prepare
    for impl in ("numpy", "torch"):
        prepared = prepare(case(impl=impl, block="encoder_layer", precision="fp64"))
        first = np.array(prepared.fn() if impl == "numpy" else prepared.fn().numpy())
        again = np.array(prepared.fn() if impl == "numpy" else prepared.fn().numpy())
        assert np.array_equal(first, again), impl
