"""bench.trackers.memory: known allocations come back exactly (or within a header's worth of bytes)."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from bench.trackers.memory import (peak_bytes_of, peak_numpy, peak_torch_cpu, rss_peak, running_peak)

SMALL = 4096   # Python/NumPy object headers around a buffer


def test_running_peak_by_hand():
    assert running_peak([4, 2, -4, 1, -1]) == 6
    assert running_peak([]) == 0
    assert running_peak([-5, 3]) == 0           # freeing what existed before is not a peak


def test_numpy_one_array():
    peak = peak_numpy(lambda: np.ones(10**6))   # float64
    assert 8_000_000 <= peak <= 8_000_000 + SMALL


def test_numpy_frees_are_counted():
    def fn():
        a = np.ones(10**6)          # 8 MB
        del a
        b = np.ones(5 * 10**5)      # 4 MB, after the free: peak stays 8 MB
        c = np.ones(10**5)          # 0.8 MB on top of b
        return b, c
    peak = peak_numpy(fn)
    assert 8_000_000 <= peak <= 8_000_000 + SMALL


def test_numpy_nothing_allocated():
    keep = np.ones(10**6)
    assert peak_numpy(lambda: keep.sum()) <= SMALL


def test_torch_cpu_exact():
    assert peak_torch_cpu(lambda: torch.ones(10**6)) == 4_000_000          # float32


def test_torch_cpu_frees_are_counted():
    def fn():
        a = torch.ones(1000, 1000)      # 4 MB
        b = torch.ones(500, 1000)       # 2 MB -> live 6 MB
        del a
        c = torch.ones(250, 1000)       # 1 MB -> live 3 MB
        return b, c
    assert peak_torch_cpu(fn) == 6_000_000


def test_torch_cpu_nothing_allocated():
    x = torch.ones(1000)
    assert peak_torch_cpu(lambda: x.mul_(x)) == 0
    # a Python scalar becomes a 0-d double tensor, then a float one: 8 + 4 bytes, honestly seen
    assert peak_torch_cpu(lambda: x.add_(1.0)) <= 16


def test_torch_cpu_matmul_output():
    a = torch.ones(256, 512, dtype=torch.float64)
    b = torch.ones(512, 128, dtype=torch.float64)
    assert peak_torch_cpu(lambda: a @ b) == 256 * 128 * 8


def test_tracemalloc_does_not_see_torch():
    """Why the torch path needs the profiler."""
    assert peak_numpy(lambda: torch.ones(10**6)) < 4_000_000


def test_rss_peak_sees_a_large_touched_buffer():
    # In a fresh interpreter: in a long test session the allocator may hand back memory that
    # earlier tests made resident, which RSS (by definition) does not see again.
    code = textwrap.dedent("""
        import time
        import numpy as np
        from bench.trackers.memory import rss_peak

        def fn():
            a = np.ones(64 * 2**20 // 8)    # 64 MiB, written, so resident
            time.sleep(0.2)                 # held for many sampling intervals
            return float(a[::4096].sum())

        print(rss_peak(fn))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    peak = int(done.stdout.split()[-1])
    assert 48 * 2**20 <= peak <= 96 * 2**20


def test_rss_peak_runs_fn_once():
    calls = []
    rss_peak(lambda: calls.append(1))
    assert calls == [1]


def test_measure_peak_dispatch():
    assert peak_bytes_of(lambda: torch.ones(10), "torch", "cpu") == (40, "torch-profiler")
    nbytes, method = peak_bytes_of(lambda: np.ones(10**5), "numpy", "cpu")
    assert method == "tracemalloc" and 800_000 <= nbytes <= 800_000 + SMALL


@pytest.mark.parametrize("backend, device, key", [("jax", "cpu", "backend"),
                                                  ("torch", "tpu", "device"),
                                                  ("numpy", "cuda", "device")])
def test_measure_peak_bad_input(backend, device, key):
    with pytest.raises(ValueError, match=key):
        peak_bytes_of(lambda: None, backend, device)


@pytest.mark.gpu
def test_cuda_exact():
    from bench.trackers.memory import peak_cuda
    keep = torch.ones(10**6, device="cuda")   # already allocated: not counted
    assert peak_cuda(lambda: torch.ones(10**6, device="cuda")) == 4_000_000
    del keep
