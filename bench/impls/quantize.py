"""int8 in the libraries: torch's dynamic quantization, the CPU's int8 instructions, the
quantized weights' bytes as stored.

Which library path: `torch.ao.quantization.quantize_dynamic` (deprecated in torch 2.13, still
shipped), not torchao. torchao 0.18 is the maintained replacement, but its int8
dynamic-activation / int8-weight path multiplies with `torch._int_mm` in eager mode, and that
CPU kernel ran at 0.6 GOP/s on this project's 2-core AVX2 machine against 65 GOP/s for
fbgemm's `quantized::linear_dynamic` (1024³, 2 threads), the kernel quantize_dynamic's
DynamicQuantizedLinear calls; torchao is also not installed here. quantize_dynamic replaces
every module whose type is exactly `nn.Linear` (HF BERT: q, k, v, attention output, FFN, pooler;
torch.nn.TransformerEncoderLayer: linear1, linear2 only: nn.MultiheadAttention keeps its packed
in_proj_weight and a NonDynamicallyQuantizableLinear out_proj in float32), with the default
dynamic qconfig: weights per tensor, symmetric int8 (MinMaxObserver), activations per tensor,
asymmetric uint8, quantized at run time.

reduce_range: the int8 kernels of a CPU without VNNI (AVX2's vpmaddubsw) add pairs of u8·s8
products into int16 and saturate; 7-bit activations (reduce_range=True) keep those sums in
range. With AVX512-VNNI / AVX-VNNI (vpdpbusd accumulates into int32) full 8-bit activations
are safe. `reduce_range()` decides from /proc/cpuinfo's flags (bench.machine.environment.cpu_flags):
ONNX Runtime's quantize_dynamic gets it (bench.impls.ort). torch's DynamicQuantizedLinear always
passes reduce_range=True to its kernel (torch 2.13, ao/nn/quantized/dynamic/modules/linear.py):
right for a CPU without VNNI, one bit of activation resolution given away on one with it.

Weight bytes as stored, `linear_weight_bytes(module)`: for each Linear quantize_dynamic takes
(float or quantized), the weight matrix: float: numel x element size; quantized: its int8
payload, 4 bytes per scale and 1 per zero point (fbgemm packs them opaquely; these are the
widths ONNX stores them at), the scheme tfimpl.costs.int8_weight_bytes calls "per_tensor".

Tests: tests/impls/test_int8.py.
"""

from __future__ import annotations

import warnings

from bench.machine.environment import cpu_flags

VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def vnni() -> bool | None:
    """True when the CPU lists an int8 dot-product instruction (VNNI, AMX-INT8); None unknown."""
    flags = cpu_flags(wanted=VNNI_FLAGS)
    return None if flags is None else bool(flags)


def reduce_range() -> bool:
    """7-bit activations unless the CPU has VNNI (unknown: the safe True)."""
    return vnni() is not True


def quantize_torch(module):
    """quantize_dynamic(module, {nn.Linear}, qint8): a new module, the float one untouched."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                  # its deprecation notices, every call
        return torch.ao.quantization.quantize_dynamic(module, {torch.nn.Linear},
                                                      dtype=torch.qint8, inplace=False)


def quantizable_linears(module) -> list:
    """The modules quantize_dynamic takes (type exactly nn.Linear) or took (dynamic Linear)."""
    import torch
    from torch.ao.nn.quantized import dynamic

    return [m for m in module.modules()
            if type(m) is torch.nn.Linear or isinstance(m, dynamic.Linear)]


def linear_weight_bytes(module) -> int:
    """Bytes of the weight matrices of `quantizable_linears(module)` as stored (docstring)."""
    import torch

    total = 0
    for m in quantizable_linears(module):
        if type(m) is torch.nn.Linear:
            total += m.weight.numel() * m.weight.element_size()
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            w = m.weight()
        per_channel = w.qscheme() in (torch.per_channel_symmetric, torch.per_channel_affine)
        scales = w.q_per_channel_scales().numel() if per_channel else 1
        total += w.int_repr().numel() + 5 * scales
    return total
