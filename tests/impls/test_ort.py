"""`onnxruntime` (bench.impls.ort): fp32 ONNX Runtime == HF BERT in torch within 1e-4 relative,
int8 weight bytes from the model file == tfimpl.costs exactly, and without the extra a case is
a one-line config error naming the install command."""

import dataclasses
import importlib.util

import numpy as np
import pytest

from bench import capabilities
from bench.case import Case
from bench.impls import base
from bench.impls.prepare import prepare
from bench.plan import plan

HAS_ORT = all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx", "onnxscript"))
needs_ort = pytest.mark.skipif(not HAS_ORT, reason='needs the extra: pip install -e ".[ort]"')

BASE = Case(impl="onnxruntime", batch=1, seq_len=16, d_model=32, n_heads=2, d_ff=64, layers=2,
            vocab_size=50, precision="fp32", threads=1)


def _out(case):
    prepared = prepare(case)
    prepared.fn()
    return prepared, prepared.output()


def _rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@needs_ort
@pytest.mark.parametrize("block", ["encoder_layer", "model"])
def test_fp32_onnxruntime_matches_torch_and_int8_bytes_match_the_cost_model(block):
    case = dataclasses.replace(BASE, block=block)
    assert capabilities.check_fields(case) is None
    ort, ort_out = _out(case)
    _, torch_out = _out(dataclasses.replace(case, impl="hf-bert"))
    assert _rel(ort_out, torch_out) <= 1e-4
    assert ort.backend == "onnxruntime" and ort.graph_optimization == "ORT_ENABLE_ALL"
    assert ort.compile_s > 0 and ort.weight_bytes == plan(case).weight_bytes_predicted
    int8_case = dataclasses.replace(case, precision="int8")
    int8, int8_out = _out(int8_case)
    assert int8.weight_bytes == plan(int8_case).weight_bytes_predicted
    assert 3.5 < ort.weight_bytes / int8.weight_bytes < 4.0
    assert _rel(int8_out, torch_out) < 5e-2


@needs_ort
def test_threads_go_to_the_session():
    from bench.impls import ort

    folder, path, export_s, _ = ort.exported(dataclasses.replace(BASE, block="encoder_layer"))
    assert export_s > 0
    sess = ort.session(path, 2)
    assert sess.get_session_options().intra_op_num_threads == 2


def test_without_the_extra_a_case_is_one_line_with_the_install_command(monkeypatch):
    monkeypatch.setattr(base.Impl, "missing_requirement", lambda self: "onnxruntime")
    field, reason = capabilities.check_fields(dataclasses.replace(BASE, block="model"))
    assert field == "impl" and 'pip install -e ".[ort]"' in reason and "\n" not in reason


def test_without_the_extra_the_config_exits_2_in_one_line(monkeypatch, capsys, tmp_path):
    from support import run

    monkeypatch.setattr(base.Impl, "missing_requirement",
                        lambda self: "onnxruntime" if self.name == "onnxruntime" else None)
    config = tmp_path / "ort.yaml"
    config.write_text("name: ort\nsweeps:\n  - name: s\n    fixed: {impl: onnxruntime, "
                      "block: encoder_layer, precision: fp32, seq_len: 16, d_model: 32, "
                      "n_heads: 2, d_ff: 64}\n")
    rc, _, err = run(capsys, "validate", str(config))
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and 'pip install -e ".[ort]"' in lines[0], err
