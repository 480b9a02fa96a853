"""Warm-up until settled, trimming, re-measuring, interference: under fake clocks and counters.

The scenario of the first-case defect: the first calls a process makes pay a one-off cost that
decays with the calls made so far (lazy initialisation, thread-pool start, cold caches). A case
measured first must then agree with the same case measured last.
"""

import math

import pytest

from bench.trackers import interference, warmup as settle
from bench.case import Measure
from bench.trackers.timer import measure_time

SEQ_SWEEP = Measure(warmup=0, min_repeats=3, min_time_s=0.05, max_time_s=2.0)


class Machine:
    """A fake process: call cost = base * (1 + extra * exp(-calls_so_far / decay)) (+ noise)."""

    def __init__(self, extra=200.0, decay=4.0, noise=None):
        self.now = 0.0
        self.calls = 0
        self.extra, self.decay = extra, decay
        self.noise = noise or (lambda i: 0.0)

    def clock(self):
        return self.now

    def case(self, base_s):
        def fn():
            cost = base_s * (1 + self.extra * math.exp(-self.calls / self.decay))
            self.now += cost * (1 + self.noise(self.calls))
            self.calls += 1
        return fn

    def probe(self, fn):
        """The budget probe: one timed call before measure_time (bench.run.budget)."""
        start = self.now
        fn()
        return self.now - start


def _measure(machine, fn, settings=SEQ_SWEEP, **kw):
    return measure_time(fn, settings, clock=machine.clock, first_call_s=machine.probe(fn), **kw)


def test_settled_rule_by_hand():
    assert not settle.settled([1.0])
    assert not settle.settled([1.0, 0.5])                 # still 50% faster: not settled
    assert settle.settled([1.0, 0.5, 0.49])               # 2% faster than the best: settled
    assert settle.settled([0.5, 0.8])                     # slower (noise) does not prolong
    assert not settle.settled([0.5, 0.8, 0.45])           # 10% below the best: improving


def test_trim_leading_by_hand():
    trimmed, kept = settle.trim_leading([3.0, 2.0, 1.0, 1.0, 1.02, 0.99], min_keep=3)
    assert trimmed == [3.0, 2.0] and kept == [1.0, 1.0, 1.02, 0.99]
    trimmed, kept = settle.trim_leading([1.3, 1.0, 1.0], min_keep=3)
    assert trimmed == [] and kept == [1.3, 1.0, 1.0]      # never below min_keep
    trimmed, kept = settle.trim_leading([1.05, 1.0, 1.0, 1.0])
    assert trimmed == []                                  # 5% is noise, not warm-up


def test_first_case_of_a_run_is_not_inflated():
    """0.1 ms case first in the process: 200x slower for the first calls, decaying."""
    machine = Machine()
    stats = _measure(machine, machine.case(1e-4))
    assert stats.warmup_settled
    assert stats.median_s == pytest.approx(1e-4, rel=0.05)
    assert stats.warmup_calls >= 1 and stats.warmup_samples_s


def test_the_fixed_procedure_would_fail_the_same_check():
    """The test above can fail: one probe and no settling, as before, reports ~30x too slow."""
    machine = Machine(decay=40.0)
    stats = _measure(machine, machine.case(1e-4), warmup_max_s=0, remeasure_rounds=0,
                     min_sample_s=0)
    assert stats.median_s > 3 * 1e-4


@pytest.mark.parametrize("decay", [1.0, 2.0, 4.0, 10.0])
def test_a_case_measured_first_and_last_agree(decay):
    machine = Machine(decay=decay, noise=lambda i: 0.02 * math.sin(i))
    first = _measure(machine, machine.case(1e-4))
    for base in (2e-4, 1e-3, 5e-3, 2e-2, 1e-1):           # the rest of the sweep
        _measure(machine, machine.case(base))
    last = _measure(machine, machine.case(1e-4))
    assert first.median_s == pytest.approx(last.median_s, rel=0.05)
    assert last.median_s == pytest.approx(1e-4, rel=0.05)


def test_slow_case_is_not_warmed_up_for_long():
    """A 1 s call: the probe is its warm-up; nothing beyond it (WARMUP_MAX_S)."""
    machine = Machine(extra=0.0)
    stats = _measure(machine, machine.case(1.0))
    assert stats.warmup_calls == 0 and stats.n_samples == 2 and machine.calls == 3
    assert stats.stop_reason == "max_time"


def test_high_spread_is_remeasured_and_rounds_recorded():
    """Round one is disturbed (every other call 2x); later rounds are clean."""
    machine = Machine(extra=0.0, noise=lambda i: 1.0 if 3 <= i < 9 and i % 2 else 0.0)
    stats = _measure(machine, machine.case(0.02),
                     Measure(warmup=1, min_repeats=5, min_time_s=0.0, max_time_s=5.0))
    assert stats.rounds >= 2 and len(stats.round_medians_s) == stats.rounds
    assert stats.n_samples >= 10
    assert stats.median_s == pytest.approx(0.02, rel=0.01)
    record = stats.to_record()
    assert record["rounds"] == stats.rounds and record["samples_s"] == list(stats.samples_s)


def test_stable_case_takes_one_round():
    machine = Machine(extra=0.0)
    stats = _measure(machine, machine.case(0.02),
                     Measure(warmup=1, min_repeats=5, min_time_s=0.0, max_time_s=5.0))
    assert stats.rounds == 1 and not stats.unstable


def test_remeasure_respects_max_time():
    machine = Machine(extra=0.0, noise=lambda i: 1.0 if i % 2 else 0.0)   # always 2x spread
    stats = _measure(machine, machine.case(0.1),
                     Measure(warmup=1, min_repeats=3, min_time_s=0.0, max_time_s=1.0))
    timed = sum(stats.samples_s) * stats.number_per_sample
    assert timed <= 1.0 + 0.2 + 1e-9                       # the cap, plus one sample over it
    assert stats.unstable                                 # still spread: flagged, not hidden


# ---- interference ---------------------------------------------------------------------------

def _snap(wall, own, busy, steal=0, total=None, procs=None):
    return interference.Snapshot(wall_s=wall, own_cpu_s=own, busy_jiffies=busy,
                                 steal_jiffies=steal, total_jiffies=total or busy * 2,
                                 load_1m=1.0, processes=procs or {})


def test_between_by_hand():
    # 1 s window, 100 Hz: machine busy 150 jiffies, we used 1.0 s -> others 0.5 cores
    before = _snap(0.0, 0.0, 1000, procs={7: ("stress", 0)})
    after = _snap(1.0, 1.0, 1150, procs={7: ("stress", 48)})
    out = interference.between(before, after, hz=100)
    assert out["other_cpu_cores"] == pytest.approx(0.5)
    assert out["other_cpu_top"] == "pid 7 (stress) 0.48 cores"
    assert out["interference"] and "0.50 cores" in out["interference_reason"]


def test_between_quiet_and_steal():
    quiet = interference.between(_snap(0, 0, 1000), _snap(1, 1.0, 1101), hz=100)
    assert not quiet["interference"] and quiet["interference_reason"] is None
    stolen = interference.between(_snap(0, 0, 1000, steal=0, total=2000),
                                  _snap(1, 1.0, 1100, steal=20, total=2200), hz=100)
    assert stolen["cpu_steal_frac"] == pytest.approx(0.1) and stolen["interference"]
    assert "steal 10%" in stolen["interference_reason"]


def test_between_without_proc_is_null_and_unflagged():
    blank = interference.Snapshot(wall_s=0.0, own_cpu_s=0.0)
    out = interference.between(blank, interference.Snapshot(wall_s=1.0, own_cpu_s=1.0), hz=100)
    assert out["other_cpu_cores"] is None and out["interference"] is False


def test_real_snapshot_reads_this_machine():
    snap = interference.snapshot()
    if snap.busy_jiffies is None:
        pytest.skip("no /proc/stat here")
    assert snap.total_jiffies >= snap.busy_jiffies > 0 and snap.own_cpu_s > 0


def test_time_case_retimes_under_interference_and_keeps_the_clean_attempt():
    machine = Machine(extra=0.0)
    # attempt 1: others used 1.5 cores; attempt 2: quiet
    snaps = iter([_snap(0, 0, 0), _snap(1, 0.0, 150), _snap(2, 0, 0), _snap(3, 1.0, 100)])
    fn = machine.case(0.01)
    out = interference.time_case(fn, Measure(warmup=1, min_repeats=3, min_time_s=0.0),
                              snapshot=lambda: next(snaps), clock=machine.clock)
    assert out["timing_attempts"] == 2 and out["interference"] is False
    assert set(interference.RECORD_KEYS) <= set(out)


def test_time_case_flags_when_every_attempt_was_disturbed():
    machine = Machine(extra=0.0)
    snaps = iter([_snap(0, 0, 0), _snap(1, 0.0, 150), _snap(2, 0, 0), _snap(3, 0.0, 120)])
    out = interference.time_case(machine.case(0.01), Measure(warmup=1, min_repeats=3,
                                                          min_time_s=0.0),
                              snapshot=lambda: next(snaps), clock=machine.clock)
    assert out["timing_attempts"] == 2 and out["interference"] is True
    assert out["other_cpu_cores"] == pytest.approx(1.2 / (1.0 + 0.0), rel=0.01) or \
        out["other_cpu_cores"] < 1.5                      # the less disturbed attempt is kept


def test_long_rounds_are_not_remeasured():
    """Three 0.3 s calls make a 0.9 s round: past REMEASURE_MAX_ROUND_S, one round only."""
    machine = Machine(extra=0.0, noise=lambda i: 1.0 if i % 2 else 0.0)
    stats = _measure(machine, machine.case(0.3),
                     Measure(warmup=1, min_repeats=3, min_time_s=0.0, max_time_s=5.0))
    assert stats.rounds == 1 and stats.n_samples == 3 and stats.unstable


def test_garbage_collector_is_paused_while_timing_and_restored():
    import gc

    seen = []
    machine = Machine(extra=0.0)
    base = machine.case(0.01)

    def fn():
        seen.append(gc.isenabled())
        base()

    assert gc.isenabled()
    measure_time(fn, Measure(warmup=1, min_repeats=3, min_time_s=0.0), clock=machine.clock)
    assert seen and not any(seen) and gc.isenabled()
