"""The record schema: every field of a case's JSON line in records.jsonl, declared once.

A record is the contract between the run stage (bench.run and what it calls: bench.plan,
bench.trackers, bench.profile, bench.blocks, bench.modes, bench.impls) and the analysis
(bench.analysis), which reads records and never imports the run stage. This module imports
nothing of either side (only bench.case, whose fields are the record's first columns, and
bench.metrics, whose registered metrics may add columns), so both can import it.

Each `Field` has a name, a type ("int", "float", "str", "bool", "list[float]", "list[int]",
"dict"), a unit ("s", "bytes", "FLOP", "GFLOP/s", "tokens/s", "cores", "" for a count or a
ratio), the stage that fills it (the module under bench/, or "case" for the case's own fields)
and a kind:

    record   in every record, in this order (RECORD_KEYS: what bench.run.runner.empty_record
             lays out); `null` where the case cannot have it, never missing
    folded   only in a record read back with later timing passes folded in (bench.reader.merge)
    pass     only on a later pass's line in records.jsonl, never in a record

`columns()` is RECORD_KEYS plus the record columns of registered plugin metrics
(bench.metrics) that are not declared here. `sample_stats` is how the timing statistics
(median_s ... unstable) follow from samples_s; bench.trackers.timer.TimeStats derives its own
from it too, so the read side can fold passes without the trackers.

SCHEMA_VERSION is stamped into meta.json by bench.run.writer.RunWriter.create; a folder
without it was written before the stamp (version 1: the same record fields). Version 3 added
the calibration probe's calib_s, calib_probe, calib_samples_s (and the folded pass_calib_s);
older records have none. Version 4 added flops_method (how flops_counted was
counted), accuracy_reference (the implementation whose fp64 run the errors are against) and the
sub-quadratic attention blocks' price: approx_rel_l2_err, attn_mass_captured, useful_fraction,
price_rows (bench.blocks.sparse).
Version 5 added weight_bytes (the Linear weights as stored, measured), weight_bytes_predicted
and int8_macs (tfimpl.costs.quantized, through bench.plan), graph_optimization (ONNX Runtime's
level).
Readers (bench.reader) refuse a version they do not know. Reading a run folder is bench.reader, not
this module (the 400-line limit). Tested by tests/test_record.py.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from typing import NamedTuple

from bench import metrics
from bench.case import Case

SCHEMA_VERSION = 5
VERSION_KEY = "schema_version"          # in meta.json; absent: version 1


class Field(NamedTuple):
    name: str
    type: str
    unit: str
    stage: str
    kind: str = "record"                # record | folded | pass


# name, type, unit ("-": none), stage; after the Case fields, in record order.
_TABLE = """
case_id                           str          -         case
status                            str          -         run.runner
samples_s                         list[float]  s         trackers.timer
n_samples                         int          -         trackers.timer
warmup                            int          -         trackers.timer
number_per_sample                 int          -         trackers.timer
stop_reason                       str          -         trackers.timer
median_s                          float        s         trackers.timer
iqr_s                             float        s         trackers.timer
min_s                             float        s         trackers.timer
mean_s                            float        s         trackers.timer
std_s                             float        s         trackers.timer
spread                            float        -         trackers.timer
unstable                          bool         -         trackers.timer
probe_s                           float        s         run.budget
flops_analytic                    int          FLOP      plan
flops_counted                     int          FLOP      trackers.flops
flops_match                       bool         -         trackers.flops
gflops_per_s                      float        GFLOP/s   run.runner
fastpath                          bool         -         impls
peak_bytes                        int          bytes     trackers.memory
peak_method                       str          -         trackers.memory
peak_bytes_predicted              int          bytes     plan
rss_peak_bytes                    int          bytes     trackers.memory
max_abs_err                       float        -         trackers.accuracy
max_rel_err                       float        -         trackers.accuracy
rel_l2_err                        float        -         trackers.accuracy
attn_max_abs_err                  float        -         trackers.accuracy
attn_max_rel_err                  float        -         trackers.accuracy
attn_rel_l2_err                   float        -         trackers.accuracy
hostname                          str          -         run.runner
pid                               int          -         run.runner
node_id                           str          -         run.executors
gpu_name                          str          -         run.runner
gpu_uuid                          str          -         run.runner
start_time                        float        s         run.runner
end_time                          float        s         run.runner
elapsed_s                         float        s         run.runner
executor                          str          -         run.executors
kv_bytes_measured                 int          bytes     blocks.gpt
kv_bytes_analytic                 int          bytes     blocks.gpt
ttft_s                            float        s         trackers.generation
itl_p50_s                         float        s         trackers.generation
itl_p90_s                         float        s         trackers.generation
itl_p99_s                         float        s         trackers.generation
prefill_tokens_per_s              float        tokens/s  trackers.generation
decode_tokens_per_s               float        tokens/s  trackers.generation
decode_bytes_min                  int          bytes     blocks.gpt
compile_s                         float        s         impls
saved_activation_bytes            int          bytes     modes.train
gradient_bytes                    int          bytes     modes.train
optimizer_state_bytes             int          bytes     modes.train
saved_activation_bytes_predicted  int          bytes     modes.train
gradient_bytes_predicted          int          bytes     modes.train
optimizer_state_bytes_predicted   int          bytes     modes.train
korthikanti_bytes                 int          bytes     modes.train
warmup_calls                      int          -         trackers.warmup
warmup_s                          float        s         trackers.warmup
warmup_settled                    bool         -         trackers.warmup
warmup_samples_s                  list[float]  s         trackers.warmup
rounds                            int          -         trackers.timer
round_medians_s                   list[float]  s         trackers.timer
load_avg_1m                       float        -         trackers.interference
cpu_steal_frac                    float        -         trackers.interference
other_cpu_cores                   float        cores     trackers.interference
other_cpu_top                     str          -         trackers.interference
interference                      bool         -         trackers.interference
interference_reason               str          -         trackers.interference
timing_attempts                   int          -         trackers.interference
profile_steps_s                   dict         s         profile
profile_steps_flops               dict         FLOP      profile
profile_steps_bytes               dict         bytes     profile
profile_sum_s                     float        s         profile
profile_overhead                  float        -         profile
profile_status                    str          -         profile
backend                           str          -         plan
attn_path                         str          -         plan
attn_materialised                 bool         -         plan
bytes_per_element                 int          bytes     plan
storage_bytes                     int          bytes     plan
flops_by_component                dict         FLOP      plan
working_set_bytes                 int          bytes     plan
params                            int          -         plan
calib_s                           float        s         trackers.calibration
calib_probe                       str          -         trackers.calibration
calib_samples_s                   list[float]  s         trackers.calibration
flops_method                      str          -         trackers.flops
accuracy_reference                str          -         trackers.accuracy
approx_rel_l2_err                 float        -         blocks.sparse
attn_mass_captured                float        -         blocks.sparse
useful_fraction                   float        -         blocks.sparse
price_rows                        int          -         blocks.sparse
weight_bytes                      int          bytes     impls
weight_bytes_predicted            int          bytes     plan
int8_macs                         int          MAC       plan
graph_optimization                str          -         impls
sample_pass                       list[int]    -         reader      folded
passes                            int          -         reader      folded
pass_medians_s                    list[float]  s         reader      folded
best_pass                         int          -         reader      folded
pass_spread                       float        -         reader      folded
pass_calib_s                      list[float]  s         reader      folded
pass                              int          -         run.passes  pass
"""


def _parse(table: str) -> tuple[Field, ...]:
    out = []
    for line in table.strip().splitlines():
        name, type_, unit, stage, *kind = line.split()
        out.append(Field(name, type_, "" if unit == "-" else unit, stage, *kind))
    return tuple(out)


# The Case fields first (bench.case owns them: name and type from the dataclass), then the table.
FIELDS: tuple[Field, ...] = tuple(
    Field(f.name, str(f.type), "", "case") for f in dataclasses.fields(Case)) + _parse(_TABLE)
BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
CASE_KEYS = tuple(f.name for f in dataclasses.fields(Case))
RECORD_KEYS = tuple(f.name for f in FIELDS if f.kind == "record")
RESULT_KEYS = tuple(k for k in RECORD_KEYS if k not in CASE_KEYS)   # case_id on: the measured side
FOLDED_KEYS = tuple(f.name for f in FIELDS if f.kind == "folded")

# Columns bench.analysis.frame derives from a record (a metric may name one: it is no record
# column, so `columns()` does not add it).
DERIVED_COLUMNS = ("ok", "attention_path", "llc_bytes", "ws_over_llc", "flops", "flops_source",
                   "gflops", "peak_backend", "peak_dtype", "peak_gflops", "peak_fraction")


def keys_of(*stages: str) -> tuple[str, ...]:
    """The record keys filled by these stages, in record order."""
    return tuple(f.name for f in FIELDS if f.kind == "record" and f.stage in stages)


def columns() -> tuple[str, ...]:
    """RECORD_KEYS, then the column of each registered metric (bench.metrics) that is neither a
    declared field nor derived by the analysis frame: a plugin's own record column.
    (bench.metrics is imported at the top, as tests/test_imports.py wants internal imports.)"""
    out = list(RECORD_KEYS)
    for metric in metrics.METRICS.values():
        column = getattr(metric, "column", None)
        if (isinstance(column, str) and column not in BY_NAME
                and column not in DERIVED_COLUMNS and column not in out):
            out.append(column)
    return tuple(out)


# ---- the timing statistics of samples_s -----------------------------------------------------

def quantile(sorted_values, q: float) -> float:
    """Linear-interpolation quantile of already sorted values (numpy's default "linear"
    method, computed as x[lo] + (x[hi] - x[lo]) * frac, the one definition bench.trackers.timer uses;
    numpy's own lerp differs in the last bit for frac >= 0.5)."""
    if not sorted_values:
        raise ValueError("quantile: no values")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile: q must be in [0, 1], got {q}")
    position = q * (len(sorted_values) - 1)
    lo = math.floor(position)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (position - lo)


def sample_stats(samples, spread_warn: float) -> dict:
    """median_s, iqr_s, min_s, mean_s, std_s, spread, unstable of per-call samples: the one
    definition, which bench.trackers.timer.TimeStats and the read side's pass folding both use
    (ValueError for no samples)."""
    if not samples:
        raise ValueError("samples_s: at least one sample is needed")
    ordered = tuple(sorted(samples))
    median = quantile(ordered, 0.5)
    iqr = quantile(ordered, 0.75) - quantile(ordered, 0.25)
    spread = iqr / median if median > 0 else math.inf
    return {"median_s": median, "iqr_s": iqr, "min_s": min(samples),
            "mean_s": statistics.fmean(samples),
            "std_s": statistics.stdev(samples) if len(samples) > 1 else 0.0,
            "spread": spread, "unstable": spread > spread_warn}
