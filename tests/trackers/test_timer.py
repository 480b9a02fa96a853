"""bench.trackers.timer: statistics by hand, the stopping rule and batching under a fake clock."""

import json
import math

import numpy as np
import pytest

from bench.case import Measure
from bench.trackers.timer import (ClockTimer, TimeStats, choose_number, measure_time, quantile,
                         timer_factory_for)


class FakeClock:
    """Time moves only when the fake function runs: each call takes the next scripted duration."""

    def __init__(self, durations):
        self.now = 0.0
        self.calls = 0
        self._durations = durations

    def clock(self):
        return self.now

    def fn(self):
        d = self._durations(self.calls) if callable(self._durations) else self._durations[self.calls]
        self.calls += 1
        self.now += d


def constant(seconds):
    return FakeClock(lambda i: seconds)


def test_stats_odd_count_by_hand():
    stats = TimeStats(samples_s=(0.4, 0.1, 0.3, 0.2, 0.5), warmup=1, spread_warn=0.5)
    assert stats.n_samples == 5
    assert stats.median_s == pytest.approx(0.3)
    # sorted 0.1 .. 0.5: q25 at position 1 -> 0.2, q75 at position 3 -> 0.4
    assert stats.iqr_s == pytest.approx(0.2)
    assert stats.min_s == pytest.approx(0.1)
    assert stats.mean_s == pytest.approx(0.3)
    assert stats.std_s == pytest.approx(math.sqrt(0.1 / 4))   # squared deviations sum to 0.1
    assert stats.spread == pytest.approx(0.2 / 0.3)
    assert stats.unstable                                       # 0.667 > 0.5


def test_stats_even_count_interpolates():
    stats = TimeStats(samples_s=(4.0, 1.0, 3.0, 2.0), warmup=0, spread_warn=1.0)
    assert stats.median_s == 2.5
    # q25 at position 0.75 -> 1.75, q75 at position 2.25 -> 3.25
    assert stats.iqr_s == pytest.approx(1.5)
    assert stats.iqr_s == pytest.approx(np.subtract(*np.percentile([4, 1, 3, 2], [75, 25])))
    assert stats.spread == pytest.approx(0.6)
    assert not stats.unstable


def test_single_sample_has_zero_spread():
    stats = TimeStats(samples_s=(0.01,), warmup=0)
    assert (stats.median_s, stats.iqr_s, stats.std_s, stats.spread) == (0.01, 0.0, 0.0, 0.0)


def test_no_samples_is_an_error():
    with pytest.raises(ValueError, match="samples_s"):
        TimeStats(samples_s=(), warmup=0)


def test_quantile_matches_numpy():
    rng = np.random.default_rng(0)
    values = tuple(sorted(rng.random(11)))
    for q in (0.0, 0.1, 0.25, 0.5, 0.9, 1.0):
        assert quantile(values, q) == pytest.approx(np.quantile(values, q))


def test_stops_when_min_time_reached_after_min_repeats():
    fake = constant(0.0625)                     # binary-exact, so sums are exact
    stats = measure_time(fake.fn, Measure(warmup=2, min_repeats=3, min_time_s=0.25),
                         clock=fake.clock)
    assert stats.n_samples == 4                 # 4 * 0.0625 = 0.25 reaches min_time_s
    assert fake.calls == 2 + 4                  # warm-up calls are not samples
    assert stats.samples_s == (0.0625,) * 4
    assert stats.number_per_sample == 1
    assert stats.stop_reason == "min_reached"


def test_min_repeats_wins_when_time_is_reached_first():
    fake = constant(0.0625)
    stats = measure_time(fake.fn, Measure(warmup=1, min_repeats=6, min_time_s=0.25),
                         clock=fake.clock)
    assert stats.n_samples == 6


def test_max_repeats_caps():
    fake = constant(0.0625)
    stats = measure_time(fake.fn, Measure(warmup=1, min_repeats=5, min_time_s=100.0,
                                          max_repeats=7), clock=fake.clock)
    assert stats.n_samples == 7
    assert stats.stop_reason == "max_repeats"


def test_max_time_caps():
    fake = constant(1.0)
    stats = measure_time(fake.fn, Measure(warmup=1, min_repeats=100, min_time_s=0.0,
                                          max_time_s=3.0), clock=fake.clock)
    assert stats.n_samples == 3
    assert stats.stop_reason == "max_time"


def test_raw_samples_kept_in_order_and_stats_from_them():
    script = [9.0, 0.5, 0.25, 1.0, 0.75]        # first is the warm-up
    fake = FakeClock(script)
    stats = measure_time(fake.fn, Measure(warmup=1, min_repeats=4, min_time_s=0.0),
                         clock=fake.clock, warmup_max_s=0, remeasure_rounds=0)
    assert stats.samples_s == (0.5, 0.25, 1.0, 0.75)
    assert stats.median_s == pytest.approx(0.625)
    assert stats.min_s == 0.25


def test_fast_function_is_batched_per_sample():
    call = 2.0 ** -13                           # ~0.12 ms: 10 calls make >= 1 ms
    fake = constant(call)
    stats = measure_time(fake.fn, Measure(warmup=2, min_repeats=5, min_time_s=0.0),
                         clock=fake.clock)
    assert stats.number_per_sample == 10
    assert stats.warmup_calls == 2 and stats.warmup_settled   # two equal calls: settled
    assert fake.calls == 2 + 5 * 10
    assert stats.samples_s == pytest.approx((call,) * 5)   # per-call, not per-block


def test_no_warmup_means_no_batching():
    fake = constant(2.0 ** -13)
    stats = measure_time(fake.fn, Measure(warmup=0, min_repeats=3, min_time_s=0.0),
                         clock=fake.clock, warmup_max_s=0)
    assert stats.number_per_sample == 1
    assert fake.calls == 3 and stats.warmup_calls == 0


def test_batching_can_be_disabled():
    fake = constant(2.0 ** -13)
    stats = measure_time(fake.fn, Measure(warmup=1, min_repeats=3, min_time_s=0.0),
                         clock=fake.clock, min_sample_s=0.0)
    assert stats.number_per_sample == 1


@pytest.mark.parametrize("call_s, number", [(1.0, 1), (1e-3, 1), (6e-4, 2), (3e-4, 5),
                                            (1.5e-4, 10), (1e-5, 100), (3e-6, 500)])
def test_choose_number_series(call_s, number):
    assert choose_number(call_s, 1e-3) == number


def test_sync_brackets_every_timed_block():
    fake = constant(0.125)
    syncs = []
    stats = measure_time(fake.fn, Measure(warmup=2, min_repeats=3, min_time_s=0.0),
                         clock=fake.clock, sync=lambda: syncs.append(fake.calls))
    assert stats.n_samples == 3
    # before and after each of 2 warm-ups + 3 samples, seeing the call count at that moment
    assert syncs == [0, 1, 1, 2, 2, 3, 3, 4, 4, 5]


def test_timer_factory_replaces_clock():
    class FixedStopwatch:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.elapsed_s = 0.5

    calls = []
    stats = measure_time(lambda: calls.append(1), Measure(warmup=1, min_repeats=2, min_time_s=0.0),
                         timer_factory=FixedStopwatch)
    assert stats.samples_s == (0.5, 0.5)
    assert len(calls) == 3


def test_unstable_flag_and_warning_text():
    script = [1.0, 1.0, 1.0, 2.0, 1.0, 3.0]
    fake = FakeClock(script)
    stats = measure_time(fake.fn, Measure(warmup=1, min_repeats=5, min_time_s=0.0,
                                          spread_warn=0.1), clock=fake.clock,
                         remeasure_rounds=0)
    assert stats.samples_s == (1.0, 1.0, 2.0, 1.0, 3.0)
    assert stats.iqr_s == 1.0 and stats.median_s == 1.0
    assert stats.unstable
    assert "WARNING" in str(stats)


def test_to_record_has_the_record_keys_and_is_json():
    stats = TimeStats(samples_s=(0.2, 0.1, 0.3), warmup=2)
    rec = stats.to_record()
    for key in ("samples_s", "n_samples", "warmup", "median_s", "iqr_s", "min_s", "mean_s",
                "std_s", "spread", "unstable", "number_per_sample"):
        assert key in rec
    assert rec["samples_s"] == [0.2, 0.1, 0.3]
    assert json.loads(json.dumps(rec)) == rec


@pytest.mark.parametrize("bad, key", [(dict(min_repeats=0), "min_repeats"),
                                      (dict(warmup=-1), "warmup"),
                                      (dict(min_repeats=5, max_repeats=2), "max_repeats"),
                                      (dict(min_time_s=-1.0), "min_time_s")])
def test_bad_settings_name_the_key(bad, key):
    with pytest.raises(ValueError, match=f"measure.{key}"):
        measure_time(lambda: None, Measure(**bad))


def test_real_clock_smoke():
    stats = measure_time(lambda: sum(range(200)), Measure(warmup=1, min_repeats=3, min_time_s=0.01))
    assert stats.n_samples >= 3 and stats.min_s > 0
    assert stats.number_per_sample > 1           # a few microseconds per call gets batched
    assert sum(stats.samples_s) * stats.number_per_sample >= 0.01


def test_timer_factory_for_device():
    assert timer_factory_for("cpu") is ClockTimer
    with pytest.raises(ValueError, match="device"):
        timer_factory_for("tpu")


@pytest.mark.gpu
def test_cuda_event_timer_times_a_matmul():
    import torch
    from bench.trackers.timer import CudaEventTimer
    a = torch.randn(1024, 1024, device="cuda")
    stats = measure_time(lambda: a @ a, Measure(warmup=2, min_repeats=3, min_time_s=0.0),
                         timer_factory=CudaEventTimer)
    assert stats.min_s > 0
