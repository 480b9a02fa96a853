"""A test plugin: the NumPy FFN, REPEATS calls per call, plus a fraction more when told.

    TFBENCH_TEST_SLOWDOWN=0.25 python -m bench run ...   # every case of this impl 25% slower

fn() runs the built-in numpy FFN REPEATS + round(SLOW * REPEATS) times (REPEATS = 8: the
slowdown in steps of 12.5%), so two runs of the same config, one with the knob set, differ in
this implementation's cases alone, by a known factor: the end-to-end check of `bench compare`
(tests/analysis/test_compare_drift.py). Named in a config as "tests.data.slow_impl:IMPL".
"""

from __future__ import annotations

import dataclasses
import os

from bench import impls
from bench.impls import Impl

SLOW = float(os.environ.get("TFBENCH_TEST_SLOWDOWN", "0"))
REPEATS = 8


def calls(slow: float = SLOW) -> int:
    return REPEATS + round(slow * REPEATS)


def build(case):
    inner = impls.get("numpy").build(dataclasses.replace(case, impl="numpy"))
    n, once = calls(), inner.fn

    def fn():
        for _ in range(n):
            once()

    return dataclasses.replace(inner, fn=fn, flops_fn=None)


IMPL = Impl(name="slow-numpy", description="test plugin: the numpy ffn, repeated (a slowdown knob)",
            backend="numpy", blocks=("ffn",), precisions=("fp32",), modes=("forward",),
            build=build)
