"""Numeric precision as a sweep axis: what each name means, how to cast to it, how to run in it.

Two ways to run in lower precision, and they are not the same experiment:

- a pure cast (`fp32`, `bf16`, `fp16`): weights AND inputs are stored in that dtype, so every
  op (matmul, softmax, layer norm, residual add) runs in it;
- autocast (`amp-bf16`, `amp-fp16`): weights and inputs stay fp32; `torch.autocast` casts the
  inputs of matmul-like ops (linear, matmul, bmm, sdpa) to the low dtype on the fly, and ops on
  autocast's fp32 list (on CUDA: softmax, layer_norm, ...) back to fp32.

`fp64` is the reference every case is compared against (bench.trackers.accuracy). `tf32` is fp32 storage
with `torch.backends.cuda.matmul.allow_tf32 = True` (tensor-core matmul with a 10-bit mantissa),
CUDA only; on CUDA `fp32` explicitly turns TF32 off so it means IEEE fp32 whatever the process
default is. Both flags are restored on exit.

bytes_per_element (the analytic memory model's activation width, tfimpl.costs):
for amp-* we use 2, the autocast dtype's width. Autocast keeps the parameters (and the fp32
inputs) at 4 bytes, but the activations that dominate at long sequences are matmul outputs and
land in the low dtype: q, k, v, the (B, H, T, T) scores and the (B, T, d_ff) FFN hidden. On CPU
softmax, gelu and layer_norm keep their bf16 input dtype (checked: torch 2.13), and only the
residual adds (bf16 + fp32 input) promote to fp32. On CUDA softmax and layer_norm are on the
fp32 list, so the attention weights there are 4 bytes while the scores are 2: the model is then
a lower bound for the attention-matrix term. Autocast also re-casts weights per call when they
do not require grad (its cast cache holds only leaf tensors that require grad): transient
low-precision copies of the weights, not in the activation model.

`int8` is dynamic quantization (bench.impls.quantize, bench.impls.ort; from first principles in
tfimpl.numpy/torch.quantized): the Linear weights are stored in int8 with float32 scales, the
activations are quantized at each call, the matmuls run int8 x int8 -> int32 and everything
between them (attention's matmuls, softmax, norms) stays float32: storage and activation width
4. Its unit_roundoff is half an int8 step relative to the largest magnitude, 1/254; the integer
accumulation is exact, the float32 rescale rounds at 2^-24. CPU only (fbgemm, ONNX Runtime's
CPU kernels).

Which impl may run which precision is its declaration's (bench/impls/); this module holds the
facts about the precision itself (NumPy dtypes, tf32 is CUDA-only, bf16 needs sm_80+), and
bench.capabilities puts the two together.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator, Mapping

REFERENCE = "fp64"          # every case's accuracy is measured against this
BASELINE = "fp32"           # speedups and memory ratios are against this


@dataclass(frozen=True)
class Precision:
    """One precision: storage dtype, optional autocast dtype, optional TF32 flag.

    Dtypes are named by string ("float32", "bfloat16") so this module imports neither torch nor
    numpy; `torch_dtype`/`numpy_dtype` turn them into dtype objects.
    """

    name: str
    storage: str                 # torch dtype name of weights and inputs
    numpy: str | None            # numpy dtype name, None = NumPy cannot run it honestly
    autocast: str | None         # torch.autocast dtype, None = no autocast
    tf32: bool                   # allow TF32 tensor-core matmul (CUDA only)
    bytes_per_element: int       # activation width for the analytic memory model
    unit_roundoff: float         # u = 2^-(mantissa bits + 1) of the format values round to
    accumulate_roundoff: float   # u of the dot-product accumulator (fp32 for bf16/fp16/tf32)
    cuda_only: bool
    description: str
    weights: str | None = None   # quantized weight dtype ("int8"), None = stored as `storage`


PRECISIONS: dict[str, Precision] = {p.name: p for p in (
    Precision("fp64", "float64", "float64", None, False, 8, 2.0 ** -53, 2.0 ** -53, False,
              "IEEE double: the reference"),
    Precision("fp32", "float32", "float32", None, False, 4, 2.0 ** -24, 2.0 ** -24, False,
              "IEEE single (TF32 off on CUDA)"),
    Precision("tf32", "float32", None, None, True, 4, 2.0 ** -11, 2.0 ** -24, True,
              "fp32 storage, TF32 tensor-core matmul (10-bit mantissa), CUDA only"),
    Precision("bf16", "bfloat16", None, None, False, 2, 2.0 ** -8, 2.0 ** -24, False,
              "weights and inputs cast to bfloat16: every op in bf16"),
    Precision("fp16", "float16", None, None, False, 2, 2.0 ** -11, 2.0 ** -24, False,
              "weights and inputs cast to float16: every op in fp16"),
    Precision("amp-bf16", "float32", None, "bfloat16", False, 2, 2.0 ** -8, 2.0 ** -24, False,
              "fp32 weights, torch.autocast(bfloat16): matmuls in bf16"),
    Precision("amp-fp16", "float32", None, "float16", False, 2, 2.0 ** -11, 2.0 ** -24, False,
              "fp32 weights, torch.autocast(float16): matmuls in fp16"),
    Precision("int8", "float32", None, None, False, 4, 1.0 / 254, 2.0 ** -24, False,
              "dynamic int8: Linear weights int8 (quantized once), activations quantized "
              "per call, int8 x int8 -> int32, float32 between", weights="int8"),
)}

NAMES = tuple(PRECISIONS)


def get(name: str) -> Precision:
    """The Precision called `name`; ValueError listing the allowed names otherwise."""
    try:
        return PRECISIONS[name]
    except (KeyError, TypeError):
        raise ValueError(f"precision: unknown {name!r}; allowed: {', '.join(NAMES)}") from None


def backend_reason(precision: str, backend: str, device: str) -> str | None:
    """Why a `backend` ("numpy" | "torch" | ...) cannot run `precision` on `device`, or None.

    Facts about the precision itself: NumPy has no bfloat16 and no autocast (fp16 there would be
    storage only); tf32 is a cuBLAS setting, CUDA only; bf16 on CUDA needs compute capability
    8.0+ (CUDA is queried only for a CUDA bf16 case). Which implementation may run which
    precision is its declaration's (bench.capabilities puts the two together).
    """
    p = get(precision)
    if backend == "numpy" and p.numpy is None:
        return (f"NumPy runs fp64 and fp32 only: it has no bfloat16 and no autocast, and fp16 "
                f"there would be storage only; {precision!r} is not run on NumPy")
    if p.tf32 and backend != "torch":
        return f"{precision!r} is a cuBLAS setting; backend {backend!r} does not use torch"
    if p.weights == "int8" and device != "cpu":
        return (f"{precision!r} is dynamic quantization on CPU kernels (fbgemm, ONNX Runtime); "
                f"device is {device!r}")
    if p.cuda_only and device != "cuda":
        return f"{precision!r} is a CUDA tensor-core mode; device is {device!r}"
    if device == "cuda" and "bfloat16" in (p.storage, p.autocast) and not _cuda_bf16():
        return f"{precision!r} needs a GPU with bfloat16 (compute capability 8.0+)"
    return None


def _cuda_bf16() -> bool:
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def torch_dtype(name: str):
    """The torch dtype weights and inputs are stored in for precision `name`."""
    import torch

    return getattr(torch, get(name).storage)


def autocast_dtype(name: str):
    """The torch.autocast dtype of precision `name`, or None when it does not autocast."""
    import torch

    p = get(name)
    return None if p.autocast is None else getattr(torch, p.autocast)


def numpy_dtype(name: str):
    """The NumPy dtype of precision `name`; ValueError when NumPy does not run it."""
    import numpy as np

    p = get(name)
    if p.numpy is None:
        raise ValueError(f"precision {name!r} has no NumPy dtype; NumPy runs: "
                         f"{', '.join(n for n, q in PRECISIONS.items() if q.numpy)}")
    return np.dtype(p.numpy)


def cast_dtype(name: str, backend: str):
    """Storage dtype of `name` for `backend` ("numpy" | "torch")."""
    if backend == "numpy":
        return numpy_dtype(name)
    if backend == "torch":
        return torch_dtype(name)
    raise ValueError(f"backend: expected 'numpy' or 'torch', got {backend!r}")


def cast_input(x, name: str, backend: str, device: str = "cpu"):
    """One array (NumPy or torch) stored as precision `name` wants, on `device`.

    Floating arrays are cast to the storage dtype; integer arrays (token ids, masks) are only
    moved, never cast. NumPy results are fresh arrays (the float64 original stays intact).
    """
    import numpy as np

    dtype = cast_dtype(name, backend)
    if backend == "numpy":
        if device != "cpu":
            raise ValueError(f"device: NumPy runs on 'cpu' only, got {device!r}")
        x = np.asarray(x)
        return x.astype(dtype) if np.issubdtype(x.dtype, np.floating) else x.copy()
    import torch

    t = torch.as_tensor(x)
    if t.is_floating_point():
        return t.to(device=device, dtype=dtype)
    return t.to(device=device)


def cast_params(params: Mapping[str, object], name: str, backend: str,
                device: str = "cpu") -> dict:
    """Every named weight cast with `cast_input` (fp32 storage for amp-* and tf32)."""
    return {key: cast_input(value, name, backend, device) for key, value in params.items()}


@contextlib.contextmanager
def _tf32_matmul(allow: bool) -> Iterator[None]:
    """Set torch.backends.cuda.matmul.allow_tf32 for the body; restore the old value."""
    import torch

    matmul = torch.backends.cuda.matmul
    before = matmul.allow_tf32
    matmul.allow_tf32 = allow
    try:
        yield
    finally:
        matmul.allow_tf32 = before


def context(name: str, device: str = "cpu"):
    """The context a forward of precision `name` runs under on `device`.

    amp-*: torch.autocast(device_type=device, dtype=...); tf32: allow_tf32 on (restored on
    exit); fp32 on CUDA: allow_tf32 off (restored), so fp32 is IEEE fp32; otherwise nothing.
    """
    p = get(name)
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device: expected 'cpu' or 'cuda', got {device!r}")
    if p.autocast is not None:
        import torch

        return torch.autocast(device_type=device, dtype=autocast_dtype(name))
    if p.tf32:
        if device != "cuda":
            raise ValueError(f"precision {name!r} runs on 'cuda' only, got device {device!r}")
        return _tf32_matmul(True)
    if device == "cuda" and p.storage == "float32":
        return _tf32_matmul(False)
    return contextlib.nullcontext()


autocast = context       # the name docs/INTERFACES.md first gave it

