"""Process settings that make timings repeat, applied by `python -m bench` before NumPy or
torch load (and in every worker process an executor starts).

Each one removed a run-to-run or minute-to-minute swing measured on a 2-core VM (AMD EPYC, KVM),
with the case's code unchanged; each is recorded in meta.json and can be turned off.

    THP_MEM_ALLOC_ENABLE=1     torch's CPU allocator backs large buffers with transparent huge
                               pages. Without it a fresh (B, H, T, T) score matrix is faulted in
                               4 KiB pages: torch attention at T=1344 measured 61 ms or 41 ms
                               depending on whether the kernel happened to give it huge pages.
    OPENBLAS_THREAD_TIMEOUT=4  OpenBLAS's idle worker threads sleep at once instead of spinning
                               for ~2^28 cycles after each matrix product. A NumPy FFN runs its
                               GELU on two Python threads right after a GEMM; the spinning BLAS
                               worker took a core from them: FFN T=1024 62 ms with spread
                               (p90/p10 of quarter-second medians) 1.08-1.12, 52 ms and 1.02-1.03
                               without the spin. Read once, when OpenBLAS loads.
    allocator keeps memory     glibc malloc serves every block from its heap (M_MMAP_MAX=0) and
                               never trims it (M_TRIM_THRESHOLD): a block freed by one call is
                               reused by the next instead of being returned to the kernel and
                               faulted in (and zeroed) again. NumPy attention at T=1344 (an 87 MB
                               score matrix, above malloc's 32 MB mmap ceiling) made ~235 page
                               faults per call and varied 1.12-1.31 (p90/p10); with the heap kept,
                               0 faults and 1.02-1.03. The steady state of a long-running process
                               (what torch's CUDA caching allocator gives on a GPU); the cost is
                               that the process's RSS never shrinks during a run.

Opt out: set THP_MEM_ALLOC_ENABLE=0 or OPENBLAS_THREAD_TIMEOUT=<n> yourself (a value already in
the environment is kept), TFBENCH_MALLOC=system for glibc's default policy. `describe()` is what
meta.json records under "process".
"""

from __future__ import annotations

import ctypes
import os
import sys

ENV_DEFAULTS = {"THP_MEM_ALLOC_ENABLE": "1", "OPENBLAS_THREAD_TIMEOUT": "4"}
MALLOC_ENV = "TFBENCH_MALLOC"          # "keep" (default) or "system"
MALLOC_CHOICES = ("keep", "system")
# mallopt parameter numbers from glibc's <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_TRIM_NEVER = 2 ** 31 - 1              # the largest value mallopt takes (an int)

_state: dict = {"malloc": None, "malloc_reason": None}


def _set_malloc_policy() -> tuple[str, str | None]:
    """('keep', None) when glibc took the settings, else ('system', why not)."""
    choice = os.environ.get(MALLOC_ENV, "keep").strip().lower() or "keep"
    if choice not in MALLOC_CHOICES:
        return "system", f"{MALLOC_ENV}={choice!r} is not one of {', '.join(MALLOC_CHOICES)}"
    if choice == "system":
        return "system", f"{MALLOC_ENV}=system"
    if any(name.startswith("MALLOC_") or name == "GLIBC_TUNABLES" for name in os.environ):
        return "system", "malloc settings already in the environment"
    if not sys.platform.startswith("linux"):
        return "system", f"not glibc ({sys.platform})"
    try:
        mallopt = ctypes.CDLL(None).mallopt        # the C library this interpreter runs on
    except (OSError, AttributeError):
        return "system", "no mallopt in this C library"
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    if not (mallopt(_M_MMAP_MAX, 0) and mallopt(_M_TRIM_THRESHOLD, _TRIM_NEVER)):
        return "system", "mallopt refused"
    return "keep", None


def apply() -> dict:
    """Set the defaults (keeping any the user set) and the allocator policy; idempotent."""
    for name, value in ENV_DEFAULTS.items():
        os.environ.setdefault(name, value)
    if _state["malloc"] is None:
        _state["malloc"], _state["malloc_reason"] = _set_malloc_policy()
    return describe()


def describe() -> dict:
    """What is in effect in this process (meta.json "process")."""
    return {"env": {name: os.environ.get(name) for name in ENV_DEFAULTS},
            "malloc": _state["malloc"] or "system",
            "malloc_reason": _state["malloc_reason"] if _state["malloc"] else "not applied"}
