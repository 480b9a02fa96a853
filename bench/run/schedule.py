"""The run's wall-clock budget (measure.run_budget_s): which later timing passes still fit.

    process_elapsed_s()                  wall seconds since the process started
    estimate_pass_s(records, measure)    a later pass's seconds over these cases, from their
                                         medians (before one has run)
    fits_budget(measure, estimate_s)     (fits?, the reason if not): the pass must end with
                                         REPORT_RESERVE_S left for the report
    partial_pass(todo, merged, measure, scale)
                                         when a whole pass no longer fits: whole blocks (every
                                         case of a block or none) in the config's order, each
                                         only if it still fits, so a claim's sizes are timed in
                                         the same number of passes

bench.run.driver runs the passes these choose and records what was spent where (meta.json
run_budget; the report's sentence is bench.analysis.describe.budget_sentence).

Tests: tests/run/test_driver.py.
"""

from __future__ import annotations

import time

REPORT_RESERVE_S = 10.0        # kept for the report after the passes (seq_sweep's: 5-8 s here)
PASS_CASE_OVERHEAD_S = 0.1     # a later pass's cost per case beyond its calls (prepare, copies)


def process_elapsed_s() -> float:
    """Wall seconds since this process started (interpreter start-up and imports included)."""
    import psutil

    return time.time() - psutil.Process().create_time()


def estimate_pass_s(records: list[dict], measure) -> float:
    """A later pass's seconds over these cases, before one has run: per case its probe and
    warm-up calls, its timed seconds (pass_min_time_s, at least pass_min_repeats calls) and a
    fixed set-up; after a pass has run, the driver uses that pass's own duration instead."""
    floor_s = measure.pass_min_time_s or measure.min_time_s
    repeats = measure.pass_min_repeats or measure.min_repeats
    total = 0.0
    for r in records:
        call = r.get("median_s") or 0.0
        total += max(floor_s, repeats * call) + (measure.warmup + 1) * call + PASS_CASE_OVERHEAD_S
    return total


def fits_budget(measure, estimate_s: float) -> tuple[bool, str]:
    """(whether a pass of ~estimate_s still fits measure.run_budget_s, the reason if not)."""
    if not measure.run_budget_s:
        return True, ""
    end = process_elapsed_s() + estimate_s
    if end + REPORT_RESERVE_S <= measure.run_budget_s:
        return True, ""
    return False, (f"would end at ~{end:.0f} s, + {REPORT_RESERVE_S:.0f} s for the report, past "
                   f"measure.run_budget_s = {measure.run_budget_s:g} s")


def partial_pass(todo, merged: dict, measure, scale: float) -> tuple[list, list[str]]:
    """(cases, blocks) of a pass over whole blocks that still fit the time left: the blocks in
    the config's order, each taken only if its estimate (scaled by the last pass's measured /
    estimated ratio) fits what the blocks taken before left."""
    if not measure.run_budget_s:
        return [], []
    left = measure.run_budget_s - REPORT_RESERVE_S - process_elapsed_s()
    groups: dict[str, list] = {}
    for case in todo:
        groups.setdefault(case.block, []).append(case)
    cases, blocks = [], []
    for block, members in groups.items():
        cost = scale * estimate_pass_s([merged[c.case_id] for c in members], measure)
        if cost <= left:
            cases += members
            blocks.append(block)
            left -= cost
    return cases, blocks
