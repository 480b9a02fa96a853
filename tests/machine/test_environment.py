"""bench.machine.environment: meta is complete, JSON-ready, and survives missing pieces."""

import json
import subprocess

import numpy as np
import pytest

import bench.machine.environment as env


def test_collect_meta_is_complete_and_json():
    meta = env.collect_meta()
    for key in ("hostname", "versions", "platform", "cpu", "cpu_flags", "cache_bytes", "memory",
                "threads",
                "numpy_blas", "torch_config", "env", "gpu", "git", "collected_at", "errors"):
        assert key in meta
    assert json.loads(json.dumps(meta)) == meta
    assert meta["versions"]["numpy"] == np.__version__
    assert meta["cpu"]["logical_cores"] >= 1
    assert meta["memory"]["total_bytes"] >= meta["memory"]["available_bytes"] > 0
    assert isinstance(meta["torch_config"]["mkldnn"], bool)


def test_this_machine_cache_sizes():
    if not env.CACHE_ROOT.is_dir():
        pytest.skip("no /sys cache description on this system")
    sizes = env.cache_bytes()
    assert sizes["L1d"] < sizes["L2"] < sizes["L3"]
    assert sizes["L1d"] % 1024 == 0


def test_this_checkout_git():
    info = env.git_info()
    if info is None:
        pytest.skip("not running from a git checkout")
    assert len(info["commit"]) == 40 and isinstance(info["dirty"], bool)


@pytest.mark.parametrize("text, expected", [("32K", 32768), ("36608K\n", 36608 * 1024),
                                            ("2M", 2 * 2**20), ("512", 512), ("1G", 2**30)])
def test_parse_size(text, expected):
    assert env.parse_size(text) == expected


def test_parse_size_rejects_garbage():
    with pytest.raises(ValueError, match="cache size"):
        env.parse_size("lots")


def _fake_cache(root, entries):
    for i, (level, kind, size) in enumerate(entries):
        d = root / f"index{i}"
        d.mkdir(parents=True)
        (d / "level").write_text(f"{level}\n")
        (d / "type").write_text(f"{kind}\n")
        (d / "size").write_text(f"{size}\n")


def test_cache_bytes_from_fake_sysfs(tmp_path):
    _fake_cache(tmp_path, [(1, "Data", "48K"), (1, "Instruction", "32K"), (2, "Unified", "2048K"),
                           (3, "Unified", "105M")])
    assert env.cache_bytes(tmp_path) == {"L1d": 48 * 1024, "L1i": 32 * 1024,
                                         "L2": 2 * 2**20, "L3": 105 * 2**20}


def test_missing_piece_becomes_null_with_error(monkeypatch, tmp_path):
    def unreadable(*args):
        raise OSError("no sysfs")
    monkeypatch.setattr(env, "cache_bytes", unreadable)
    meta = env.collect_meta(repo=tmp_path)
    assert meta["cache_bytes"] is None
    assert "OSError" in meta["errors"]["cache_bytes"]
    assert meta["git"] is None                     # tmp_path is no git checkout
    assert meta["versions"] is not None            # the rest is still there


def test_cache_bytes_absent_root_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        env.cache_bytes(tmp_path / "absent")


def test_env_vars_filter():
    environ = {"OPENBLAS_CORETYPE": "Haswell", "OMP_NUM_THREADS": "2", "HOME": "/root",
               "MKL_DEBUG": "1", "PATH": "/bin", "CUDA_VISIBLE_DEVICES": "0"}
    assert env.env_vars(environ) == {"CUDA_VISIBLE_DEVICES": "0", "MKL_DEBUG": "1",
                                     "OMP_NUM_THREADS": "2", "OPENBLAS_CORETYPE": "Haswell"}


def test_git_dirty_flag(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t",
                        *args], check=True, capture_output=True)
    git("init", "-q")
    (tmp_path / "a.txt").write_text("1")
    git("add", "a.txt")
    git("commit", "-q", "-m", "one")
    clean = env.git_info(tmp_path)
    assert clean["dirty"] is False and len(clean["commit"]) == 40
    (tmp_path / "a.txt").write_text("2")
    assert env.git_info(tmp_path)["dirty"] is True


def test_package_versions_unknown_is_none():
    versions = env.package_versions(("numpy", "surely-not-installed-pkg-xyz"))
    assert versions["surely-not-installed-pkg-xyz"] is None
    assert versions["python"].count(".") == 2


CPUINFO = """processor\t: 0
model name\t: Intel(R) Xeon(R) Processor @ 2.50GHz
flags\t\t: fpu sse2 avx2 fma avx512f avx512dq avx512_vnni avx512_bf16x_not_a_flag
processor\t: 1
flags\t\t: fpu amx_bf16 amx_tile
"""


def test_cpu_flags_from_fake_cpuinfo(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO)
    # the first CPU's line, in CPU_FLAGS order; a flag's prefix is not the flag
    assert env.cpu_flags(path) == ["avx2", "fma", "avx512f", "avx512_vnni"]
    path.write_text("processor\t: 0\nFeatures\t: fp asimd bf16\n")     # ARM
    assert env.cpu_flags(path) == []
    path.write_text("processor\t: 0\n")
    assert env.cpu_flags(path) is None
    assert env.cpu_flags(tmp_path / "absent") is None                  # macOS, Windows


def test_this_machine_cpu_flags():
    flags = env.cpu_flags()
    if flags is None:
        pytest.skip("no /proc/cpuinfo flags here")
    assert set(flags) <= set(env.CPU_FLAGS)
    assert list(flags) == [f for f in env.CPU_FLAGS if f in flags]
