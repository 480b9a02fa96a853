"""The `keras`, `keras-function` and `keras-xla` implementations inside the harness.

One small fresh interpreter runs every Keras case (TensorFlow fixes its thread pools at its first
op, so the cases must not share a process with the parity tests' TensorFlow). Checked: status
ok, TensorFlow's own FLOP count equal to tfimpl.costs, compile time apart from the samples,
the allocator peak of a case whose tensors it sees, accuracy against the fp64 run. And without
the extra: a config naming keras is a one-line error saying how to install it (exit 2).
"""

import importlib.util
import json
import subprocess
import sys
import textwrap

import pytest

HAS_TF = importlib.util.find_spec("tensorflow") is not None and importlib.util.find_spec("keras") is not None

CASES = """
import json
from bench.case import Case, Measure
from bench.run.runner import run_case
m = Measure(warmup=1, min_repeats=2, min_time_s=0.0, budget_s=20)
out = []
for impl, block, mode, prec, seq in [
        ("keras", "encoder_layer", "forward", "fp32", 32),
        ("keras-function", "mha", "forward", "fp32", 256),
        ("keras-xla", "ffn", "forward+backward", "fp32", 32),
        ("keras", "model", "forward", "amp-bf16", 16),
        ("keras-function", "attention", "forward", "bf16", 16)]:
    c = Case(impl=impl, block=block, batch=1, seq_len=seq, d_model=64, n_heads=4, d_ff=128,
             layers=1, vocab_size=50, precision=prec, threads=1, mode=mode)
    out.append(run_case(c, m))
print(json.dumps(out))
"""


RSS_METHOD = "rss (TensorFlow keeps no allocator statistics on this CPU: oneDNN off)"


@pytest.fixture(scope="module")
def records():
    if not HAS_TF:
        pytest.skip("needs the [tf] extra: pip install 'tfbench[tf]'")
    done = subprocess.run([sys.executable, "-c", CASES], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_keras_case_runs_and_counts_the_analytic_flops(records):
    for r in records:
        assert r["status"] == "ok", (r["impl"], r["block"], r["status"])
        # TensorFlow's allocator statistics where oneDNN is on, else the RSS sampler (AVX2 CPUs)
        assert r["backend"] == "tensorflow" and r["peak_method"] in ("tf-allocator", RSS_METHOD)
        assert r["flops_counted"] == r["flops_analytic"] > 0, (r["impl"], r["block"])
        assert r["n_samples"] >= 2 and r["median_s"] > 0


def test_compile_time_is_kept_apart_from_the_samples(records):
    by_impl = {r["impl"]: r for r in records}
    assert by_impl["keras"]["compile_s"] is None                      # eager: nothing traced
    for name in ("keras-function", "keras-xla"):
        r = by_impl[name]
        assert r["compile_s"] > 0
        assert r["compile_s"] > max(r["samples_s"])                   # the trace is not a sample


def test_allocator_peak_and_accuracy(records):
    mha = next(r for r in records if r["block"] == "mha")
    score_matrix = 4 * 256 * 256 * 4                                  # B·H·T·T fp32 = 1 MiB
    if mha["peak_method"] == "tf-allocator":                        # RSS misses reused pages
        assert mha["peak_bytes"] >= score_matrix                      # seen by the BFC pool
    assert mha["attn_rel_l2_err"] is not None and mha["attn_rel_l2_err"] < 1e-5
    for r in records:
        bound = 1e-5 if r["precision"] == "fp32" else 5e-2
        assert 0 < r["rel_l2_err"] < bound, (r["impl"], r["block"], r["rel_l2_err"])


BLOCKED = """
import importlib.abc, sys
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras"):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None
sys.meta_path.insert(0, Blocker())
from bench.cli import dispatch as main
sys.exit(main(["validate", sys.argv[1]]))
"""


def test_without_the_extra_a_keras_config_is_a_one_line_error(tmp_path):
    config = tmp_path / "k.yaml"
    config.write_text(textwrap.dedent("""
        defaults: {block: ffn, d_model: 64, n_heads: 4, d_ff: 128, threads: 1, seq_len: 16}
        grid: {impl: [numpy, torch, keras]}
    """))
    done = subprocess.run([sys.executable, "-c", BLOCKED, str(config)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert "keras" in lines[0] and "not installed" in lines[0] and '.[tf]' in lines[0]
