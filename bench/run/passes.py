"""Timing passes: every case timed again after the whole sweep, so slow spells touch no size alone.

A shared or virtual machine has spells of a few seconds to a minute in which everything runs
5-35% slower (another tenant, the host's frequency), invisible from inside (no steal, no other
process). Inside one case the samples then agree with each other (small IQR) and the case is
simply slow; the next run, another window is slow. Two runs of the same sweep on an idle 2-core
VM agreed within ±5% for only ~60% of their cases this way, while each case's own spread was
2-4%. The remedy is asv's: time each case in several passes spread over the run.

    pass 1      the full case (probe, warm-up, timing, FLOPs, memory, accuracy) -> the record
    pass 2..P   after pass 1 of every case, each ok case again: prepare, warm up, time only
                (bench.run.passes.timing_only) -> a line {"case_id", "pass": k, timing columns}

records.jsonl keeps every line (raw samples of every pass); `merge` (bench.reader, the read
side) folds the pass lines into their case's record when a run folder is read:

    samples_s        every pass's samples, in order; sample_pass: the pass of each sample
    pass_medians_s   each pass's median
    pass_spread      max / min of the pass medians: how far this case moved across the run
    median_s, iqr_s, min_s, mean_s, std_s, spread, unstable
                     of the pass with the LOWEST median (best_pass)
    calib_s, calib_probe, calib_samples_s
                     the calibration probe timed beside that pass (bench.trackers.calibration);
                     pass_calib_s: each pass's calib_s

The statistic: noise on a CPU only ever adds time, and a slow spell lifts a whole pass, so the
pass with the lowest median is the one least disturbed (the reasoning of Chen & Revels 2016 for
the minimum, applied to pass medians, which keeps the median's robustness inside a pass). With
P = 1 nothing changes. `measure.passes` in a config sets P, `measure.pass_min_repeats` the
samples a later pass needs at least.

Measured (two back-to-back runs of configs/seq_sweep.yaml with four passes, 2-core AMD EPYC VM,
113 cases >= 1 ms; the same records folded with the first k passes and different statistics),
share of cases whose two runs agree within ±5%:

    passes k          1      2      3      4
    lowest median    61%    89%    95%    94%
    median of the k         79%    81%    75%

the median of pass medians is no better than one pass, because the spells are not rare: a case's
four pass medians spanned max/min 1.07 in the typical case and 1.21 at the 90th percentile (a
torch FFN at T=128: 6.1, 7.7, 6.1, 7.5 ms). Later passes for the short calls only
(`measure.pass_below_s`) save time but leave the long ones to one window: one pair of such runs
had a torch FFN at 109 vs 87 ms. With the seeded weights re-used (bench.impls.common.SEEDED) a
later pass of all 124 cases costs ~23 s, so seq_sweep times every case in four passes (one
sample and 25 ms at least in passes 2-4, `measure.pass_min_repeats`, `pass_min_time_s`),
160-167 s in all.

How far this goes depends on the machine. `bench compare` and the report's first lines state
how well the same case agreed with itself from pass to pass inside a run: the machine's own
repeatability, which the lowest pass median improves on. Back-to-back pairs of seq_sweep runs on
the VM above (cases >= 1 ms; pass pairs within ±5% inside run A / run B -> cases within ±5%
between the runs): 66 / 56% -> 95%, 64 / 75% -> 88%, 52 / 75% -> 88%, 54 / 65% -> 85%,
52 / 46% -> 83%, 44 / 47% -> 60% (the last with `python -m bench noise` showing the FFN probe
at 1.34x its best slot in the median slot, all probes slowing down together).
"""

from __future__ import annotations

import dataclasses

from bench.case import Measure
# The fold of later passes into their records is the read side's (bench.reader: the analysis
# reads folders without bench.run); re-exported here.
from bench.reader import PASS_KEY, is_pass_line, merge  # noqa: F401

PASS_COLUMNS = ("samples_s", "n_samples", "number_per_sample", "stop_reason", "warmup_calls",
                "warmup_s", "warmup_settled", "rounds", "round_medians_s", "median_s",
                "iqr_s", "min_s", "mean_s", "std_s", "spread", "unstable", "interference",
                "interference_reason", "load_avg_1m", "cpu_steal_frac", "other_cpu_cores",
                "timing_attempts", "calib_s", "calib_probe", "calib_samples_s", "start_time",
                "end_time", "elapsed_s", "status")


def timing_only(measure: Measure) -> Measure:
    """The settings of a later pass: time the case (at least `pass_min_repeats` samples and
    `pass_min_time_s` seconds, when set: a later pass has only to place the case's level in
    another stretch of the run, its spread is known from pass 1), count and check nothing again."""
    repeats = measure.pass_min_repeats or measure.min_repeats
    min_time = measure.pass_min_time_s or measure.min_time_s
    return dataclasses.replace(measure, count_flops=False, measure_memory=False,
                               accuracy=False, profile=False, min_repeats=repeats,
                               max_repeats=max(repeats, measure.max_repeats),
                               min_time_s=min_time, max_time_s=max(min_time, measure.max_time_s))


def wants_pass(record: dict, index: int, measure: Measure) -> bool:
    """Does pass `index` time this case? Every ok case not yet timed that often, except, with
    `measure.pass_below_s` set, one whose median so far is that long or longer: a call of
    100 ms and more was steady from run to run already (module docstring), and those calls are
    most of a pass's time."""
    if record.get("status") != "ok" or passes_done(record) >= index:
        return False
    median = record.get("median_s")
    return not (measure.pass_below_s and median is not None and median >= measure.pass_below_s)


def pass_line(record: dict, index: int) -> dict:
    """What a later pass appends for a case: its timing columns and the pass index."""
    line = {"case_id": record["case_id"], PASS_KEY: index}
    line.update({key: record.get(key) for key in PASS_COLUMNS})
    return line


def passes_done(record: dict) -> int:
    return int(record.get("passes") or 1)
