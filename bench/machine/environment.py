"""What a run's numbers depend on, collected once into `meta.json`.

Versions, CPU model and caches, memory, BLAS libraries and their threads, torch's build, the
environment variables that steer BLAS/OpenMP, the GPU, the git commit. Each piece is collected
on its own: one that cannot be read becomes `null` and its error goes to `meta["errors"]`, so a
missing `/sys` file or an absent `git` never stops a run.
"""

from __future__ import annotations

import os
import platform
import re
import socket
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Callable

from bench.machine import process as steady
from bench.machine.threads import thread_info

PACKAGES = ("numpy", "torch", "transformers", "pandas", "scipy", "threadpoolctl",
            "memory-profiler", "psutil", "ray", "tfbench")
ENV_PREFIXES = ("OPENBLAS_", "OMP_", "MKL_", "KMP_", "GOMP_", "GOTO_", "DNNL_", "ONEDNN_",
                "ATEN_", "TORCH_")
ENV_NAMES = ("CUDA_VISIBLE_DEVICES", "HF_HUB_OFFLINE", "THP_MEM_ALLOC_ENABLE", "TFBENCH_MALLOC",
             "TFBENCH_SEED_CACHE_MB", "GLIBC_TUNABLES")
CACHE_ROOT = Path("/sys/devices/system/cpu/cpu0/cache")
# ISA extensions that decide matmul speed per dtype (bf16/fp16 natively, or by conversion).
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "avx512_vnni", "avx_vnni",
             "amx_bf16", "amx_tile", "amx_fp16", "amx_int8")
REPO_ROOT = Path(__file__).resolve().parent.parent


def package_versions(names=PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution (read from metadata, nothing is imported)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def platform_info() -> dict:
    return {"system": platform.system(), "release": platform.release(),
            "machine": platform.machine(), "platform": platform.platform(),
            "python_implementation": platform.python_implementation(),
            "python_executable": sys.executable}


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """The 'model name' line of /proc/cpuinfo, else platform.processor()."""
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or None


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo"), wanted=CPU_FLAGS) -> list[str] | None:
    """The flags of `wanted` that the first CPU in /proc/cpuinfo lists, in `wanted`'s order.

    None where there is no /proc/cpuinfo (macOS, Windows) or it has no flags line; an ARM
    "Features" line gives [] (none of these x86 extensions).
    """
    if not cpuinfo.exists():
        return None
    for line in cpuinfo.read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            present = set(value.split())
            return [flag for flag in wanted if flag in present]
    return None


def cpu_info() -> dict:
    import psutil

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {"model": cpu_model(), "logical_cores": os.cpu_count(),
            "physical_cores": psutil.cpu_count(logical=False), "usable_cores": usable}


def parse_size(text: str) -> int:
    """'32K' -> 32768, '36608K' -> 37486592, '2M' -> 2097152, '512' -> 512 (sysfs sizes)."""
    match = re.fullmatch(r"\s*(\d+)\s*([KMG]?)i?B?\s*", text, flags=re.IGNORECASE)
    if match is None:
        raise ValueError(f"cache size: cannot parse {text!r}")
    number, unit = match.groups()
    return int(number) * {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}[unit.upper()]


def cache_bytes(root: Path = CACHE_ROOT) -> dict[str, int]:
    """Per-core cache sizes of cpu0 in bytes, keyed L1d, L1i, L2, L3 (as sysfs lists them)."""
    if not root.is_dir():
        raise FileNotFoundError(f"no cache description at {root}")
    sizes: dict[str, int] = {}
    for index in sorted(root.glob("index*")):
        level = (index / "level").read_text().strip()
        kind = (index / "type").read_text().strip()
        suffix = {"Data": "d", "Instruction": "i"}.get(kind, "")
        sizes[f"L{level}{suffix}"] = parse_size((index / "size").read_text())
    return sizes


def memory_info() -> dict:
    import psutil

    vm = psutil.virtual_memory()
    return {"total_bytes": int(vm.total), "available_bytes": int(vm.available)}


def numpy_blas() -> dict:
    """NumPy's build-time BLAS/LAPACK (name, version, configuration)."""
    import numpy as np

    deps = np.show_config(mode="dicts").get("Build Dependencies", {})
    return {kind: {k: deps.get(kind, {}).get(k) for k in ("name", "version",
                                                          "openblas configuration")}
            for kind in ("blas", "lapack")}


def torch_config() -> dict:
    import torch

    return {
        "version": torch.__version__,
        "git_version": getattr(torch.version, "git_version", None),
        "cuda": torch.version.cuda,
        "debug": bool(torch.version.debug),
        "mkl": torch.backends.mkl.is_available(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "openmp": torch.backends.openmp.is_available(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "num_threads": torch.get_num_threads(),
        "num_interop_threads": torch.get_num_interop_threads(),
    }


def env_vars(environ=None) -> dict[str, str]:
    """The variables that steer BLAS / OpenMP / torch threading, recorded as they are."""
    environ = os.environ if environ is None else environ
    return {k: v for k, v in sorted(environ.items())
            if k.startswith(ENV_PREFIXES) or k in ENV_NAMES}


def gpu_info() -> dict | None:
    """None without CUDA; else device names, count, capability, memory, CUDA/cuDNN/driver."""
    import torch

    if not torch.cuda.is_available():
        return None
    devices = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        devices.append({"name": props.name, "total_memory_bytes": int(props.total_memory),
                        "capability": f"{props.major}.{props.minor}",
                        "multiprocessors": props.multi_processor_count})
    return {"count": len(devices), "name": devices[0]["name"], "devices": devices,
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
            "driver": _nvidia_driver()}


def _nvidia_driver() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


def git_info(repo: Path = REPO_ROOT) -> dict | None:
    """{"commit", "branch", "dirty"} of the checkout holding `repo`; None outside git."""
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                              timeout=10)

    head = git("rev-parse", "HEAD")
    if head.returncode != 0:
        return None
    branch = git("rev-parse", "--abbrev-ref", "HEAD").stdout.strip() or None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": head.stdout.strip(), "branch": branch,
            "dirty": bool(status.stdout.strip()) if status.returncode == 0 else None}


def _collect(sections: dict[str, Callable[[], object]]) -> tuple[dict, dict]:
    """Run each section's collector; a failing one gives None and an error message."""
    values, errors = {}, {}
    for name, collect in sections.items():
        try:
            values[name] = collect()
        except Exception as exc:  # noqa: BLE001 - any failure means "unknown", never a crash
            values[name] = None
            errors[name] = f"{type(exc).__name__}: {exc}"
    return values, errors


def collect_meta(repo: Path = REPO_ROOT) -> dict:
    """Everything the numbers depend on, as a JSON-ready dict (None where unknown)."""

    sections = {
        "hostname": socket.gethostname,
        "versions": package_versions,
        "platform": platform_info,
        "cpu": cpu_info,
        "cpu_flags": cpu_flags,
        "cache_bytes": cache_bytes,
        "memory": memory_info,
        "threads": thread_info,
        "numpy_blas": numpy_blas,
        "torch_config": torch_config,
        "env": env_vars,
        "process": steady.describe,
        "gpu": gpu_info,
        "git": lambda: git_info(repo),
    }
    meta, errors = _collect(sections)
    meta["collected_at"] = time.time()
    meta["errors"] = errors
    return meta
