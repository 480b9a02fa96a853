"""bench.precision: the table, the casts, the run contexts, ratios against fp32."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench import precision as P
from bench import capabilities, impls


def test_every_case_precision_is_in_the_table():
    for name in impls.names():
        assert set(impls.get(name).precisions) <= set(P.NAMES)
    assert P.get(P.REFERENCE).storage == "float64"


def test_unknown_precision_lists_allowed_names():
    with pytest.raises(ValueError, match=r"unknown 'fp8'.*fp64.*amp-fp16"):
        P.get("fp8")


@pytest.mark.parametrize("name", [n for n in P.NAMES if n != "int8"])
def test_table_agrees_with_torch_finfo(name):
    p = P.get(name)
    low = P.autocast_dtype(name) or P.torch_dtype(name)
    if name != "tf32":                            # TF32 is a matmul mode, not a torch dtype
        assert p.unit_roundoff == torch.finfo(low).eps / 2
    else:
        assert p.unit_roundoff == 2.0 ** -11      # 10 explicit mantissa bits
    assert p.accumulate_roundoff <= p.unit_roundoff
    assert p.bytes_per_element == torch.finfo(low).bits // 8 or name == "tf32"


def test_amp_activation_width_is_the_autocast_dtype():
    # matmul outputs (scores, ffn hidden) are what dominate; they are in the autocast dtype.
    x = torch.randn(2, 3, 8)
    with P.context("amp-bf16", "cpu"):
        assert (x @ x.transpose(-1, -2)).element_size() == P.get("amp-bf16").bytes_per_element


@pytest.mark.parametrize("impl, precision, device, fragment", [
    ("numpy", "bf16", "cpu", "NumPy runs fp64 and fp32 only"),
    ("numpy", "amp-bf16", "cpu", "NumPy runs fp64 and fp32 only"),
    ("numpy", "fp32", "cuda", "cannot run on device 'cuda'"),
    ("numpy", "tf32", "cuda", "cannot run on device 'cuda'"),
    ("torch", "tf32", "cpu", "CUDA tensor-core mode"),
    ("hf-bert", "tf32", "cpu", "CUDA tensor-core mode"),
    ("jax", "fp32", "cpu", "unknown impl 'jax'"),
])
def test_supported_gives_a_reason(impl, precision, device, fragment):
    assert fragment in capabilities.precision_reason(impl, precision, device)


@pytest.mark.parametrize("impl, precision", [
    ("numpy", "fp64"), ("numpy", "fp32"), ("torch", "bf16"), ("torch", "fp16"),
    ("torch-sdpa", "amp-bf16"), ("torch-nn", "amp-fp16"), ("hf-bert", "fp64"),
])
def test_supported_on_cpu(impl, precision):
    assert capabilities.precision_reason(impl, precision, "cpu") is None


def test_supported_rejects_unknown_precision():
    with pytest.raises(ValueError, match="allowed"):
        capabilities.precision_reason("torch", "int4", "cpu")


def test_int8_is_quantized_weights_over_float32():
    p = P.get("int8")
    assert p.weights == "int8" and p.storage == "float32" and p.bytes_per_element == 4
    assert p.unit_roundoff == 1 / (2 * 127)                # half a step of max|w| / 127
    assert P.torch_dtype("int8") == torch.float32


@pytest.mark.parametrize("impl, device, fragment", [
    ("torch", "cpu", "impl 'torch' cannot run precision 'int8'"),
    ("numpy", "cpu", "NumPy runs fp64 and fp32 only"),
    ("keras", "cpu", "impl 'keras' cannot run precision 'int8'"),
    ("torch-nn", "cuda", "dynamic quantization on CPU kernels"),
])
def test_int8_where_a_backend_has_none(impl, device, fragment):
    reason = capabilities.precision_reason(impl, "int8", device)
    assert fragment in reason and "\n" not in reason


@pytest.mark.parametrize("impl", ["torch-nn", "hf-bert"])
def test_int8_runs_on_the_library_impls(impl):
    assert capabilities.precision_reason(impl, "int8", "cpu") is None


def _params():
    rng = np.random.default_rng(0)
    return {"w": rng.standard_normal((4, 3)), "ids": np.arange(5)}


def test_cast_params_numpy_fp32_leaves_the_original():
    params = _params()
    cast = P.cast_params(params, "fp32", "numpy")
    assert cast["w"].dtype == np.float32 and params["w"].dtype == np.float64
    assert cast["ids"].dtype == params["ids"].dtype          # integers are never cast
    np.testing.assert_array_equal(cast["w"], params["w"].astype(np.float32))


def test_numpy_has_no_bf16():
    with pytest.raises(ValueError, match="no NumPy dtype"):
        P.cast_params(_params(), "bf16", "numpy")


@pytest.mark.parametrize("name, dtype", [("fp64", torch.float64), ("bf16", torch.bfloat16),
                                         ("fp16", torch.float16), ("amp-bf16", torch.float32),
                                         ("amp-fp16", torch.float32)])
def test_cast_params_torch(name, dtype):
    cast = P.cast_params(_params(), name, "torch", "cpu")
    assert cast["w"].dtype == dtype and cast["w"].device.type == "cpu"
    assert cast["ids"].dtype == torch.int64


def test_cast_rejects_a_bad_backend_and_numpy_on_cuda():
    with pytest.raises(ValueError, match="backend"):
        P.cast_input(np.ones(2), "fp32", "jax")
    with pytest.raises(ValueError, match="device"):
        P.cast_input(np.ones(2), "fp32", "numpy", "cuda")


def test_amp_context_runs_matmuls_low_and_ends():
    x, w = torch.randn(2, 8), torch.randn(4, 8)
    with P.context("amp-bf16", "cpu"):
        assert F.linear(x, w).dtype == torch.bfloat16
        assert torch.is_autocast_enabled("cpu")
    assert not torch.is_autocast_enabled("cpu")
    assert F.linear(x, w).dtype == torch.float32


@pytest.mark.parametrize("name", ["fp64", "fp32", "bf16", "fp16"])
def test_pure_casts_do_not_autocast(name):
    with P.context(name, "cpu"):
        assert not torch.is_autocast_enabled("cpu")


def test_tf32_is_cuda_only():
    with pytest.raises(ValueError, match="'cuda' only"):
        P.context("tf32", "cpu")
    with pytest.raises(ValueError, match="device"):
        P.context("fp32", "tpu")


@pytest.mark.parametrize("name, inside", [("tf32", True), ("fp32", False)])
@pytest.mark.parametrize("before", [True, False])
def test_tf32_flag_is_set_and_restored(name, inside, before):
    # The flag is a plain cuBLAS setting, settable (and so testable) without a GPU.
    matmul = torch.backends.cuda.matmul
    saved = matmul.allow_tf32
    try:
        matmul.allow_tf32 = before
        with P.context(name, "cuda"):
            assert matmul.allow_tf32 is inside
        assert matmul.allow_tf32 is before
        with pytest.raises(RuntimeError):
            with P.context(name, "cuda"):
                raise RuntimeError("boom")
        assert matmul.allow_tf32 is before
    finally:
        matmul.allow_tf32 = saved

