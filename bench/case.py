"""The unit of work: one `Case` (what to measure) and the `Measure` settings (how).

Both are frozen and plain, so a case can be hashed, pickled to a worker process or a Ray task,
written to a record, and compared across runs. Nothing here imports torch or numpy.

Tests: tests/run/test_ray_executor.py, tests/run/test_runner.py, tests/test_config.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

# What each field may hold is declared elsewhere, once: implementations in bench/impls/, blocks
# in bench/blocks/__init__.py, modes in bench/modes/__init__.py, precisions in bench/precision.py, activations in
# tfimpl/config.py; bench.capabilities checks a case against them.
DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class Case:
    """One measured point of a sweep. Field names are the record's column names."""

    impl: str = "torch"
    block: str = "attention"
    batch: int = 1
    seq_len: int = 128
    d_model: int = 768
    n_heads: int = 12
    d_ff: int = 3072
    layers: int = 1
    precision: str = "fp32"
    device: str = "cpu"
    threads: int = 2
    mode: str = "forward"
    activation: str = "gelu"
    norm_first: bool = False
    causal: bool = False
    vocab_size: int = 30522
    seed: int = 0
    new_tokens: int = 0             # block generate: tokens to generate (bench/blocks/gpt.py)
    max_position: int = 0           # GPT blocks' position table; 0 = as long as the case needs
    checkpoint: bool = False        # gradient checkpointing per layer (bench/impls/options.py)
    compile: bool = False           # torch.compile the forward (bench/impls/options.py)
    window: int = 0                 # sliding-window width: keys per query (bench/blocks/sparse.py)
    global_tokens: int = 0          # global tokens of block global_attention (bench/blocks/sparse.py)
    inputs: str = "random"          # q, k, v of the sparse blocks: random | pretrained (MiniLM's)

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def case_id(self) -> str:
        """Stable short id of the case's parameters (same case -> same id, across runs).

        Fields added after the first release (not in ID_FIELDS) enter the id only when they
        differ from their default, so adding a field keeps every existing case's id.
        """
        values = {k: v for k, v in self.to_dict().items()
                  if k in ID_FIELDS or v != _DEFAULTS[k]}
        blob = json.dumps(values, sort_keys=True).encode()
        return hashlib.sha1(blob).hexdigest()[:12]

    def label(self) -> str:
        return (f"{self.impl}/{self.block} B={self.batch} T={self.seq_len} d={self.d_model} "
                f"h={self.n_heads} {self.precision} {self.mode}")


CASE_FIELDS = tuple(f.name for f in dataclasses.fields(Case))
# The fields every case id has hashed since the first release (see Case.case_id).
ID_FIELDS = ("impl", "block", "batch", "seq_len", "d_model", "n_heads", "d_ff", "layers",
             "precision", "device", "threads", "mode", "activation", "norm_first", "causal",
             "vocab_size", "seed")
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Case)}


@dataclass(frozen=True)
class Measure:
    """How each case is measured (the config's `measure:` section)."""

    warmup: int = 2                 # untimed calls before timing (at least 1: first-call costs)
    min_repeats: int = 5            # at least this many timed samples ...
    min_time_s: float = 0.2         # ... and at least this much total timed time
    max_repeats: int = 1000         # never more samples than this
    max_time_s: float = 10.0        # stop adding samples after this much timed time
    spread_warn: float = 0.10       # IQR/median above this flags the case `unstable`
    count_flops: bool = True        # run FlopCounterMode once (torch impls)
    measure_memory: bool = True     # one extra forward under the memory tracker
    accuracy: bool = True           # compare against a float64 run of the same weights/inputs
    budget_s: float = 60.0          # a case estimated (by a probe) to take longer is skipped
    timeout_s: float = 600.0        # process isolation: a case running longer is killed
    isolation: str = "inline"       # inline | process (a fresh process per case)
    max_memory: str | None = None   # e.g. "8GiB": guard limit below what is available
    profile: bool = False           # per-step breakdown on each record (bench.profile.record)
    passes: int = 1                 # timing passes over the whole sweep (bench.run.passes)
    pass_min_repeats: int = 0       # passes 2..P: at least this many samples (0: min_repeats)
    pass_min_time_s: float = 0.0    # passes 2..P: at least this much timed time (0: min_time_s)
    pass_below_s: float = 0.0       # passes 2..P: only cases whose median is below this (0: all)
    calibrate: bool = True          # time a fixed probe beside each case (bench.trackers.calibration)
    run_budget_s: float = 0.0       # the run's wall-clock budget: later passes only while they fit (0: none)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
