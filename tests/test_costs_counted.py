"""tfimpl.costs against our own implementations: counted parameters, FlopCounterMode on the
explicit PyTorch path, and measured peak memory (tracemalloc for NumPy, the torch profiler's
memory events for torch) against predicted_peak_bytes."""

import math

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import tfimpl.numpy as tnp
import tfimpl.torch as ttorch
from bench.memory import peak_numpy, peak_torch_cpu
from tfimpl import costs
from tfimpl.config import ModelConfig, preset
from tfimpl.numpy._threads import blas_threads
from tfimpl.params import count, init_params, param_shapes, to_torch

SMALL = ModelConfig(d_model=64, n_heads=4, d_ff=256, n_layers=2, n_decoder_layers=2,
                    vocab_size=500, max_position=64, final_norm=True)
B, T = 2, 16
BLOCKS = ("attention", "mha", "ffn", "encoder_layer", "encoder", "model")


# ---- parameters ---------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["mha", "ffn", "encoder_layer", "decoder_layer", "encoder",
                                  "decoder", "transformer", "bert"])
def test_init_params_count_matches(kind):
    assert count(init_params(kind, SMALL, seed=0)) == costs.param_counts(kind, SMALL)["total"]


@pytest.mark.parametrize("name", ["bert-base", "bert-large", "minilm-l6", "transformer-big"])
def test_layout_shapes_match_presets(name):
    cfg = preset(name)
    kind = "transformer" if name.startswith("transformer") else "bert"
    shapes = param_shapes(kind, cfg)                       # names -> shapes, nothing allocated
    assert sum(math.prod(shape) for shape in shapes.values()) == costs.param_counts(kind, cfg)["total"]


# ---- FLOPs on our explicit PyTorch path ----------------------------------------------------

def _torch_call(block, cfg, attn_impl="explicit", requires_grad=False, seed=0, b=B, t=T):
    """A zero-argument call of our torch `block` on seeded inputs, and the inputs' dtype."""
    gen = np.random.default_rng(seed)
    if block == "attention":
        q, k, v = (torch.tensor(gen.standard_normal((b, cfg.n_heads, t, cfg.d_head)),
                                dtype=torch.float32, requires_grad=requires_grad)
                   for _ in range(3))
        return lambda: ttorch.scaled_dot_product_attention(q, k, v, attn_impl=attn_impl)
    kind = "bert" if block == "model" else block
    p = to_torch(init_params(kind, cfg, seed), requires_grad=requires_grad)
    if block == "model":
        ids = torch.tensor(gen.integers(0, cfg.vocab_size, (b, t)))
        return lambda: ttorch.bert(p, ids, cfg, attn_impl=attn_impl)      # (hidden, pooled)
    x = torch.tensor(gen.standard_normal((b, t, cfg.d_model)), dtype=torch.float32,
                     requires_grad=requires_grad)
    calls = {
        "mha": lambda: ttorch.multi_head_attention(p, x, x, cfg.n_heads, attn_impl=attn_impl),
        "ffn": lambda: ttorch.feed_forward(p, x, cfg.activation),
        "encoder_layer": lambda: ttorch.encoder_layer(p, x, cfg, attn_impl=attn_impl),
        "encoder": lambda: ttorch.encoder(p, x, cfg, attn_impl=attn_impl),
    }
    return calls[block]


def _loss(out):
    """Sum of every output, so the backward reaches every weight (BERT's pooler too)."""
    return sum(o.sum() for o in out) if isinstance(out, tuple) else out.sum()


def _counted(fn) -> int:
    mode = FlopCounterMode(display=False)
    with mode:
        fn()
    return mode.get_total_flops()


@pytest.mark.parametrize("block", BLOCKS)
def test_explicit_torch_path_counts_exactly(block):
    with torch.no_grad():
        got = _counted(_torch_call(block, SMALL))
    assert got == costs.forward_flops(block, SMALL, B, T)["matmul"]


@pytest.mark.parametrize("block", ["attention", "encoder_layer"])
def test_sdpa_path_hides_the_attention_terms_on_cpu(block):
    flops = costs.forward_flops(block, SMALL, B, T)
    with torch.no_grad():
        got = _counted(_torch_call(block, SMALL, attn_impl="sdpa"))
    assert got == flops["matmul"] - flops["attn_scores"] - flops["attn_weighted_sum"]


@pytest.mark.parametrize("block", ["attention", "mha", "encoder_layer", "model"])
def test_explicit_forward_backward_counts_three_times_forward(block):
    fn = _torch_call(block, SMALL, requires_grad=True)
    got = _counted(lambda: _loss(fn()).backward())
    assert got == (costs.forward_flops(block, SMALL, B, T)["matmul"]
                   + costs.backward_flops(block, SMALL, B, T)["matmul"])


# ---- peak memory -------------------------------------------------------------------------

MEM = ModelConfig(d_model=128, n_heads=4, d_ff=512, n_layers=2, vocab_size=500,
                  max_position=256)
MB, MT = 2, 256


def _numpy_call(block, cfg, causal=False, seed=0):
    gen = np.random.default_rng(seed)
    if block == "attention":
        q, k, v = (gen.standard_normal((MB, cfg.n_heads, MT, cfg.d_head)).astype(np.float32)
                   for _ in range(3))
        return lambda: tnp.scaled_dot_product_attention(q, k, v, causal=causal)
    kind = "bert" if block == "model" else block
    p = init_params(kind, cfg, seed, dtype=np.float32)
    if block == "model":
        ids = gen.integers(0, cfg.vocab_size, (MB, MT))
        return lambda: tnp.bert(p, ids, cfg)
    x = gen.standard_normal((MB, MT, cfg.d_model)).astype(np.float32)
    calls = {"mha": lambda: tnp.multi_head_attention(p, x, x, cfg.n_heads, causal=causal),
             "ffn": lambda: tnp.feed_forward(p, x, cfg.activation),
             "encoder_layer": lambda: tnp.encoder_layer(p, x, cfg),
             "encoder": lambda: tnp.encoder(p, x, cfg)}
    return calls[block]


def _torch_mem_call(block, cfg, attn_impl, causal=False, seed=0):
    gen = np.random.default_rng(seed)
    if block == "attention":
        q, k, v = (torch.tensor(gen.standard_normal((MB, cfg.n_heads, MT, cfg.d_head)),
                                dtype=torch.float32) for _ in range(3))
        fn = lambda: ttorch.scaled_dot_product_attention(q, k, v, causal=causal,
                                                         attn_impl=attn_impl)
    elif block == "mha":
        p = to_torch(init_params("mha", cfg, seed))
        x = torch.tensor(gen.standard_normal((MB, MT, cfg.d_model)), dtype=torch.float32)
        fn = lambda: ttorch.multi_head_attention(p, x, x, cfg.n_heads, causal=causal,
                                                 attn_impl=attn_impl)
    else:
        fn = _torch_call(block, cfg, attn_impl, seed=seed, b=MB, t=MT)

    def no_grad_call():
        with torch.no_grad():
            return fn()
    return no_grad_call


def _close(measured, predicted):
    """Exact up to small bookkeeping: NumPy's ufunc buffers (8192 elements per operand when a
    ufunc buffers), row-block reductions, the thread pool of the row-blocked element-wise passes
    (Python objects tracemalloc sees). <= 1% or 96 KiB, well below one (B,T,D) array here."""
    return abs(predicted - measured) <= max(0.01 * measured, 96 * 1024)


@pytest.mark.parametrize("cfg", [MEM, MEM.replace(activation="relu"),
                                 MEM.replace(activation="relu", norm_first=True)],
                         ids=["gelu", "relu", "relu-prenorm"])
@pytest.mark.parametrize("block", BLOCKS)
def test_numpy_forward_peak_is_predicted(block, cfg):
    fn = _numpy_call(block, cfg)
    fn()
    measured = peak_numpy(fn)
    predicted = costs.predicted_peak_bytes(block, cfg, MB, MT, 4, threads=blas_threads(),
                                           backend="numpy")
    assert _close(measured, predicted), (measured, predicted)


@pytest.mark.parametrize("attn_impl", ["explicit", "sdpa"])
@pytest.mark.parametrize("block", BLOCKS)
def test_torch_forward_peak_is_predicted(block, attn_impl):
    fn = _torch_mem_call(block, MEM, attn_impl)
    fn()
    measured = peak_torch_cpu(fn)
    predicted = costs.predicted_peak_bytes(block, MEM, MB, MT, 4, attn_impl,
                                           threads=torch.get_num_threads(), backend="torch")
    assert _close(measured, predicted), (measured, predicted)


@pytest.mark.parametrize("attn_impl", ["explicit", "sdpa"])
def test_torch_forward_peak_batch_one(attn_impl):
    """With B = 1 torch.matmul folds the heads of the Q|K|V views without copying them."""
    cfg = MEM.replace(n_layers=1)
    fn = _torch_call("encoder", cfg, attn_impl, b=1, t=MT)

    def no_grad_call():
        with torch.no_grad():
            return fn()
    no_grad_call()
    predicted = costs.predicted_peak_bytes("encoder", cfg, 1, MT, 4, attn_impl,
                                           threads=torch.get_num_threads())
    assert _close(peak_torch_cpu(no_grad_call), predicted)


@pytest.mark.parametrize("block", ["attention", "mha"])
def test_causal_peak_is_predicted(block):
    np_fn = _numpy_call(block, MEM, causal=True)
    np_fn()
    assert _close(peak_numpy(np_fn), costs.predicted_peak_bytes(
        block, MEM, MB, MT, 4, causal=True, threads=blas_threads(), backend="numpy"))
    t_fn = _torch_mem_call(block, MEM, "explicit", causal=True)
    t_fn()
    assert _close(peak_torch_cpu(t_fn), costs.predicted_peak_bytes(
        block, MEM, MB, MT, 4, causal=True, backend="torch"))


@pytest.mark.parametrize("attn_impl", ["explicit", "sdpa"])
@pytest.mark.parametrize("block", [*BLOCKS[:4], *(pytest.param(b, marks=pytest.mark.slow)
                                                 for b in BLOCKS[4:])])
def test_forward_backward_peak_is_an_upper_bound(block, attn_impl):
    fn = _torch_call(block, MEM, attn_impl, requires_grad=True, b=MB, t=MT)

    def step():
        _loss(fn()).backward()
    step()
    measured = peak_torch_cpu(step)
    predicted = costs.predicted_peak_bytes(block, MEM, MB, MT, 4, attn_impl, "forward+backward",
                                           threads=torch.get_num_threads())
    assert measured <= predicted <= 1.6 * measured, (measured, predicted)
