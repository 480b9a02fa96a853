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
from bench.trackers.memory import peak_numpy, peak_torch_cpu
from tfimpl import costs
from tfimpl.config import ModelConfig, preset
from tfimpl.numpy._threads import blas_threads
from tfimpl.params import count, init_params, param_shapes, to_torch
from threadpoolctl import threadpool_limits

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
    """A zero-argument call of our torch `block` on seeded inputs; `.leaves`: its weights and
    float inputs."""
    gen = np.random.default_rng(seed)
    if block == "attention":
        q, k, v = (torch.tensor(gen.standard_normal((b, cfg.n_heads, t, cfg.d_head)),
                                dtype=torch.float32, requires_grad=requires_grad)
                   for _ in range(3))
        def call():
            return ttorch.scaled_dot_product_attention(q, k, v, attn_impl=attn_impl)
        call.leaves = [q, k, v]
        return call
    kind = "bert" if block == "model" else block
    p = to_torch(init_params(kind, cfg, seed), requires_grad=requires_grad)
    if block == "model":
        ids = torch.tensor(gen.integers(0, cfg.vocab_size, (b, t)))
        def call():
            return ttorch.bert(p, ids, cfg, attn_impl=attn_impl)      # (hidden, pooled)
        call.leaves = list(p.values())
        return call
    x = torch.tensor(gen.standard_normal((b, t, cfg.d_model)), dtype=torch.float32,
                     requires_grad=requires_grad)
    calls = {
        "mha": lambda: ttorch.multi_head_attention(p, x, x, cfg.n_heads, attn_impl=attn_impl),
        "ffn": lambda: ttorch.feed_forward(p, x, cfg.activation),
        "encoder_layer": lambda: ttorch.encoder_layer(p, x, cfg, attn_impl=attn_impl),
        "encoder": lambda: ttorch.encoder(p, x, cfg, attn_impl=attn_impl),
    }
    call = calls[block]
    call.leaves = [*p.values(), x]
    return call


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
    """Exact up to Python's own bookkeeping, which the model leaves out (the lists of tiles and
    row-block views, ufunc iterator objects, a thread pool's futures: a few KiB here).
    <= 1% or 96 KiB, well below one (B,T,D) array here."""
    return abs(predicted - measured) <= max(0.01 * measured, 96 * 1024)


NUMPY_CFGS = [MEM, MEM.replace(activation="relu"), MEM.replace(activation="relu", norm_first=True),
              MEM.replace(activation="gelu_tanh")]


@pytest.mark.parametrize("cfg", NUMPY_CFGS, ids=["gelu", "relu", "relu-prenorm", "gelu_tanh"])
@pytest.mark.parametrize("block", BLOCKS)
def test_numpy_forward_peak_is_predicted(block, cfg):
    """One BLAS thread: one tile / row block at a time, so the peak is deterministic."""
    fn = _numpy_call(block, cfg)
    with threadpool_limits(1, "blas"):
        fn()
        measured = peak_numpy(fn)
    predicted = costs.predicted_peak_bytes(block, cfg, MB, MT, 4, threads=1, backend="numpy")
    assert _close(measured, predicted), (measured, predicted)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("shape", [(1, 512, 16, 4), (3, 100, 48, 3)], ids=["split-rows", "odd"])
def test_numpy_attention_tiles_are_predicted(shape, causal):
    """Row-split tiles with a tiny d_k (the (r, T) causal mask is the tile's largest array) and
    sizes that are not powers of two (buffers smaller than NumPy's 8192 elements)."""
    b, t, d, h = shape
    cfg = MEM.replace(d_model=d, n_heads=h, d_ff=4 * d, max_position=t)
    gen = np.random.default_rng(0)
    q, k, v = (gen.standard_normal((b, h, t, d // h)).astype(np.float32) for _ in range(3))
    p = init_params("mha", cfg, 0, dtype=np.float32)
    x = gen.standard_normal((b, t, d)).astype(np.float32)
    calls = {"attention": lambda: tnp.scaled_dot_product_attention(q, k, v, causal=causal),
             "mha": lambda: tnp.multi_head_attention(p, x, x, h, causal=causal)}
    for block, fn in calls.items():
        with threadpool_limits(1, "blas"):
            fn()
            measured = peak_numpy(fn)
        predicted = costs.predicted_peak_bytes(block, cfg, b, t, 4, causal=causal, threads=1,
                                               backend="numpy")
        assert abs(predicted - measured) <= 16 * 1024, (block, measured, predicted)


@pytest.mark.parametrize("block", ["attention", "mha", "ffn", "encoder_layer"])
def test_numpy_threads_stay_between_one_and_all_workspaces(block):
    """Two BLAS threads: how far the workers' tiles and blocks overlap depends on timing, so
    the peak lies between the one-thread prediction and the model's (every worker at its
    largest) plus the thread pool's Python objects."""
    fn = _numpy_call(block, MEM)
    with threadpool_limits(2, "blas"):
        fn()
        measured = [peak_numpy(fn) for _ in range(3)]
    one, two = (costs.predicted_peak_bytes(block, MEM, MB, MT, 4, threads=n, backend="numpy")
                for n in (1, 2))
    assert one - 16 * 1024 <= min(measured), (measured, one)
    assert max(measured) <= two + 64 * 1024, (measured, two)


def test_numpy_attention_peak_is_matrix_and_output_at_long_sequences():
    """What the harness checks at T >= 1024: B·H·T·(T + d_v) elements plus a bounded tile
    workspace, within 5%, measured and predicted alike."""
    cfg = MEM.replace(d_model=32, n_heads=2)
    b, t = 1, 1024
    gen = np.random.default_rng(0)
    q, k, v = (gen.standard_normal((b, 2, t, 16)).astype(np.float32) for _ in range(3))
    fn = lambda: tnp.scaled_dot_product_attention(q, k, v)              # noqa: E731
    fn()
    measured = peak_numpy(fn)
    predicted = costs.predicted_peak_bytes("attention", cfg, b, t, 4, threads=blas_threads(),
                                           backend="numpy")
    theory = b * 2 * t * (t + 16) * 4
    assert measured == pytest.approx(theory, rel=0.05)
    assert predicted == pytest.approx(measured, rel=0.05)


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
    with threadpool_limits(1, "blas"):
        np_fn()
        measured = peak_numpy(np_fn)
    assert _close(measured, costs.predicted_peak_bytes(block, MEM, MB, MT, 4, causal=True,
                                                       threads=1, backend="numpy"))
    t_fn = _torch_mem_call(block, MEM, "explicit", causal=True)
    t_fn()
    assert _close(peak_torch_cpu(t_fn), costs.predicted_peak_bytes(
        block, MEM, MB, MT, 4, causal=True, backend="torch"))


def _fresh_grads_step(fn, leaves):
    """One forward+backward that allocates every gradient afresh, as bench.impls.prepare's step
    does (it sets .grad to None after each backward)."""
    def step():
        _loss(fn()).backward()
        for leaf in leaves:
            leaf.grad = None
    return step


def _slack(measured, predicted):
    """measured <= predicted up to the 0-d tensors torch makes of Python scalars (bytes)."""
    return measured <= predicted + 1024 and predicted <= 1.6 * measured


@pytest.mark.parametrize("attn_impl", ["explicit", "sdpa"])
@pytest.mark.parametrize("block", [*BLOCKS[:4], *(pytest.param(b, marks=pytest.mark.slow)
                                                 for b in BLOCKS[4:])])
def test_forward_backward_peak_is_an_upper_bound(block, attn_impl):
    fn = _torch_call(block, MEM, attn_impl, requires_grad=True, b=MB, t=MT)
    step = _fresh_grads_step(fn, fn.leaves)
    step()
    measured = peak_torch_cpu(step)
    predicted = costs.predicted_peak_bytes(block, MEM, MB, MT, 4, attn_impl, "forward+backward",
                                           threads=torch.get_num_threads())
    assert _slack(measured, predicted), (measured, predicted)


# ---- the libraries' materialised attention (attn_impl="library"), through the harness ----

def _library_case(impl, block, mode="forward", causal=False, b=MB, t=MT):
    from bench.case import Case

    return Case(impl=impl, block=block, batch=b, seq_len=t, d_model=MEM.d_model,
                n_heads=MEM.n_heads, d_ff=MEM.d_ff, layers=2, precision="fp32", mode=mode,
                causal=causal, vocab_size=MEM.vocab_size, threads=torch.get_num_threads())


def _harness_peak(case):
    """(measured, predicted) for a case as bench builds it, attn_impl from bench.impls.prepare."""
    from bench.impls.prepare import attn_impl_of, model_config, prepare

    prepared = prepare(case)
    prepared.fn()
    measured = peak_torch_cpu(prepared.fn)
    predicted = costs.predicted_peak_bytes(case.block, model_config(case), case.batch,
                                           case.seq_len, 4, attn_impl_of(case.impl, case.block),
                                           case.mode, causal=case.causal, threads=case.threads)
    return measured, predicted


@pytest.mark.parametrize("impl, block, causal, b, t", [
    ("torch-nn", "attention", False, MB, MT), ("torch-nn", "attention", True, 3, 100),
    ("hf-bert", "encoder_layer", False, MB, MT), ("hf-bert", "encoder_layer", False, 1, 128),
    ("hf-bert", "encoder", False, MB, MT), ("hf-bert", "model", False, MB, MT)])
def test_library_forward_peak_is_predicted(impl, block, causal, b, t):
    """torch.nn's MATH sdpa and HF's eager attention hold scores and probabilities at once."""
    measured, predicted = _harness_peak(_library_case(impl, block, causal=causal, b=b, t=t))
    assert _close(measured, predicted), (measured, predicted)
    matrix = b * MEM.n_heads * t * t * 4
    assert measured > 2 * matrix


def test_library_mha_peak_is_predicted():
    """HF's BertSelfAttention and W_O, with P held as BertAttention holds it."""
    from transformers.models.bert import modeling_bert as hf

    from bench.impls.prepare import hf_bert_config, model_config

    case = _library_case("hf-bert", "encoder_layer")
    attention = hf.BertAttention(hf_bert_config(case, model_config(case))).eval()
    x = torch.randn(MB, MT, MEM.d_model)

    def call():
        with torch.inference_mode():
            context, weights = attention.self(x)
            return attention.output.dense(context), weights
    call()
    predicted = costs.predicted_peak_bytes("mha", MEM, MB, MT, 4, "library")
    assert _close(peak_torch_cpu(call), predicted)


@pytest.mark.parametrize("block", ["mha", "encoder_layer"])
def test_torch_nn_fast_path_is_bounded_by_the_explicit_model(block):
    """torch.nn's eval fast path materialises one matrix (not in place): explicit bounds it."""
    measured, predicted = _harness_peak(_library_case("torch-nn", block))
    assert measured <= predicted <= 1.3 * measured, (measured, predicted)


@pytest.mark.parametrize("impl, block", [("torch-nn", "attention"), ("hf-bert", "encoder_layer")])
def test_library_forward_backward_peak_is_an_upper_bound(impl, block):
    measured, predicted = _harness_peak(_library_case(impl, block, mode="forward+backward"))
    assert _slack(measured, predicted), (measured, predicted)
