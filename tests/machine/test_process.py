"""bench.machine.process: the process settings `python -m bench` applies before NumPy and torch load,
and tfimpl.numpy's kept thread pool."""

import os
import subprocess
from pathlib import Path
import sys
import threading

import numpy as np
import pytest

from tfimpl.numpy import _threads


def _run_python(code: str, env: dict) -> str:
    clean = {k: v for k, v in os.environ.items()
             if not (k.startswith("MALLOC_") or k in ("GLIBC_TUNABLES", "TFBENCH_MALLOC",
                                                    "OPENBLAS_THREAD_TIMEOUT",
                                                    "THP_MEM_ALLOC_ENABLE"))}
    clean.update(env)
    out = subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True,
                         text=True, timeout=60, check=True)
    return out.stdout.strip()


APPLY = "import json; from bench.machine import process; print(json.dumps(process.apply()))"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_apply_sets_the_defaults_and_keeps_memory():
    import json

    info = json.loads(_run_python(APPLY, {}))
    assert info["env"] == {"THP_MEM_ALLOC_ENABLE": "1", "OPENBLAS_THREAD_TIMEOUT": "4"}
    assert info["malloc"] == "keep" and info["malloc_reason"] is None


def test_a_value_the_user_set_is_kept():
    import json

    info = json.loads(_run_python(APPLY, {"THP_MEM_ALLOC_ENABLE": "0",
                                          "OPENBLAS_THREAD_TIMEOUT": "10"}))
    assert info["env"] == {"THP_MEM_ALLOC_ENABLE": "0", "OPENBLAS_THREAD_TIMEOUT": "10"}


@pytest.mark.parametrize("env, reason", [
    ({"TFBENCH_MALLOC": "system"}, "TFBENCH_MALLOC=system"),
    ({"TFBENCH_MALLOC": "jemalloc"}, "not one of keep, system"),
    ({"MALLOC_ARENA_MAX": "2"}, "malloc settings already in the environment"),
])
def test_the_allocator_policy_can_be_refused(env, reason):
    import json

    info = json.loads(_run_python(APPLY, env))
    assert info["malloc"] == "system"
    assert reason in info["malloc_reason"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_kept_memory_is_reused_without_page_faults():
    """The point of the policy: a large block freed and asked for again costs no page faults
    (with glibc's default a block above the mmap threshold goes back to the kernel)."""
    code = """
import resource, numpy as np
from bench.machine import process as steady
steady.apply()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
a = np.ones(40_000_000 // 8); del a          # 40 MB: above glibc's largest mmap threshold
before = faults()
for _ in range(3):
    a = np.ones(40_000_000 // 8); del a
print(faults() - before)
"""
    assert int(_run_python(code, {})) < 100          # a fresh 40 MB is ~10,000 4 KiB faults
    assert int(_run_python(code, {"TFBENCH_MALLOC": "system"})) > 1000


def test_the_entry_applies_it_before_numpy_loads():
    """What OpenBLAS and torch read once at load time must be in the environment by then: the
    entry of `python -m bench` and `tfbench` (bench.cli.main) applies it before the command
    (here `validate`, which loads NumPy) imports anything heavy."""
    code = """
import os, runpy, sys
seen = {}
class Watch:
    def find_spec(self, name, path=None, target=None):
        if name in ("numpy", "torch") and name not in seen:
            seen[name] = os.environ.get("OPENBLAS_THREAD_TIMEOUT")
        return None
sys.meta_path.insert(0, Watch())
runpy.run_module("bench.__main__", run_name="not_main")   # importing the entry sets nothing
assert "numpy" not in seen and os.environ.get("OPENBLAS_THREAD_TIMEOUT") is None
from bench.cli import main
with open(os.devnull, "w") as sink:
    sys.stdout = sink
    main(["validate", SMOKE])
    sys.stdout = sys.__stdout__
print(seen.get("numpy"))
""".replace("SMOKE", repr(str(Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml")))
    assert _run_python(code, {}) == "4"


def test_the_numpy_pool_is_made_once_and_reused():
    from threadpoolctl import threadpool_limits

    x = np.random.default_rng(0).standard_normal((64, 4096)).astype(np.float32)
    with threadpool_limits(limits=2, user_api="blas"):
        if _threads.blas_threads() < 2:
            pytest.skip("BLAS here runs one thread")
        seen = set()                                     # the thread objects themselves

        def note(block):
            seen.add(threading.current_thread())
            block *= 2.0

        for _ in range(5):
            _threads.for_row_blocks(note, x, block_elements=4096)
    # ThreadPoolExecutor starts its threads lazily (the second one only when the first is busy),
    # so the first call may use one thread or two; a pool per call would make new ones each time
    assert seen and all(t.name.startswith("tfimpl-numpy-2") for t in seen)
    assert len(seen) <= 2 and all(t.is_alive() for t in seen)   # the same threads, kept
    assert _threads._pool(2) is _threads._pool(2)


def test_a_call_from_a_pool_thread_runs_inline():
    """for_row_blocks inside a tile on the pool would wait on its own pool: it runs inline."""
    from threadpoolctl import threadpool_limits

    arrays = [np.ones((8, 2048), dtype=np.float32) for _ in range(2)]
    names = []

    def inner(block):
        names.append(threading.current_thread().name)
        block += 1

    def outer(i):
        _threads.for_row_blocks(inner, arrays[i], block_elements=2048)

    with threadpool_limits(limits=2, user_api="blas"):
        if _threads.blas_threads() < 2:
            pytest.skip("BLAS here runs one thread")
        _threads._run(outer, [0, 1], workers=2)
    assert all(np.all(a == 2) for a in arrays)
    assert names and all(name.startswith("tfimpl-numpy") for name in names)
