"""Case -> a ready-to-call function and its inputs, built outside the timed region.

`prepare(case)` builds everything once: the model's weights (seeded: `tfimpl.params.init_params(
kind, cfg, case.seed)`, cast to the case's precision), its inputs (`np.random.default_rng(seed+1)`
standard normal, or token ids for the whole model) and a closure `fn()` that runs ONE forward (or
forward + backward). Timing then calls `fn` many times and nothing else.

Implementations (`impl`):
  numpy       tfimpl.numpy (from scratch; forward only)
  torch       tfimpl.torch, attn_impl="explicit" (materialised softmax(QKᵀ/√d_k)·V)
  torch-sdpa  tfimpl.torch, attn_impl="sdpa" (torch's fused scaled_dot_product_attention)
  torch-nn    torch's own modules: F.scaled_dot_product_attention under the MATH backend (torch's
              materialised reference), nn.MultiheadAttention, nn.Sequential FFN,
              nn.TransformerEncoderLayer / nn.TransformerEncoder (batch_first)
  hf-bert     HuggingFace BertLayer / BertEncoder / BertModel from a BertConfig, eager attention

Modes: `forward` runs under `torch.inference_mode()` (torch.nn's eval fast path may then run:
`Prepared.fastpath` says so and `flops_fn` turns it off, because FlopCounterMode counts 0 inside
it); `forward+backward` makes weights and float inputs require grad, runs forward,
`out.sum().backward()`, and drops the grads (set to None) so every call allocates them afresh.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from bench.case import Case
from tfimpl.config import ModelConfig


class Unsupported(Exception):
    """The case asks for a combination an implementation does not have (recorded `skipped`)."""


PARAM_KIND = {"attention": "attention", "mha": "mha", "ffn": "ffn",
              "encoder_layer": "encoder_layer", "encoder": "encoder", "model": "bert"}
BERT_MAX_POSITION = 512


def supports(impl: str, block: str) -> bool:
    """True when `impl` has `block` (the table is bench.capabilities.IMPL_BLOCKS)."""
    from bench import capabilities

    return capabilities.supports(impl, block)


def backend_of(impl: str) -> str:
    return "numpy" if impl == "numpy" else "torch"


def attn_impl_of(impl: str, block: str | None = None) -> str:
    """How attention is computed, in tfimpl.costs' terms (its memory model's `attn_impl`):
    "sdpa" fused (torch-sdpa); "library" for the libraries' materialised attention that holds
    scores and probabilities at once (torch-nn's attention block, torch's MATH sdpa; hf-bert's
    eager attention); "explicit" otherwise (our in-place path; also torch-nn's mha and layers,
    whose eval fast path materialises one matrix and whose training path is fused, so the
    explicit model bounds both). Without `block`, torch-nn gets "library" (the larger)."""
    if impl == "torch-sdpa":
        return "sdpa"
    if impl == "hf-bert" or (impl == "torch-nn" and block in (None, "attention")):
        return "library"
    return "explicit"


def model_config(case: Case) -> ModelConfig:
    """The tfimpl ModelConfig of a case (BERT-sized position table grown to fit seq_len)."""
    return ModelConfig(d_model=case.d_model, n_heads=case.n_heads, d_ff=case.d_ff,
                       n_layers=case.layers, vocab_size=case.vocab_size,
                       max_position=max(BERT_MAX_POSITION, case.seq_len),
                       activation=case.activation, norm_first=case.norm_first)


@dataclass
class Prepared:
    """A case made ready: call `fn()` to run it once.

    output(): float64 NumPy copy of the last call's output (hidden states for the model).
    attention_weights(): the (B, H, T, T) attention probabilities as computed (NumPy array or CPU
        tensor, at the case's precision; bench.accuracy widens them), or None when the
        implementation does not expose them (fused kernels, torch.nn, HF, FFN).
    flops_fn: what FLOP counting should call (fn, or fn with torch.nn's fast path off).
    fastpath: True when torch.nn's eval fast path may run in `fn` (timing), None if n/a.
    """

    fn: Callable[[], Any]
    output: Callable[[], np.ndarray]
    backend: str
    device: str
    attention_weights: Callable[[], np.ndarray | None] = lambda: None
    flops_fn: Callable[[], Any] | None = None
    fastpath: bool | None = None
    teardown: Callable[[], None] = lambda: None
    # one call giving (output as float64 NumPy, attention weights) where the implementation can
    # return both at once; None: run fn(), then output() and attention_weights()
    evaluate: Callable[[], tuple] | None = None

    def __post_init__(self):
        if self.flops_fn is None:
            self.flops_fn = self.fn

    def outputs(self, called: bool = True) -> tuple:
        """(output, attention weights or None) for the accuracy check.

        called: fn() has run already (its last output is reused); else one call is made.
        """
        if self.evaluate is not None:
            return self.evaluate()
        if not called:
            self.fn()
        return self.output(), self.attention_weights()


# --------------------------------------------------------------------------------------------
# inputs and weights (NumPy float64 first: every backend and precision sees the same numbers)


def make_inputs(case: Case) -> dict[str, np.ndarray]:
    """Seeded inputs: q, k, v (B, H, T, d_k) for attention, x (B, T, D), or token ids (B, T)."""
    rng = np.random.default_rng(case.seed + 1)
    B, T, D, H = case.batch, case.seq_len, case.d_model, case.n_heads
    if case.block == "attention":
        shape = (B, H, T, D // H)                                   # (B, H, T, d_k)
        return {"q": rng.standard_normal(shape), "k": rng.standard_normal(shape),
                "v": rng.standard_normal(shape)}
    if case.block == "model":
        return {"input_ids": rng.integers(0, case.vocab_size, size=(B, T), dtype=np.int64)}
    return {"x": rng.standard_normal((B, T, D))}                   # (B, T, D)


def make_params(case: Case, cfg: ModelConfig) -> dict[str, np.ndarray]:
    from tfimpl.params import init_params

    return init_params(PARAM_KIND[case.block], cfg, case.seed)


def _modules(package: str):
    """The attention, feed_forward, layers, bert submodules of tfimpl.numpy or tfimpl.torch.

    (importlib, because the packages re-export functions of the same names as submodules.)
    """
    import importlib

    return tuple(importlib.import_module(f"{package}.{name}")
                 for name in ("attention", "feed_forward", "layers", "bert"))


def _check(case: Case) -> None:
    from bench import capabilities, precision

    if not supports(case.impl, case.block):
        blocks = capabilities.IMPL_BLOCKS.get(case.impl, ())
        raise Unsupported(f"impl {case.impl} has no block {case.block} "
                          f"(it has: {', '.join(blocks) or 'none'})")
    if case.causal and case.block not in capabilities.CAUSAL_BLOCKS:
        raise Unsupported(f"causal masking is only wired for attention and mha, not {case.block}")
    reason = precision.supported(case.impl, case.precision, case.device)
    if reason:
        raise Unsupported(reason)
    if case.mode not in capabilities.IMPL_MODES[case.impl]:
        raise Unsupported(f"impl {case.impl} runs modes {capabilities.IMPL_MODES[case.impl]}, "
                          f"not {case.mode}")


def prepare(case: Case) -> Prepared:
    """Build the callable for `case` (raises Unsupported for combinations that do not exist)."""
    _check(case)
    builder = {"numpy": _prepare_numpy, "torch": _prepare_tfimpl_torch,
               "torch-sdpa": _prepare_tfimpl_torch, "torch-nn": _prepare_torch_nn,
               "hf-bert": _prepare_hf_bert}[case.impl]
    return builder(case)


# --------------------------------------------------------------------------------------------
# NumPy


def _prepare_numpy(case: Case) -> Prepared:
    if case.mode != "forward":
        raise Unsupported("numpy implements the forward pass only")
    from bench import precision
    attention, feed_forward, layers, bert = _modules("tfimpl.numpy")

    cfg = model_config(case)
    dtype = precision.cast_dtype(case.precision, "numpy")
    p = {k: v.astype(dtype) for k, v in make_params(case, cfg).items()}
    inputs = {k: (v if v.dtype.kind == "i" else v.astype(dtype))
              for k, v in make_inputs(case).items()}
    call = _numpy_call(case, cfg, p, inputs, attention, feed_forward, layers, bert)
    last: list = [None]

    def fn():
        last[0] = call()
        return last[0]

    def with_weights():                           # (out, weights) of one call
        if case.block == "attention":
            return attention.scaled_dot_product_attention(
                inputs["q"], inputs["k"], inputs["v"], causal=case.causal, return_weights=True)
        return attention.multi_head_attention(p, inputs["x"], inputs["x"], case.n_heads,
                                              causal=case.causal, return_weights=True)

    def weights():
        if case.block not in ("attention", "mha"):
            return None
        return with_weights()[1]       # bench.accuracy widens it chunk by chunk

    def evaluate():                    # output and weights from one call
        out, w = with_weights()
        return _numpy_out(out), w

    return Prepared(fn=fn, output=lambda: _numpy_out(last[0]), backend="numpy", device="cpu",
                    attention_weights=weights,
                    evaluate=evaluate if case.block in ("attention", "mha") else None)


def _numpy_call(case, cfg, p, inputs, attention, feed_forward, layers, bert):
    block = case.block
    if block == "attention":
        q, k, v = inputs["q"], inputs["k"], inputs["v"]
        return lambda: attention.scaled_dot_product_attention(q, k, v, causal=case.causal)
    if block == "mha":
        x = inputs["x"]
        return lambda: attention.multi_head_attention(p, x, x, case.n_heads, causal=case.causal)
    if block == "ffn":
        x = inputs["x"]
        return lambda: feed_forward.feed_forward(p, x, activation=case.activation)
    if block == "encoder_layer":
        x = inputs["x"]
        return lambda: layers.encoder_layer(p, x, cfg)
    if block == "encoder":
        x = inputs["x"]
        return lambda: layers.encoder(p, x, cfg)
    ids = inputs["input_ids"]
    return lambda: bert.bert(p, ids, cfg)[0]


def _numpy_out(out) -> np.ndarray:
    if out is None:
        raise RuntimeError("output() called before fn()")
    return np.array(out, dtype=np.float64)


# --------------------------------------------------------------------------------------------
# torch: shared plumbing


def _torch_device(case: Case):
    import torch

    if case.device == "cuda" and not torch.cuda.is_available():
        raise Unsupported("device cuda requested but torch.cuda.is_available() is False")
    return torch.device(case.device)


def _to_torch_inputs(case: Case, dtype, device, requires_grad: bool) -> dict:
    import torch

    out = {}
    for name, arr in make_inputs(case).items():
        if arr.dtype.kind == "i":
            out[name] = torch.from_numpy(arr).to(device)
        else:
            t = torch.from_numpy(arr).to(device=device, dtype=dtype)
            out[name] = t.requires_grad_(requires_grad)
    return out


def _torch_precision(case: Case):
    """(storage dtype of weights and inputs, autocast context factory)."""
    from bench import precision

    return precision.cast_dtype(case.precision, "torch"), (
        lambda: precision.autocast(case.precision, case.device))


def _torch_runner(case: Case, call: Callable, leaves: list) -> tuple[Callable, Callable]:
    """Wrap `call` (the forward) into fn() for the case's mode; returns (fn, output).

    `call` returns the output tensor, or a tuple whose first item is the output (the model:
    hidden states, pooled). The backward's loss is the sum of every returned tensor, so the
    whole model (pooler included) is differentiated, as tfimpl.costs.backward_flops counts it.
    """
    import torch

    _, autocast = _torch_precision(case)
    last: list = [None]

    if case.mode == "forward":
        def fn():
            with torch.inference_mode(), autocast():
                out = call()
            last[0] = out[0] if isinstance(out, tuple) else out
            return last[0]
    else:
        def fn():
            with autocast():
                out = call()
            outs = out if isinstance(out, tuple) else (out,)
            sum(o.sum() for o in outs).backward()
            for t in leaves:
                t.grad = None
            last[0] = outs[0].detach()
            return last[0]

    def output() -> np.ndarray:
        if last[0] is None:
            raise RuntimeError("output() called before fn()")
        return last[0].detach().to(device="cpu", dtype=torch.float64).numpy()

    return fn, output


def _as_float64(t) -> np.ndarray:
    import torch

    return t.detach().to(device="cpu", dtype=torch.float64).numpy()


# --------------------------------------------------------------------------------------------
# tfimpl.torch (explicit or sdpa attention)


def _prepare_tfimpl_torch(case: Case) -> Prepared:
    import torch
    attention, feed_forward, layers, bert = _modules("tfimpl.torch")
    from tfimpl.params import to_torch

    cfg = model_config(case)
    device = _torch_device(case)
    dtype, _ = _torch_precision(case)
    grad = case.mode != "forward"
    p = to_torch(make_params(case, cfg), dtype=dtype, device=device, requires_grad=grad)
    inputs = _to_torch_inputs(case, dtype, device, requires_grad=grad)
    impl = attn_impl_of(case.impl)
    block = case.block
    if block == "attention":
        q, k, v = inputs["q"], inputs["k"], inputs["v"]
        call = lambda: attention.scaled_dot_product_attention(   # noqa: E731
            q, k, v, causal=case.causal, attn_impl=impl)
    elif block == "mha":
        x = inputs["x"]
        call = lambda: attention.multi_head_attention(            # noqa: E731
            p, x, x, case.n_heads, causal=case.causal, attn_impl=impl)
    elif block == "ffn":
        x = inputs["x"]
        call = lambda: feed_forward.feed_forward(p, x, activation=case.activation)  # noqa: E731
    elif block == "encoder_layer":
        x = inputs["x"]
        call = lambda: layers.encoder_layer(p, x, cfg, attn_impl=impl)  # noqa: E731
    elif block == "encoder":
        x = inputs["x"]
        call = lambda: layers.encoder(p, x, cfg, attn_impl=impl)        # noqa: E731
    else:
        ids = inputs["input_ids"]
        call = lambda: tuple(bert.bert(p, ids, cfg, attn_impl=impl))   # noqa: E731
    leaves = [t for t in list(p.values()) + list(inputs.values()) if t.requires_grad]
    fn, output = _torch_runner(case, call, leaves)

    def with_weights():
        with torch.inference_mode(), _torch_precision(case)[1]():   # same autocast as timed
            if block == "attention":
                return attention.scaled_dot_product_attention(
                    inputs["q"], inputs["k"], inputs["v"], causal=case.causal,
                    return_weights=True, attn_impl="explicit")
            return attention.multi_head_attention(
                p, inputs["x"], inputs["x"], case.n_heads, causal=case.causal,
                return_weights=True, attn_impl="explicit")

    def weights():
        if impl != "explicit" or block not in ("attention", "mha"):
            return None
        return with_weights()[1].detach().cpu()   # bench.accuracy widens it chunk by chunk

    def evaluate():                               # output and weights from one call
        out, w = with_weights()
        return _as_float64(out), w.detach().cpu()

    explicit_attention = impl == "explicit" and block in ("attention", "mha")
    return Prepared(fn=fn, output=output, backend="torch", device=case.device,
                    attention_weights=weights, evaluate=evaluate if explicit_attention else None)


# --------------------------------------------------------------------------------------------
# torch.nn reference modules


def _nn_activation(name: str):
    """What nn.TransformerEncoderLayer accepts: the strings keep its fast path available."""
    import torch.nn.functional as F

    if name in ("relu", "gelu"):
        return name
    return lambda x: F.gelu(x, approximate="tanh")


def _nn_act_module(name: str):
    import torch.nn as nn

    return {"relu": nn.ReLU(), "gelu": nn.GELU(), "gelu_tanh": nn.GELU(approximate="tanh")}[name]


def _load_state(module, state: dict, what: str) -> None:
    import torch

    state = {k: (torch.as_tensor(v) if not isinstance(v, torch.Tensor) else v)
             for k, v in state.items()}
    missing, unexpected = module.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RuntimeError(f"{what}: weights do not fit the module "
                           f"(missing {missing[:4]}, unexpected {unexpected[:4]})")


def _nn_state(case: Case, cfg: ModelConfig, params: dict) -> dict:
    """Our seeded parameters in the torch.nn module's state-dict layout (via tfimpl.loaders)."""
    from tfimpl import loaders

    if case.block == "ffn":                     # nn.Sequential(Linear, act, Linear): 0 and 2
        return {"0.weight": params["ff1.weight"], "0.bias": params["ff1.bias"],
                "2.weight": params["ff2.weight"], "2.bias": params["ff2.bias"]}
    convert = {"mha": loaders.to_torch_mha_state_dict,
               "encoder_layer": loaders.to_torch_encoder_layer_state_dict,
               "encoder": loaders.to_torch_encoder_state_dict}[case.block]
    return convert(params)


def _prepare_torch_nn(case: Case) -> Prepared:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    cfg = model_config(case)
    device = _torch_device(case)
    dtype, _ = _torch_precision(case)
    grad = case.mode != "forward"
    inputs = _to_torch_inputs(case, dtype, device, requires_grad=grad)
    D, H, T = case.d_model, case.n_heads, case.seq_len
    causal_mask = (torch.ones(T, T, dtype=torch.bool, device=device).triu(1)
                   if case.causal else None)               # (T, T) True = masked out (torch.nn)
    module = None
    fastpath = None
    if case.block == "attention":
        q, k, v = inputs["q"], inputs["k"], inputs["v"]

        def call():
            with sdpa_kernel(SDPBackend.MATH):
                return F.scaled_dot_product_attention(q, k, v, is_causal=case.causal)
    else:
        x = inputs["x"]
        if case.block == "mha":
            module = nn.MultiheadAttention(D, H, dropout=0.0, batch_first=True)
            call = lambda: module(x, x, x, need_weights=False, attn_mask=causal_mask,  # noqa: E731
                                  is_causal=case.causal)[0]
        elif case.block == "ffn":
            module = nn.Sequential(nn.Linear(D, case.d_ff), _nn_act_module(case.activation),
                                   nn.Linear(case.d_ff, D))
            call = lambda: module(x)                                             # noqa: E731
        else:
            layer = nn.TransformerEncoderLayer(
                D, H, case.d_ff, dropout=0.0, activation=_nn_activation(case.activation),
                layer_norm_eps=cfg.layer_norm_eps, batch_first=True, norm_first=case.norm_first)
            module = (layer if case.block == "encoder_layer" else
                      nn.TransformerEncoder(layer, case.layers, enable_nested_tensor=False))
            call = lambda: module(x)                                             # noqa: E731
        module.to(device=device, dtype=dtype).eval()       # first: loading copies into its dtype
        _load_state(module, _nn_state(case, cfg, make_params(case, cfg)), f"torch-nn {case.block}")
        module.requires_grad_(grad)
        if case.block != "ffn" and case.mode == "forward":
            fastpath = bool(torch.backends.mha.get_fastpath_enabled())
    params = list(module.parameters()) if module is not None else []
    leaves = [t for t in params + list(inputs.values()) if t.requires_grad]
    fn, output = _torch_runner(case, call, leaves)

    def flops_fn():
        with _fastpath_disabled():
            return fn()

    return Prepared(fn=fn, output=output, backend="torch", device=case.device,
                    flops_fn=flops_fn if fastpath else fn, fastpath=fastpath)


@contextlib.contextmanager
def _fastpath_disabled():
    import torch

    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


# --------------------------------------------------------------------------------------------
# HuggingFace BERT


def hf_bert_config(case: Case, cfg: ModelConfig):
    """A BertConfig of the case's sizes: no dropout, eager (materialised) attention."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import BertConfig

    if case.norm_first:
        raise Unsupported("BERT is post-norm; hf-bert has no norm_first")
    act = {"relu": "relu", "gelu": "gelu", "gelu_tanh": "gelu_new"}[case.activation]
    return BertConfig(vocab_size=cfg.vocab_size, hidden_size=cfg.d_model,
                      num_hidden_layers=cfg.n_layers, num_attention_heads=cfg.n_heads,
                      intermediate_size=cfg.d_ff, hidden_act=act, hidden_dropout_prob=0.0,
                      attention_probs_dropout_prob=0.0, max_position_embeddings=cfg.max_position,
                      type_vocab_size=cfg.type_vocab_size, layer_norm_eps=cfg.layer_norm_eps,
                      attn_implementation="eager")


def _hf_state(case: Case, cfg: ModelConfig) -> dict:
    """Our seeded weights of the case's block in HF layout (tfimpl.loaders.to_hf_bert_state_dict).

    For a layer or the encoder the block's own parameters (the same numbers numpy and torch get
    for that block) are placed into a BERT whose embeddings are a dummy one-token table, and the
    block's part of the HF state dict is kept.
    """
    from tfimpl.loaders import to_hf_bert_state_dict
    from tfimpl.params import init_params

    if case.block == "model":
        return to_hf_bert_state_dict(make_params(case, cfg))
    tiny = cfg.replace(vocab_size=1, max_position=1, n_layers=1)
    bert = {k: v for k, v in init_params("bert", tiny, case.seed).items()
            if not k.startswith("encoder.")}
    block = make_params(case, cfg)
    if case.block == "encoder_layer":
        bert.update({f"encoder.layers.0.{k}": v for k, v in block.items()})
        prefix = "encoder.layer.0."
    else:
        bert.update({f"encoder.{k}": v for k, v in block.items()})
        prefix = "encoder."
    full = to_hf_bert_state_dict(bert)
    return {k[len(prefix):]: v for k, v in full.items() if k.startswith(prefix)}


def _prepare_hf_bert(case: Case) -> Prepared:
    import torch
    from transformers.models.bert import modeling_bert as hf

    cfg = model_config(case)
    if case.block == "encoder_layer":
        cfg = cfg.replace(n_layers=1)
    device = _torch_device(case)
    dtype, _ = _torch_precision(case)
    grad = case.mode != "forward"
    bert_cfg = hf_bert_config(case, cfg)
    torch.manual_seed(case.seed)        # the module's own init runs first; our weights replace it
    module = {"encoder_layer": hf.BertLayer, "encoder": hf.BertEncoder,
              "model": hf.BertModel}[case.block](bert_cfg)
    module.to(device=device, dtype=dtype).eval()           # first: loading copies into its dtype
    _load_state(module, _hf_state(case, cfg), f"hf-bert {case.block}")
    module.requires_grad_(grad)
    inputs = _to_torch_inputs(case, dtype, device, requires_grad=grad)
    if case.block == "model":
        ids = inputs["input_ids"]

        def call():
            out = module(input_ids=ids)
            return out.last_hidden_state, out.pooler_output
    elif case.block == "encoder":
        x = inputs["x"]
        call = lambda: module(x).last_hidden_state                    # noqa: E731
    else:
        x = inputs["x"]
        call = lambda: module(x)                                      # noqa: E731
    leaves = [t for t in list(module.parameters()) + list(inputs.values()) if t.requires_grad]
    fn, output = _torch_runner(case, call, leaves)
    return Prepared(fn=fn, output=output, backend="torch", device=case.device)
