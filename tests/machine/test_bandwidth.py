"""bench.machine.bandwidth: the kernels move the bytes they claim; GB/s arithmetic under a fake clock."""

import numpy as np
import pytest

from bench.machine import bandwidth
from support import StepClock


def test_bytes_moved_is_streams_count():
    assert bandwidth.bytes_moved("copy", 1000) == 16000        # read a, write c
    assert bandwidth.bytes_moved("triad", 1000) == 24000       # read b and c, write a
    with pytest.raises(ValueError, match="kernel"):
        bandwidth.bytes_moved("scale", 10)


@pytest.mark.parametrize("threads", [1, 2])
def test_numpy_copy_and_triad_touch_every_element(threads):
    n = 3 * bandwidth.CHUNK_ELEMENTS + 17                      # a ragged last chunk
    kernels = bandwidth.numpy_kernels(n, threads)
    a, b, c = kernels["arrays"]
    c[:] = -1.0
    kernels["copy"]()
    assert np.array_equal(c, a)                                # every claimed byte was written
    b0, c0 = b.copy(), c.copy()
    kernels["triad"]()
    assert np.array_equal(a, b0 + bandwidth.TRIAD_SCALAR * c0)
    kernels["close"]()


def test_torch_kernels_touch_every_element():
    torch = pytest.importorskip("torch")
    kernels = bandwidth.torch_kernels(1001)
    a, b, c = kernels["arrays"]
    kernels["copy"]()
    assert torch.equal(c, a)
    kernels["triad"]()                                         # fused b + q·c (may use an FMA)
    assert torch.allclose(a, b + bandwidth.TRIAD_SCALAR * c, rtol=1e-15, atol=1e-12)


def test_gbps_arithmetic():
    assert bandwidth.rate_gbps("copy", 4096, 0.01) == pytest.approx(2 * 8 * 4096 / 0.01 / 1e9)
    assert bandwidth.rate_gbps("triad", 10 ** 9, 1.0) == pytest.approx(24.0)
    with pytest.raises(ValueError, match="seconds"):
        bandwidth.rate_gbps("copy", 10, 0.0)


def test_gbps_from_the_best_sample_under_a_fake_clock():
    # every clock read 0.5 s later: each timed call lasts 0.5 s (the timer's warm-up ends at once)
    result = bandwidth.measure_bandwidth(1, array_bytes=8 * 4096, time_budget_s=0.01,
                                         clock=StepClock(0.5))
    for lib in ("numpy", "torch"):
        assert result[lib]["copy"] == pytest.approx(bandwidth.rate_gbps("copy", 4096, 0.5))
        assert result[lib]["triad"] == pytest.approx(bandwidth.rate_gbps("triad", 4096, 0.5))
    assert result["details"]["numpy.copy"]["bytes"] == 2 * 8 * 4096


def test_real_bandwidth_is_plausible():
    result = bandwidth.measure_bandwidth(1, array_bytes=1 << 20, time_budget_s=0.05)
    for lib in ("numpy", "torch"):
        for kernel in bandwidth.KERNELS:
            assert 1e-3 < result[lib][kernel] < 10_000     # GB/s: not zero, not 1000x off (busy CPUs: low)


def test_default_arrays_are_well_past_the_cache():
    assert bandwidth.default_array_bytes(32 << 20) == 128 << 20
    assert bandwidth.default_array_bytes(64 << 20) == 256 << 20
    assert bandwidth.default_array_bytes(None) == bandwidth.MIN_ARRAY_BYTES


def test_a_host_sized_cache_does_not_make_gigabyte_arrays():
    """A VM that reports its host's 260 MiB L3 gets capped arrays (three 1 GiB ones took 37 s)."""
    assert bandwidth.default_array_bytes(260 << 20) == bandwidth.MAX_ARRAY_BYTES == 256 << 20


def test_ridge_points():
    ridge = bandwidth.ridge_points({"numpy": {"fp32": 100.0, "bf16": None}, "torch": {}},
                                   {"numpy": {"triad": 20.0}})
    assert ridge == {"numpy": {"fp32": 5.0, "bf16": None}, "torch": {}}


def test_bad_arguments():
    with pytest.raises(ValueError, match="threads"):
        bandwidth.measure_bandwidth(0)
    with pytest.raises(ValueError, match="array_bytes"):
        bandwidth.measure_bandwidth(1, array_bytes=4)
