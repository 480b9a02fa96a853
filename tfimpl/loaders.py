"""Translate `torch.nn` and HuggingFace BERT state dicts to our parameter layout, and back.

    from_torch_mha / _encoder_layer / _decoder_layer / _transformer(sd)  torch.nn modules
    from_hf_bert(sd)                                                     transformers.BertModel
    from_hf_gpt2(sd)                                 transformers.GPT2Model / GPT2LMHeadModel
    to_torch_*_state_dict(params), to_hf_bert_state_dict(params),
    to_hf_gpt2_state_dict(params)                                        the inverse (tensors,
        ready for module.load_state_dict, e.g. to build a library reference with our weights)
    config_from_hf_bert(hf_config), config_from_hf_gpt2(hf_config)      -> ModelConfig

`from_*` return NumPy float64 arrays (cast with `.astype` or `tfimpl.params.to_torch`); values
may be torch tensors or NumPy arrays (e.g. from safetensors). The names are listed in
tfimpl.params. torch.nn's MultiheadAttention keeps Q, K and V in one `in_proj_weight` of shape
(3D, D), rows [0, D) for Q, [D, 2D) for K, [2D, 3D) for V; we split it. GPT-2's `Conv1D`
layers store the transpose, weight (in, out) with y = x @ W + b; its c_attn (D, 3D) holds Q, K,
V in column blocks [0, D), [D, 2D), [2D, 3D).
"""

from __future__ import annotations

import re

import numpy as np

from tfimpl.config import ModelConfig


def _to_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().double().numpy()
    return np.asarray(value, dtype=np.float64)


def _take(sd: dict, key: str, where: str):
    try:
        return sd[key]
    except KeyError:
        raise ValueError(f"state dict ({where}) has no key {key!r}; it has e.g. "
                         f"{sorted(sd)[:6]}") from None


def _layer_indices(sd: dict, pattern: str) -> list[int]:
    found = {int(m.group(1)) for key in sd if (m := re.match(pattern, key))}
    if found != set(range(len(found))):
        raise ValueError(f"state dict layer indices {sorted(found)} are not 0..n-1")
    return sorted(found)


# ---- torch.nn -------------------------------------------------------------------------------

def from_torch_mha(sd: dict, prefix: str = "") -> dict[str, np.ndarray]:
    """torch.nn.MultiheadAttention -> q/k/v/o.{weight,bias} (in_proj split into thirds)."""
    where = f"MultiheadAttention at {prefix!r}"
    if prefix + "in_proj_weight" in sd:
        w = _to_numpy(sd[prefix + "in_proj_weight"])                        # (3D, D)
        q_w, k_w, v_w = np.split(w, 3)
    else:                                                                   # kdim/vdim != embed_dim
        q_w, k_w, v_w = (_to_numpy(_take(sd, f"{prefix}{n}_proj_weight", where)) for n in "qkv")
    d = q_w.shape[0]
    if prefix + "in_proj_bias" in sd:
        q_b, k_b, v_b = np.split(_to_numpy(sd[prefix + "in_proj_bias"]), 3)
    else:                                                                   # bias=False
        q_b = k_b = v_b = np.zeros(d)
    out_b = sd.get(prefix + "out_proj.bias")
    return {"q.weight": q_w, "q.bias": q_b, "k.weight": k_w, "k.bias": k_b,
            "v.weight": v_w, "v.bias": v_b,
            "o.weight": _to_numpy(_take(sd, prefix + "out_proj.weight", where)),
            "o.bias": np.zeros(d) if out_b is None else _to_numpy(out_b)}


_FFN_NORMS = (("ffn.ff1", "linear1"), ("ffn.ff2", "linear2"),
              ("norm1", "norm1"), ("norm2", "norm2"), ("norm3", "norm3"))


def _renamed(sd: dict, prefix: str, pairs, where: str) -> dict[str, np.ndarray]:
    out = {}
    for ours, theirs in pairs:
        for leaf in ("weight", "bias"):
            out[f"{ours}.{leaf}"] = _to_numpy(_take(sd, f"{prefix}{theirs}.{leaf}", where))
    return out


def _prefixed(prefix: str, params: dict) -> dict:
    return {f"{prefix}.{name}": value for name, value in params.items()}


def from_torch_encoder_layer(sd: dict, prefix: str = "") -> dict[str, np.ndarray]:
    """torch.nn.TransformerEncoderLayer -> self_attn.*, ffn.*, norm1.*, norm2.*."""
    return {**_prefixed("self_attn", from_torch_mha(sd, prefix + "self_attn.")),
            **_renamed(sd, prefix, _FFN_NORMS[:4], f"TransformerEncoderLayer at {prefix!r}")}


def from_torch_decoder_layer(sd: dict, prefix: str = "") -> dict[str, np.ndarray]:
    """torch.nn.TransformerDecoderLayer -> self_attn.*, cross_attn.* (multihead_attn), ffn.*, norm1-3."""
    return {**_prefixed("self_attn", from_torch_mha(sd, prefix + "self_attn.")),
            **_prefixed("cross_attn", from_torch_mha(sd, prefix + "multihead_attn.")),
            **_renamed(sd, prefix, _FFN_NORMS, f"TransformerDecoderLayer at {prefix!r}")}


def _from_torch_stack(sd: dict, prefix: str, layer_fn) -> dict[str, np.ndarray]:
    out = {}
    for i in _layer_indices(sd, re.escape(prefix) + r"layers\.(\d+)\."):
        out.update(_prefixed(f"layers.{i}", layer_fn(sd, f"{prefix}layers.{i}.")))
    if prefix + "norm.weight" in sd:
        out.update(_renamed(sd, prefix, [("norm", "norm")], "final norm"))
    return out


def from_torch_transformer(sd: dict) -> dict[str, np.ndarray]:
    """torch.nn.Transformer -> encoder.layers.{i}.*, encoder.norm.*, decoder.layers.{i}.*, decoder.norm.*."""
    return {**_prefixed("encoder", _from_torch_stack(sd, "encoder.", from_torch_encoder_layer)),
            **_prefixed("decoder", _from_torch_stack(sd, "decoder.", from_torch_decoder_layer))}


def from_torch_encoder(sd: dict) -> dict[str, np.ndarray]:
    """torch.nn.TransformerEncoder -> layers.{i}.* (+ norm.*)."""
    return _from_torch_stack(sd, "", from_torch_encoder_layer)


# ---- HuggingFace BERT -------------------------------------------------------------------------

_HF_EMBEDDINGS = (("embeddings.word.weight", "embeddings.word_embeddings.weight"),
                  ("embeddings.position.weight", "embeddings.position_embeddings.weight"),
                  ("embeddings.token_type.weight", "embeddings.token_type_embeddings.weight"),
                  ("embeddings.norm.weight", "embeddings.LayerNorm.weight"),
                  ("embeddings.norm.bias", "embeddings.LayerNorm.bias"))
_HF_LAYER = (("self_attn.q", "attention.self.query"), ("self_attn.k", "attention.self.key"),
             ("self_attn.v", "attention.self.value"), ("self_attn.o", "attention.output.dense"),
             ("norm1", "attention.output.LayerNorm"), ("ffn.ff1", "intermediate.dense"),
             ("ffn.ff2", "output.dense"), ("norm2", "output.LayerNorm"))
_HF_IGNORED = re.compile(r"(embeddings\.position_ids|embeddings\.token_type_ids)$")


def _hf_names(n_layers: int, pooler: bool) -> list[tuple[str, str]]:
    """(our name, HuggingFace name) for every parameter of a BertModel."""
    pairs = list(_HF_EMBEDDINGS)
    for i in range(n_layers):
        for ours, theirs in _HF_LAYER:
            for leaf in ("weight", "bias"):
                pairs.append((f"encoder.layers.{i}.{ours}.{leaf}", f"encoder.layer.{i}.{theirs}.{leaf}"))
    if pooler:
        pairs += [("pooler.weight", "pooler.dense.weight"), ("pooler.bias", "pooler.dense.bias")]
    return pairs


def from_hf_bert(sd: dict) -> dict[str, np.ndarray]:
    """transformers BertModel state dict (optionally with a "bert." prefix, as in BertFor*) -> ours.

    Buffers (position_ids, token_type_ids) are ignored; with a "bert." prefix, task heads outside
    it (cls.*, classifier.*) are too. A key we do not know raises ValueError.
    """
    if any(key.startswith("bert.") for key in sd):
        sd = {key[len("bert."):]: value for key, value in sd.items() if key.startswith("bert.")}
    sd = {key: value for key, value in sd.items() if not _HF_IGNORED.search(key)}
    n_layers = len(_layer_indices(sd, r"encoder\.layer\.(\d+)\."))
    pairs = _hf_names(n_layers, pooler="pooler.dense.weight" in sd)
    unknown = sorted(set(sd) - {theirs for _, theirs in pairs})
    if unknown:
        raise ValueError(f"state dict has keys a BertModel does not: {unknown[:5]}")
    return {ours: _to_numpy(_take(sd, theirs, "BertModel")) for ours, theirs in pairs}


def config_from_hf_bert(hf_config) -> ModelConfig:
    """A transformers BertConfig (or its dict) -> ModelConfig."""
    get = hf_config.get if isinstance(hf_config, dict) else lambda k, d=None: getattr(hf_config, k, d)
    act = get("hidden_act", "gelu")
    activation = {"gelu": "gelu", "relu": "relu", "gelu_new": "gelu_tanh",
                  "gelu_pytorch_tanh": "gelu_tanh"}.get(act)
    if activation is None:
        raise ValueError(f"hidden_act must be gelu, relu, gelu_new or gelu_pytorch_tanh, got {act!r}")
    return ModelConfig(d_model=get("hidden_size"), n_heads=get("num_attention_heads"),
                       d_ff=get("intermediate_size"), n_layers=get("num_hidden_layers"),
                       vocab_size=get("vocab_size"), max_position=get("max_position_embeddings"),
                       type_vocab_size=get("type_vocab_size"), activation=activation,
                       layer_norm_eps=get("layer_norm_eps", 1e-12))


def hf_bert_config(cfg: ModelConfig, **overrides):
    """The transformers BertConfig of a ModelConfig (the inverse of config_from_hf_bert);
    `overrides` go to BertConfig (e.g. hidden_dropout_prob=0.0, attn_implementation="eager")."""
    from transformers import BertConfig

    act = {"relu": "relu", "gelu": "gelu", "gelu_tanh": "gelu_new"}[cfg.activation]
    fields = dict(vocab_size=cfg.vocab_size, hidden_size=cfg.d_model,
                  num_hidden_layers=cfg.n_layers, num_attention_heads=cfg.n_heads,
                  intermediate_size=cfg.d_ff, hidden_act=act,
                  max_position_embeddings=cfg.max_position, type_vocab_size=cfg.type_vocab_size,
                  layer_norm_eps=cfg.layer_norm_eps)
    return BertConfig(**{**fields, **overrides})


# ---- the inverse: our params -> torch.nn / HuggingFace state dicts ----------------------------

def _tensor(value):
    import torch

    return value.detach().clone() if hasattr(value, "detach") else torch.from_numpy(np.array(value))


def _cat(values):
    import torch

    return torch.cat([_tensor(v) for v in values])


def to_torch_mha_state_dict(params: dict, prefix: str = "") -> dict:
    """q/k/v/o -> MultiheadAttention's in_proj_weight (3D, D), in_proj_bias, out_proj.*."""
    return {prefix + "in_proj_weight": _cat([params[f"{n}.weight"] for n in "qkv"]),
            prefix + "in_proj_bias": _cat([params[f"{n}.bias"] for n in "qkv"]),
            prefix + "out_proj.weight": _tensor(params["o.weight"]),
            prefix + "out_proj.bias": _tensor(params["o.bias"])}


def _sub(params: dict, head: str) -> dict:
    return {name[len(head) + 1:]: v for name, v in params.items() if name.startswith(head + ".")}


def _to_renamed(params: dict, prefix: str, pairs) -> dict:
    return {f"{prefix}{theirs}.{leaf}": _tensor(params[f"{ours}.{leaf}"])
            for ours, theirs in pairs for leaf in ("weight", "bias")}


def to_torch_encoder_layer_state_dict(params: dict, prefix: str = "") -> dict:
    """Ours -> torch.nn.TransformerEncoderLayer.load_state_dict input."""
    return {**to_torch_mha_state_dict(_sub(params, "self_attn"), prefix + "self_attn."),
            **_to_renamed(params, prefix, _FFN_NORMS[:4])}


def to_torch_decoder_layer_state_dict(params: dict, prefix: str = "") -> dict:
    """Ours -> torch.nn.TransformerDecoderLayer.load_state_dict input."""
    return {**to_torch_mha_state_dict(_sub(params, "self_attn"), prefix + "self_attn."),
            **to_torch_mha_state_dict(_sub(params, "cross_attn"), prefix + "multihead_attn."),
            **_to_renamed(params, prefix, _FFN_NORMS)}


def _to_torch_stack(params: dict, prefix: str, layer_fn) -> dict:
    out = {}
    for i in _layer_indices(params, r"layers\.(\d+)\."):
        out.update(layer_fn(_sub(params, f"layers.{i}"), f"{prefix}layers.{i}."))
    if "norm.weight" in params:
        out.update(_to_renamed(params, prefix, [("norm", "norm")]))
    return out


def to_torch_encoder_state_dict(params: dict) -> dict:
    """Ours (kind "encoder") -> torch.nn.TransformerEncoder.load_state_dict input."""
    return _to_torch_stack(params, "", to_torch_encoder_layer_state_dict)


def to_torch_transformer_state_dict(params: dict) -> dict:
    """Ours (kind "transformer") -> torch.nn.Transformer.load_state_dict input."""
    return {**_to_torch_stack(_sub(params, "encoder"), "encoder.", to_torch_encoder_layer_state_dict),
            **_to_torch_stack(_sub(params, "decoder"), "decoder.", to_torch_decoder_layer_state_dict)}


def to_hf_bert_state_dict(params: dict) -> dict:
    """Ours (kind "bert") -> transformers.BertModel.load_state_dict input."""
    n_layers = len(_layer_indices(params, r"encoder\.layers\.(\d+)\."))
    pairs = _hf_names(n_layers, pooler="pooler.weight" in params)
    return {theirs: _tensor(params[ours]) for ours, theirs in pairs}


# ---- HuggingFace GPT-2 ------------------------------------------------------------------------

_GPT2_LINEAR = (("ffn.ff1", "mlp.c_fc"), ("ffn.ff2", "mlp.c_proj"), ("self_attn.o", "attn.c_proj"))
_GPT2_NORMS = (("norm1", "ln_1"), ("norm2", "ln_2"))
_GPT2_IGNORED = re.compile(r"(\.attn\.bias|\.attn\.masked_bias|^lm_head\.weight)$")


def _activation_from_hf(act: str) -> str:
    activation = {"gelu": "gelu", "relu": "relu", "gelu_new": "gelu_tanh",
                  "gelu_pytorch_tanh": "gelu_tanh"}.get(act)
    if activation is None:
        raise ValueError(f"activation must be gelu, relu, gelu_new or gelu_pytorch_tanh, got {act!r}")
    return activation


def from_hf_gpt2(sd: dict) -> dict[str, np.ndarray]:
    """transformers GPT2Model / GPT2LMHeadModel state dict -> ours (kind "gpt").

    The "transformer." prefix of GPT2LMHeadModel is stripped; its lm_head.weight is the token
    table (tied), so it is not a parameter of its own. Conv1D weights are (in, out): transposed.
    """
    if any(key.startswith("transformer.") for key in sd):
        sd = {key[len("transformer."):]: value for key, value in sd.items()
              if key.startswith("transformer.")}
    sd = {key: value for key, value in sd.items() if not _GPT2_IGNORED.search(key)}
    where = "GPT2Model"
    out = {"embeddings.word.weight": _to_numpy(_take(sd, "wte.weight", where)),
           "embeddings.position.weight": _to_numpy(_take(sd, "wpe.weight", where))}
    used = {"wte.weight", "wpe.weight", "ln_f.weight", "ln_f.bias"}
    for i in _layer_indices(sd, r"h\.(\d+)\."):
        pre, ours = f"h.{i}.", f"layers.{i}."
        w = _to_numpy(_take(sd, pre + "attn.c_attn.weight", where))            # (D, 3D) = (in, out)
        b = _to_numpy(_take(sd, pre + "attn.c_attn.bias", where))              # (3D,)
        for name, wq, bq in zip("qkv", np.split(w, 3, axis=1), np.split(b, 3)):
            out[f"{ours}self_attn.{name}.weight"], out[f"{ours}self_attn.{name}.bias"] = wq.T, bq
        for name, theirs in _GPT2_LINEAR:
            out[f"{ours}{name}.weight"] = _to_numpy(_take(sd, f"{pre}{theirs}.weight", where)).T
            out[f"{ours}{name}.bias"] = _to_numpy(_take(sd, f"{pre}{theirs}.bias", where))
        for name, theirs in _GPT2_NORMS:
            for leaf in ("weight", "bias"):
                out[f"{ours}{name}.{leaf}"] = _to_numpy(_take(sd, f"{pre}{theirs}.{leaf}", where))
        used |= {f"{pre}attn.c_attn.weight", f"{pre}attn.c_attn.bias"}
        used |= {f"{pre}{t}.{leaf}" for _, t in _GPT2_LINEAR + _GPT2_NORMS for leaf in ("weight", "bias")}
    out["norm.weight"] = _to_numpy(_take(sd, "ln_f.weight", where))
    out["norm.bias"] = _to_numpy(_take(sd, "ln_f.bias", where))
    unknown = sorted(set(sd) - used)
    if unknown:
        raise ValueError(f"state dict has keys a GPT2Model does not: {unknown[:5]}")
    return out


def to_hf_gpt2_state_dict(params: dict, lm_head: bool = True) -> dict:
    """Ours (kind "gpt") -> transformers.GPT2LMHeadModel.load_state_dict input ("transformer."
    prefix, lm_head.weight = the token table); lm_head=False gives GPT2Model's names."""
    import torch

    head = "transformer." if lm_head else ""
    out = {f"{head}wte.weight": _tensor(params["embeddings.word.weight"]),
           f"{head}wpe.weight": _tensor(params["embeddings.position.weight"]),
           f"{head}ln_f.weight": _tensor(params["norm.weight"]),
           f"{head}ln_f.bias": _tensor(params["norm.bias"])}
    for i in _layer_indices(params, r"layers\.(\d+)\."):
        pre, ours = f"{head}h.{i}.", f"layers.{i}."
        qkv = [_tensor(params[f"{ours}self_attn.{n}.weight"]) for n in "qkv"]    # 3 x (D, D) (out, in)
        out[pre + "attn.c_attn.weight"] = torch.cat(qkv).T.contiguous()         # (D, 3D) (in, out)
        out[pre + "attn.c_attn.bias"] = _cat([params[f"{ours}self_attn.{n}.bias"] for n in "qkv"])
        for name, theirs in _GPT2_LINEAR:
            out[f"{pre}{theirs}.weight"] = _tensor(params[f"{ours}{name}.weight"]).T.contiguous()
            out[f"{pre}{theirs}.bias"] = _tensor(params[f"{ours}{name}.bias"])
        for name, theirs in _GPT2_NORMS:
            for leaf in ("weight", "bias"):
                out[f"{pre}{theirs}.{leaf}"] = _tensor(params[f"{ours}{name}.{leaf}"])
    if lm_head:
        out["lm_head.weight"] = out["transformer.wte.weight"]
    return out


def config_from_hf_gpt2(hf_config) -> ModelConfig:
    """A transformers GPT2Config (or its dict) -> ModelConfig (decoder_only, pre-norm, final norm)."""
    get = hf_config.get if isinstance(hf_config, dict) else lambda k, d=None: getattr(hf_config, k, d)
    for key, wanted in (("scale_attn_weights", True), ("scale_attn_by_inverse_layer_idx", False),
                        ("add_cross_attention", False)):
        if get(key, wanted) != wanted:
            raise ValueError(f"GPT2Config.{key} must be {wanted} (tfimpl's GPT-2 block), got {get(key)!r}")
    d_model = get("n_embd")
    inner = get("n_inner")
    return ModelConfig(d_model=d_model, n_heads=get("n_head"), d_ff=inner or 4 * d_model,
                       n_layers=get("n_layer"), vocab_size=get("vocab_size"),
                       max_position=get("n_positions"), type_vocab_size=0,
                       activation=_activation_from_hf(get("activation_function", "gelu_new")),
                       norm_first=True, layer_norm_eps=get("layer_norm_epsilon", 1e-5),
                       final_norm=True, decoder_only=True)
