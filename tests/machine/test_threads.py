"""bench.machine.threads: thread counts are set in torch and in every BLAS/OpenMP pool, then restored."""

import pytest
import torch
from threadpoolctl import threadpool_info

from bench.machine.threads import fixed_threads, thread_info


def _pool_threads():
    return [lib["num_threads"] for lib in threadpool_info()]


def test_fixed_threads_sets_and_restores():
    before_torch = torch.get_num_threads()
    before_pools = _pool_threads()
    with fixed_threads(1) as info:
        assert torch.get_num_threads() == 1
        assert all(n == 1 for n in _pool_threads())
        assert info["torch_num_threads"] == 1
    assert torch.get_num_threads() == before_torch
    assert _pool_threads() == before_pools


def test_restored_when_body_raises():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError):
        with fixed_threads(1):
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("bad", [0, -2, 1.5, "2", True, None])
def test_bad_thread_count(bad):
    with pytest.raises(ValueError, match="threads"):
        with fixed_threads(bad):
            pass


def test_thread_info_lists_numpy_blas():
    import numpy  # noqa: F401  (loads its BLAS)
    info = thread_info()
    assert info["torch_num_threads"] == torch.get_num_threads()
    assert info["cpu_count"] >= 1
    blas = [lib for lib in info["libraries"] if lib["user_api"] == "blas"]
    assert blas, "NumPy's BLAS should be visible to threadpoolctl"
    for lib in info["libraries"]:
        assert set(lib) >= {"internal_api", "version", "num_threads", "filename"}
        assert "/" not in (lib["filename"] or "")


def test_backend_gives_the_other_pool_one_thread():
    import torch
    from threadpoolctl import threadpool_info

    from bench.machine.threads import fixed_threads

    def blas_threads():
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    with fixed_threads(2, "torch"):
        assert torch.get_num_threads() == 2
        assert all(n == 1 for n in blas_threads())
    with fixed_threads(2, "numpy"):
        assert torch.get_num_threads() == 1
        assert all(n == 2 for n in blas_threads())
    with pytest.raises(ValueError, match="backend"):
        with fixed_threads(2, "jax"):
            pass
