"""Fix the number of compute threads for a measurement, and report what is in effect.

Two thread pools matter on a CPU: torch's intra-op pool (`torch.set_num_threads`, which also sets
its OpenMP and its statically linked MKL) and the pools of the shared BLAS / OpenMP libraries
NumPy and SciPy load (OpenBLAS, MKL, libgomp), which only `threadpoolctl` can reach at run time.
`fixed_threads(n)` sets both and restores both on exit. Environment variables such as
OPENBLAS_CORETYPE are recorded elsewhere (bench.machine.environment), never changed here.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

from bench.trackers import tf_runtime


def _check_threads(n) -> int:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"threads: expected an integer >= 1, got {n!r}")
    return n


@contextmanager
def fixed_threads(n: int, backend: str | None = None) -> Iterator[dict]:
    """Run the body with `n` threads in torch and in every BLAS/OpenMP pool; yields thread_info().

    backend: "torch" gives torch `n` threads and NumPy's BLAS one, "numpy" the other way round;
    "tensorflow" gives TensorFlow's intra-op pool `n` (inter-op 1; bench.trackers.tf_runtime.set_threads,
    fixed at TensorFlow's first op) and torch and BLAS one each; "onnxruntime" likewise gives
    torch and BLAS one each (the session's intra_op_num_threads is the case's, bench.impls.ort);
    None gives both `n`.
    One pool at a time matters: a process that runs NumPy and torch cases in turn has two pools, and the idle one's threads spin-wait for a while after each call
    (OpenBLAS for ~0.1 s), stealing the cores the measured pool needs on a small machine.
    The previous settings come back on exit, even when the body raises.
    """
    import torch
    from threadpoolctl import threadpool_limits

    n = _check_threads(n)
    if backend not in (None, "torch", "numpy", "tensorflow", "onnxruntime"):
        raise ValueError(f"backend: expected 'torch', 'numpy', 'tensorflow', 'onnxruntime' or "
                         f"None, got {backend!r}")
    if backend == "tensorflow":                   # its own pools get n (fixed at its first op)
        tf_runtime.set_threads(n)
    own_pool = ("tensorflow", "onnxruntime")      # threads of their own (ORT: its session's)
    torch_n = 1 if backend in ("numpy",) + own_pool else n
    limits = {"blas": 1, "openmp": n} if backend == "torch" else 1 if backend in own_pool else n
    previous_torch = torch.get_num_threads()
    with threadpool_limits(limits=limits):
        torch.set_num_threads(torch_n)
        try:
            yield thread_info()
        finally:
            torch.set_num_threads(previous_torch)


def thread_info() -> dict:
    """Threads in effect now: torch's pools and one entry per library threadpoolctl sees.

    {"torch_num_threads": int, "torch_num_interop_threads": int, "cpu_count": int,
     "libraries": [{"user_api", "internal_api", "version", "num_threads", "filename",
                    "threading_layer", "architecture"}, ...]}
    """
    import torch
    from threadpoolctl import threadpool_info

    libraries = [
        {
            "user_api": lib.get("user_api"),
            "internal_api": lib.get("internal_api"),
            "version": lib.get("version"),
            "num_threads": lib.get("num_threads"),
            "filename": os.path.basename(lib.get("filepath") or "") or None,
            "threading_layer": lib.get("threading_layer"),
            "architecture": lib.get("architecture"),
        }
        for lib in threadpool_info()
    ]
    return {
        "torch_num_threads": torch.get_num_threads(),
        "torch_num_interop_threads": torch.get_num_interop_threads(),
        "cpu_count": os.cpu_count(),
        "libraries": libraries,
    }
