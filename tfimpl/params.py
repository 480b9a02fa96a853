"""One parameter layout for both backends: a flat mapping of dotted names to arrays.

Names follow the torch `nn.Linear` convention, `weight` is `(out, in)` and `y = x @ W.T + b`,
so a state dict can be translated (tfimpl.loaders) and the same seeded weights handed to the
NumPy backend, the PyTorch backend and the library references alike. The names, per kind:

    mha            q.weight q.bias k.weight k.bias v.weight v.bias o.weight o.bias
    ffn            ff1.weight ff1.bias ff2.weight ff2.bias
    encoder_layer  self_attn.*  ffn.*  norm1.*  norm2.*
    decoder_layer  self_attn.*  cross_attn.*  ffn.*  norm1.*  norm2.*  norm3.*
    encoder        layers.{i}.*  (+ norm.* when cfg.final_norm)
    decoder        layers.{i}.*  (+ norm.* when cfg.final_norm), cfg.n_decoder_layers layers
    transformer    encoder.*  decoder.*
    bert           embeddings.{word,position,token_type}.weight  embeddings.norm.*
                   encoder.layers.{i}.*  pooler.weight  pooler.bias
    gpt            embeddings.word.weight (V, D, also the tied LM head)  embeddings.position.weight
                   layers.{i}.* (encoder_layer names; pre-norm, causal)  norm.* (final, cfg.final_norm)
    lstm, gru      weight_ih_l{k} (G, D)  weight_hh_l{k} (G, D)  bias_ih_l{k}  bias_hh_l{k} (G,),
                   G = 4D (LSTM) or 3D (GRU), hidden size = input size = D, k < cfg.n_layers:
                   torch.nn.LSTM / nn.GRU's own names and gate order (tfimpl.numpy.recurrent)

Initial values (one `np.random.default_rng(seed)`, drawn in name order, so the same seed gives
the same weights in any dtype): weights and embeddings ~ N(0, 0.02²) as in BERT; biases are
small random numbers too (not zeros) so that parity tests exercise them; layer-norm weights are
1 + N(0, 0.02²) and their biases N(0, 0.02²).
"""

from __future__ import annotations

import numpy as np

from tfimpl.config import ModelConfig

KINDS = ("attention", "mha", "ffn", "encoder_layer", "decoder_layer", "encoder", "decoder",
         "transformer", "bert", "gpt", "lstm", "gru")
RECURRENT_GATES = {"lstm": 4, "gru": 3}
INIT_STD = 0.02


# ---- the layout: names and shapes, nothing random ----------------------------------------

def _linear(name: str, n_out: int, n_in: int) -> dict[str, tuple[int, ...]]:
    return {f"{name}.weight": (n_out, n_in), f"{name}.bias": (n_out,)}


def _norm(name: str, d: int) -> dict[str, tuple[int, ...]]:
    return {f"{name}.weight": (d,), f"{name}.bias": (d,)}


def _prefixed(prefix: str, shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.{name}": shape for name, shape in shapes.items()}


def _mha_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    d = cfg.d_model
    return {**_linear("q", d, d), **_linear("k", d, d), **_linear("v", d, d), **_linear("o", d, d)}


def _ffn_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    return {**_linear("ff1", cfg.d_ff, cfg.d_model), **_linear("ff2", cfg.d_model, cfg.d_ff)}


def _encoder_layer_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    return {**_prefixed("self_attn", _mha_shapes(cfg)), **_prefixed("ffn", _ffn_shapes(cfg)),
            **_norm("norm1", cfg.d_model), **_norm("norm2", cfg.d_model)}


def _decoder_layer_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    return {**_prefixed("self_attn", _mha_shapes(cfg)), **_prefixed("cross_attn", _mha_shapes(cfg)),
            **_prefixed("ffn", _ffn_shapes(cfg)), **_norm("norm1", cfg.d_model),
            **_norm("norm2", cfg.d_model), **_norm("norm3", cfg.d_model)}


def _stack_shapes(layer_shapes: dict[str, tuple[int, ...]], n_layers: int,
                  cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for i in range(n_layers):
        shapes.update(_prefixed(f"layers.{i}", layer_shapes))
    if cfg.final_norm:
        shapes.update(_norm("norm", cfg.d_model))
    return shapes


def recurrent_shapes(kind: str, input_size: int, hidden_size: int,
                     n_layers: int) -> dict[str, tuple[int, ...]]:
    """torch.nn.LSTM / nn.GRU's layout: per layer k, weight_ih_l{k} (G, I_k), weight_hh_l{k}
    (G, h), bias_ih_l{k}, bias_hh_l{k} (G,), with G = 4h or 3h and I_k = I for k = 0, h after."""
    gates = RECURRENT_GATES[kind] * hidden_size
    shapes: dict[str, tuple[int, ...]] = {}
    for k in range(n_layers):
        n_in = input_size if k == 0 else hidden_size
        shapes.update({f"weight_ih_l{k}": (gates, n_in), f"weight_hh_l{k}": (gates, hidden_size),
                       f"bias_ih_l{k}": (gates,), f"bias_hh_l{k}": (gates,)})
    return shapes


def param_shapes(kind: str, cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every parameter of `kind` (the layout, in a fixed order)."""
    if kind == "attention":
        return {}
    if kind == "mha":
        return _mha_shapes(cfg)
    if kind == "ffn":
        return _ffn_shapes(cfg)
    if kind == "encoder_layer":
        return _encoder_layer_shapes(cfg)
    if kind == "decoder_layer":
        return _decoder_layer_shapes(cfg)
    if kind == "encoder":
        return _stack_shapes(_encoder_layer_shapes(cfg), cfg.n_layers, cfg)
    if kind == "decoder":
        return _stack_shapes(_decoder_layer_shapes(cfg), cfg.n_decoder_layers, cfg)
    if kind == "transformer":
        return {**_prefixed("encoder", param_shapes("encoder", cfg)),
                **_prefixed("decoder", param_shapes("decoder", cfg))}
    if kind == "bert":
        d = cfg.d_model
        return {"embeddings.word.weight": (cfg.vocab_size, d),
                "embeddings.position.weight": (cfg.max_position, d),
                "embeddings.token_type.weight": (cfg.type_vocab_size, d),
                **_norm("embeddings.norm", d),
                **_prefixed("encoder", param_shapes("encoder", cfg)),
                **_linear("pooler", d, d)}
    if kind == "gpt":
        return {"embeddings.word.weight": (cfg.vocab_size, cfg.d_model),
                "embeddings.position.weight": (cfg.max_position, cfg.d_model),
                **_stack_shapes(_encoder_layer_shapes(cfg), cfg.n_layers, cfg)}
    if kind in RECURRENT_GATES:
        return recurrent_shapes(kind, cfg.d_model, cfg.d_model, cfg.n_layers)
    raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


# ---- values -------------------------------------------------------------------------------

def _is_norm(name: str) -> bool:
    """True for layer-norm parameters: norm.weight, layers.3.norm2.bias, embeddings.norm.weight."""
    parts = name.split(".")
    return len(parts) >= 2 and parts[-2].startswith("norm")


def init_params(kind: str, cfg: ModelConfig, seed: int, dtype=np.float64) -> dict[str, np.ndarray]:
    """Seeded parameters of `kind` for `cfg` as a dict name -> np.ndarray of `dtype`.

    Values are drawn in float64 from `np.random.default_rng(seed)` in name order, then cast, so
    the float32 weights are the rounded float64 ones (parity tests rely on that).
    """
    if not isinstance(cfg, ModelConfig):
        raise ValueError(f"cfg must be a tfimpl.config.ModelConfig, got {type(cfg).__name__}")
    rng = np.random.default_rng(seed)
    params: dict[str, np.ndarray] = {}
    for name, shape in param_shapes(kind, cfg).items():
        values = rng.standard_normal(shape) * INIT_STD
        if _is_norm(name) and name.endswith(".weight"):
            values += 1.0
        params[name] = values.astype(dtype, copy=False)
    return params


def subtree(params: dict, prefix: str) -> dict:
    """The entries under `prefix` with the prefix stripped: subtree(p, "self_attn")["q.weight"]."""
    head = prefix if prefix.endswith(".") else prefix + "."
    sub = {name[len(head):]: value for name, value in params.items() if name.startswith(head)}
    if not sub:
        raise ValueError(f"prefix {prefix!r} matches no parameter; names start with "
                         f"{sorted({n.split('.')[0] for n in params})}")
    return sub


def count(params: dict) -> int:
    """Total number of scalars (works for NumPy arrays and torch tensors alike)."""
    return int(sum(int(np.prod(value.shape)) for value in params.values()))


def to_torch(params: dict, dtype=None, device="cpu", requires_grad: bool = False) -> dict:
    """The same mapping as torch tensors (default float32), optionally as leaf tensors with grad."""
    import torch

    dtype = torch.float32 if dtype is None else dtype
    out = {}
    for name, value in params.items():
        tensor = value.detach() if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))
        tensor = tensor.to(device=device, dtype=dtype)
        out[name] = tensor.requires_grad_(requires_grad) if requires_grad else tensor
    return out


def to_numpy(params: dict, dtype=np.float64) -> dict[str, np.ndarray]:
    """Torch tensors (or arrays) -> NumPy arrays of `dtype` (the inverse of `to_torch`)."""
    out = {}
    for name, value in params.items():
        if hasattr(value, "detach"):
            value = value.detach().cpu().double().numpy()
        out[name] = np.asarray(value).astype(dtype, copy=False)
    return out
