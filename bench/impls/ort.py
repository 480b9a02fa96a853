"""`onnxruntime`: the HF BERT layer / model (bench.impls.hf_bert, our seeded weights) exported
with torch.onnx.export and run by ONNX Runtime's CPU execution provider.

    export      torch.onnx.export(dynamo=True) of the fp32 module at the case's fixed shapes
                (B, T); once per block, sizes and seed in a process (`_exported`), its wall time
                kept with the file
    int8        onnxruntime.quantization.quantize_dynamic on the exported file: MatMul / Gemm
                weights only (op_types_to_quantize; its default also turns the embedding
                tables' Gather into uint8, which torch's recipe leaves float32), per tensor,
                QInt8, reduce_range from the CPU's VNNI flags (bench.impls.quantize)
    session     SessionOptions: intra_op_num_threads = the case's threads, inter_op 1,
                graph_optimization_level ORT_ENABLE_ALL (the record's graph_optimization),
                providers ["CPUExecutionProvider"]
    compile_s   export + quantization + session creation + the first run: apart from the
                samples (the export's time is the one measured when the file was written)

FLOPs: analytic only (tfimpl.costs, as for torch): ONNX Runtime counts none, so flops_counted
stays null. Peak memory: the process RSS sampler (bench.trackers.memory.rss_peak, method
"rss-sampler"): ORT's arena allocator is invisible to torch's profiler and tracemalloc; RSS sees
only pages newly made resident, so once the arena is warm a peak reads low. Predicted peak:
tfimpl.costs' library-attention model (HF eager's accounting). Weight bytes: the quantized
MatMul weights' initializers (`*_quantized` int8, `*_scale` float32, `*_zero_point` int8) read
back from the model file; fp32: the module's nn.Linear weights that were exported.

Tests: tests/impls/test_ort.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import os
import tempfile
import time
import warnings

import numpy as np

from bench import blocks, modes, precision
from bench.case import Case
from bench.impls.base import Impl, Prepared, Unsupported
from bench.impls.common import make_inputs
from bench.impls.hf_bert import hf_module, rules
from bench.impls.quantize import linear_weight_bytes, reduce_range
from tfimpl import costs

INSTALL = 'pip install -e ".[ort]"'
GRAPH_OPTIMIZATION = "ORT_ENABLE_ALL"
BLOCKS = ("encoder_layer", "model")
QUANTIZED_SUFFIXES = ("_quantized", "_scale", "_zero_point")


def _hidden_states(module, block: str):
    """The HF module with its hidden states as the first output (what torch.onnx.export traces;
    the model keeps its pooled output too, so the export keeps the pooler)."""
    import torch

    class Hidden(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = module

        def forward(self, x):
            if block == "model":                  # both outputs, as hf-bert computes them
                out = self.inner(input_ids=x)
                return out.last_hidden_state, out.pooler_output
            out = self.inner(x)
            return out[0] if isinstance(out, tuple) else out

    return Hidden().eval()


def exported(case: Case) -> tuple:
    """(folder, fp32 model path, export seconds, fp32 Linear weight bytes) of the case's block;
    one export per block, sizes and seed (precision, threads and mode do not change it)."""
    return _exported(dataclasses.replace(case, precision="fp32", threads=1, mode="forward"))


@functools.lru_cache(maxsize=4)
def _exported(case: Case) -> tuple:
    import torch

    module = hf_module(case, torch.float32, torch.device("cpu"))
    wrapped = _hidden_states(module, case.block)
    inputs = make_inputs(case)
    x = torch.from_numpy(inputs["input_ids"] if case.block == "model" else
                         inputs["x"].astype(np.float32))
    folder = tempfile.TemporaryDirectory(prefix="tfbench-ort-")
    path = os.path.join(folder.name, "fp32.onnx")
    start = time.perf_counter()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        names = ["y", "pooled"] if case.block == "model" else ["y"]
        torch.onnx.export(wrapped, (x,), path, input_names=["x"], output_names=names,
                          dynamo=True, verbose=False)
    return folder, path, time.perf_counter() - start, linear_weight_bytes(module)


def quantize_file(src: str, dst: str) -> float:
    """ORT's dynamic quantization of src's MatMul/Gemm weights into dst; its wall time."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_dynamic(src, dst, weight_type=QuantType.QInt8, per_channel=False,
                         reduce_range=reduce_range(), op_types_to_quantize=["MatMul", "Gemm"])
    return time.perf_counter() - start


def quantized_weight_bytes(path: str) -> int:
    """Bytes of the quantized weights' initializers (int8 payload, scales, zero points)."""
    import onnx

    model = onnx.load(path)
    return sum(len(t.raw_data) if t.raw_data else
               onnx.numpy_helper.to_array(t).nbytes
               for t in model.graph.initializer if t.name.endswith(QUANTIZED_SUFFIXES))


def session(path: str, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, GRAPH_OPTIMIZATION)
    options.log_severity_level = 3
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def build(case: Case) -> Prepared:
    if case.device != "cpu":
        raise Unsupported("onnxruntime runs the CPU execution provider here")
    folder, path, export_s, fp32_bytes = exported(case)
    start = time.perf_counter()
    weight_bytes = fp32_bytes
    if case.precision == "int8":
        quantized = os.path.join(folder.name, "int8.onnx")
        if not os.path.exists(quantized):
            quantize_file(path, quantized)
        path, weight_bytes = quantized, quantized_weight_bytes(quantized)
    sess = session(path, case.threads)
    inputs = make_inputs(case)
    feed = {"x": inputs["input_ids"] if case.block == "model" else
            inputs["x"].astype(np.float32)}
    last: list = [sess.run(None, feed)[0]]                 # the first run: compile_s, no sample
    compile_s = export_s + time.perf_counter() - start

    def fn():
        last[0] = sess.run(None, feed)[0]
        return last[0]

    return Prepared(fn=fn, output=lambda: np.array(last[0], dtype=np.float64),
                    backend="onnxruntime", device="cpu", compile_s=compile_s,
                    weight_bytes=weight_bytes, graph_optimization=GRAPH_OPTIMIZATION)


def library_costs(case: Case, cfg) -> dict:
    """Peak memory of tfimpl.costs' library-attention model (HF eager: scores and weights)."""
    peak = costs.predicted_peak_bytes(blocks.get(case.block).cost_block, cfg, case.batch,
                                      case.seq_len, precision.get(case.precision).bytes_per_element,
                                      "library", modes.get(case.mode).peak_mode,
                                      causal=case.causal, threads=case.threads, backend="torch")
    return {"peak_bytes_predicted": peak}


IMPL = Impl(
    name="onnxruntime", description="HF BERT exported with torch.onnx.export, ONNX Runtime CPU",
    backend="onnxruntime", blocks=BLOCKS, precisions=("fp32", "int8"), modes=("forward",),
    devices=("cpu",), attention="library", exposes_weights=False, build=build, rules=rules,
    requires=("onnxruntime", "onnx", "onnxscript"), install=INSTALL, costs=library_costs,
    extra={"int8_scheme": "per_tensor", "int8_attention": True})
