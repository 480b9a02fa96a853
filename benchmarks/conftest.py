"""pytest-benchmark suite for tfimpl's blocks (not part of CI; run it by hand):

    pytest benchmarks/ --benchmark-only                     # B=8, T=512, d=768, h=12, d_ff=3072, fp32
    TFBENCH_SEQ_LEN=128 TFBENCH_ROUNDS=3 pytest benchmarks/ --benchmark-only   # a quicker look

Threads are fixed for the whole session (torch.set_num_threads and threadpoolctl for NumPy's
BLAS), so the backends compete on equal terms. At the end, a table gives each of our
implementations' time as a ratio to the best of torch.nn's fast path on and off.
"""

from __future__ import annotations

import os

import pytest

from tfimpl.config import ModelConfig


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an int, got {value!r}") from None


SIZES = {"batch": _env_int("TFBENCH_BATCH", 8), "seq_len": _env_int("TFBENCH_SEQ_LEN", 512),
         "d_model": _env_int("TFBENCH_D_MODEL", 768), "n_heads": _env_int("TFBENCH_HEADS", 12),
         "d_ff": _env_int("TFBENCH_D_FF", 3072), "threads": _env_int("TFBENCH_THREADS", 2),
         "rounds": _env_int("TFBENCH_ROUNDS", 7)}


def model_config(activation: str) -> ModelConfig:
    return ModelConfig(d_model=SIZES["d_model"], n_heads=SIZES["n_heads"], d_ff=SIZES["d_ff"],
                       n_layers=1, activation=activation, layer_norm_eps=1e-5)


@pytest.fixture(scope="session")
def sizes() -> dict:
    """The benchmark's sizes (TFBENCH_* environment variables override the defaults)."""
    return dict(SIZES)


@pytest.fixture(scope="session")
def config_for():
    """config_for(activation) -> the ModelConfig of one layer at the benchmark's sizes."""
    return model_config


@pytest.fixture(scope="session", autouse=True)
def fixed_threads():
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(SIZES["threads"])
    with threadpool_limits(limits=SIZES["threads"]):
        yield SIZES["threads"]
    torch.set_num_threads(before)


@pytest.fixture
def run(benchmark):
    """run(fn): time fn with a fixed number of rounds (each call here takes ~0.1-1 s)."""
    def _run(fn):
        return benchmark.pedantic(fn, rounds=SIZES["rounds"], warmup_rounds=1, iterations=1)
    return _run


REFERENCE_PREFIX = "torch-nn"


def pytest_terminal_summary(terminalreporter, config):
    session = getattr(config, "_benchmarksession", None)
    benches = [b for b in getattr(session, "benchmarks", []) if b]
    if not benches:
        return
    groups: dict[str, dict[str, object]] = {}
    for bench in benches:
        impl = (bench.params or {}).get("impl", bench.name)
        groups.setdefault(bench.group or "", {})[impl] = bench
    write = terminalreporter.write_line
    write("")
    write(f"time / best of torch.nn (fast path on, off)   sizes {SIZES}")
    for group, impls in sorted(groups.items()):
        refs = [b for name, b in impls.items() if name.startswith(REFERENCE_PREFIX)]
        if not refs:
            continue
        best_min = min(b["min"] for b in refs)
        best_median = min(b["median"] for b in refs)
        for name, bench in sorted(impls.items()):
            write(f"  {group:<26} {name:<22} median {bench['median'] * 1e3:8.1f} ms   "
                  f"ratio(median) {bench['median'] / best_median:5.2f}   "
                  f"ratio(min) {bench['min'] / best_min:5.2f}")
