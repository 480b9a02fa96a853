"""bench.impls.common.SEEDED: seeded weights and inputs drawn once, every caller its own copy."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from bench.case import Case
from bench.impls import common
from bench.impls.common import SeededStore, make_inputs, make_params, model_config
from support import run
from tfimpl.params import init_params

SMALL = Case(impl="numpy", block="encoder_layer", batch=2, seq_len=7, d_model=16, n_heads=2,
             d_ff=24, threads=1)


def _draw(n, calls):
    def draw():
        calls.append(n)
        return {"a": np.full(n, float(n))}
    return draw


def test_the_same_numbers_as_init_params_and_a_fresh_copy_each_time():
    cfg = model_config(SMALL)
    expected = init_params("encoder_layer", cfg, SMALL.seed)
    first = make_params(SMALL, cfg)
    assert first.keys() == expected.keys()
    assert all(np.array_equal(first[k], expected[k]) for k in expected)
    for value in first.values():                     # the caller may write into its copy ...
        assert value.flags.writeable
        value[...] = 0.0
    again = make_params(SMALL, cfg)                  # ... and the next caller never sees it
    assert all(np.array_equal(again[k], expected[k]) for k in expected)
    x = make_inputs(SMALL)["x"]
    x += 1.0
    assert not np.array_equal(make_inputs(SMALL)["x"], x)


def test_a_cast_copy_is_the_cast_of_the_float64_draw():
    cfg = model_config(SMALL)
    cast = make_params(SMALL, cfg, np.float32)
    expected = init_params("encoder_layer", cfg, SMALL.seed)
    assert all(cast[k].dtype == np.float32 and np.array_equal(cast[k], expected[k].astype(np.float32))
               for k in expected)


def test_draws_once_drops_the_least_recent_past_the_cap_and_keeps_nothing_too_big():
    store, calls = SeededStore(cap_bytes=30 * 8), []     # room for 30 float64 values
    for n in (10, 10, 11, 10):
        store.get(n, _draw(n, calls))
    assert calls == [10, 11]                          # 10 drawn once, then twice a copy
    store.get(12, _draw(12, calls))                   # 10 + 11 + 12 values > 30: drop 11,
    store.get(10, _draw(10, calls))                   # the least recently used; 10 is kept
    store.get(11, _draw(11, calls))
    assert calls == [10, 11, 12, 11]
    store.get(99, _draw(99, calls)), store.get(99, _draw(99, calls))
    assert calls[-2:] == [99, 99]                     # over the cap: drawn each time
    info = store.describe()
    assert info["kept_bytes"] <= info["cap_bytes"] and info["hits"] == 3


def test_kept_arrays_are_read_only():
    store = SeededStore(cap_bytes=1 << 20)
    store.get("k", _draw(4, []))
    kept = store._items["k"]["a"]
    with pytest.raises(ValueError):
        kept[0] = 1.0


def test_the_cap_from_the_environment(monkeypatch):
    monkeypatch.setenv("TFBENCH_SEED_CACHE_MB", "0")
    store, calls = SeededStore(), []
    store.get(1, _draw(1, calls)), store.get(1, _draw(1, calls))
    assert calls == [1, 1] and store.cap_bytes == 0
    monkeypatch.setenv("TFBENCH_SEED_CACHE_MB", "lots")
    with pytest.raises(ValueError, match="TFBENCH_SEED_CACHE_MB='lots'"):
        SeededStore().get(1, _draw(1, []))
    monkeypatch.delenv("TFBENCH_SEED_CACHE_MB")
    assert 0 < SeededStore().cap_bytes <= SeededStore.DEFAULT_CAP_BYTES


@pytest.mark.parametrize("impl", ["numpy", "torch"])
def test_a_train_step_leaves_the_next_preparation_untouched(impl):
    """train mode updates its weights in place: the store must hand out copies (torch's float64
    tensors share memory with the array they are made from)."""
    pytest.importorskip("torch")
    from bench.impls.prepare import prepare

    case = dataclasses.replace(SMALL, impl=impl, precision="fp64", mode="train")
    common.SEEDED.clear()
    outputs = []
    for _ in range(2):
        prepared = prepare(case)
        try:
            prepared.fn()
            outputs.append(prepared.output())        # the first step's output ...
            for _ in range(3):
                prepared.fn()                        # ... then three in-place updates
        finally:
            prepared.teardown()
    assert np.array_equal(outputs[0], outputs[1])
    assert common.SEEDED.describe()["hits"] >= 1


def test_a_bad_cap_stops_bench_run_before_any_case(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TFBENCH_SEED_CACHE_MB", "lots")
    monkeypatch.setattr(common, "SEEDED", SeededStore())       # read the variable afresh
    smoke = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"
    rc, _, err = run(capsys, "run", str(smoke), "--out", str(tmp_path / "r"))
    assert rc == 2 and err.strip() == ("error: TFBENCH_SEED_CACHE_MB='lots': expected a number "
                                       "of MiB (0 keeps nothing)")
    assert not (tmp_path / "r").exists()
