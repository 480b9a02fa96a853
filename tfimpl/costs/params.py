"""Parameter counts, per component, read off the shapes of the weights.

Every count is a sum of weight shapes in the torch `Linear` convention (`weight` is `(out, in)`,
`bias` is `(out,)`), so each formula below is just "rows x columns + biases":

    Linear(n_in -> n_out)           n_in·n_out + n_out
    LayerNorm(D)                    2·D                        (gain and shift)
    multi-head attention (Q,K,V,O)  4·(D·D + D) = 4D² + 4D     (heads split D, they add nothing)
    feed-forward D -> d_ff -> D     2·D·d_ff + d_ff + D
    encoder layer                   attention + feed-forward + 2 layer norms
                                    = 4D² + 2·D·d_ff + d_ff + 9D
    decoder layer                   2 attentions (self, cross) + feed-forward + 3 layer norms
    BERT embeddings                 (V + P + S)·D + 2D         word, position, token-type tables + norm
    BERT pooler                     D² + D                     Linear on the first token, then tanh

For BERT-base (D=768, d_ff=3072, 12 layers, V=30522, P=512, S=2) this gives 23,837,184
embedding parameters (23,440,896 of them the word table), 7,087,872 per layer and 590,592 in
the pooler: 109,482,240 in all, the count `transformers.BertModel` reports (Devlin et al. 2019
quote "110M"). `torch.nn.Transformer()` (6+6 layers, D=512, d_ff=2048, a final norm after each
stack, no embeddings) has 44,140,544.

GPT-2 (kind "gpt", Radford et al. 2019): token table V·D (also the LM head: tied, no weights of
its own, no bias), positions P·D, L pre-norm blocks each with an encoder layer's weights (the
same 4D² + 2·D·d_ff + d_ff + 9D: the norms move, the count does not), one final norm 2D:
    total = (V + P)·D + L·(4D² + 2·D·d_ff + d_ff + 9D) + 2D
gpt2 (D=768, 12 layers, V=50,257, P=1,024): 39,383,808 embedding + 12 x 7,087,872 + 1,536 =
124,439,808, what `transformers.GPT2Model` reports (GPT2LMHeadModel too: its lm_head is wte).
gpt2-medium 354,823,168; gpt2-large 774,030,080; gpt2-xl 1,557,611,200.

`kind` names follow `tfimpl.params.init_params`: attention (no weights), mha, ffn,
encoder_layer, decoder_layer, encoder, decoder, transformer (torch.nn.Transformer: encoder and
decoder, no embeddings), bert; plus "model" (bench's name for bert) and "seq2seq": the 2017
paper's model = transformer + ONE shared token table of V·D. Vaswani et al. 2017, §3.4 "share the
same weight matrix between the two embedding layers and the pre-softmax linear transformation",
with a shared source/target BPE vocabulary (37,000 tokens for EN-DE, §5.1); sinusoidal positions
have no parameters; we assume the tied pre-softmax projection has no bias.
"""

from __future__ import annotations

from tfimpl.config import ModelConfig
from tfimpl.costs._common import add, check_cfg, check_choice, prefixed, scale

PARAM_KINDS = ("attention", "mha", "ffn", "encoder_layer", "decoder_layer", "encoder", "decoder",
               "transformer", "bert", "model", "seq2seq", "gpt")


def linear_params(n_in: int, n_out: int, bias: bool = True) -> int:
    """Weight (n_out, n_in) plus bias (n_out,)."""
    return n_in * n_out + (n_out if bias else 0)


def norm_params(d_model: int) -> int:
    """LayerNorm gain and shift, (D,) each."""
    return 2 * d_model


def _mha(cfg: ModelConfig) -> dict:
    d = cfg.d_model
    return {name: linear_params(d, d) for name in ("q_proj", "k_proj", "v_proj", "o_proj")}


def _ffn(cfg: ModelConfig) -> dict:
    return {"ffn1": linear_params(cfg.d_model, cfg.d_ff), "ffn2": linear_params(cfg.d_ff, cfg.d_model)}


def _encoder_layer(cfg: ModelConfig) -> dict:
    norms = {"norm1": norm_params(cfg.d_model), "norm2": norm_params(cfg.d_model)}
    return {**_mha(cfg), **_ffn(cfg), **norms}


def _decoder_layer(cfg: ModelConfig) -> dict:
    norms = {f"norm{i}": norm_params(cfg.d_model) for i in (1, 2, 3)}
    return {**_mha(cfg), **prefixed(_mha(cfg), "cross_"), **_ffn(cfg), **norms}


def _stack(layer: dict, n_layers: int, cfg: ModelConfig) -> dict:
    """n identical layers (+ one final norm when cfg.final_norm), layer keys summed over layers."""
    out = {**scale(layer, n_layers), "per_layer": sum(layer.values()), "layers": n_layers}
    out["final_norm"] = norm_params(cfg.d_model) if cfg.final_norm else 0
    return out


def _total(parts: dict, exclude=("per_layer", "layers")) -> dict:
    parts["total"] = sum(v for k, v in parts.items() if k not in exclude)
    return parts


def _bert(cfg: ModelConfig) -> dict:
    d = cfg.d_model
    emb = {
        "embeddings.word": cfg.vocab_size * d,
        "embeddings.position": cfg.max_position * d,
        "embeddings.token_type": cfg.type_vocab_size * d,
        "embeddings.norm": norm_params(d),
    }
    encoder = param_counts("encoder", cfg)
    out = {**emb, "embeddings": sum(emb.values()),
           "encoder": encoder["total"], "per_layer": encoder["per_layer"],
           "layers": cfg.n_layers, "pooler": linear_params(d, d)}
    out["total"] = out["embeddings"] + out["encoder"] + out["pooler"]
    return out


def _gpt(cfg: ModelConfig) -> dict:
    d = cfg.d_model
    emb = {"embeddings.word": cfg.vocab_size * d, "embeddings.position": cfg.max_position * d}
    blocks = _stack(_encoder_layer(cfg), cfg.n_layers, cfg)
    out = {**emb, "embeddings": sum(emb.values()),
           "blocks": sum(v for k, v in blocks.items() if k not in ("per_layer", "layers", "final_norm")),
           "per_layer": blocks["per_layer"], "layers": cfg.n_layers,
           "final_norm": blocks["final_norm"], "lm_head": 0}
    out["total"] = out["embeddings"] + out["blocks"] + out["final_norm"]
    return out


def param_counts(kind: str, cfg: ModelConfig) -> dict[str, int]:
    """Parameters of `kind` by component; key "total" is the whole.

    Stacks (encoder, decoder, transformer) report each layer key summed over the layers, plus
    "per_layer" (one layer) and "layers" (how many) which are NOT part of "total".
    """
    check_cfg(cfg)
    check_choice("kind", kind, PARAM_KINDS)
    if kind == "attention":
        return {"total": 0}
    if kind == "mha":
        return _total(_mha(cfg))
    if kind == "ffn":
        return _total(_ffn(cfg))
    if kind == "encoder_layer":
        return _total(_encoder_layer(cfg))
    if kind == "decoder_layer":
        return _total(_decoder_layer(cfg))
    if kind == "encoder":
        return _total(_stack(_encoder_layer(cfg), cfg.n_layers, cfg))
    if kind == "decoder":
        return _total(_stack(_decoder_layer(cfg), cfg.n_decoder_layers, cfg))
    if kind == "transformer":
        enc, dec = param_counts("encoder", cfg)["total"], param_counts("decoder", cfg)["total"]
        return {"encoder": enc, "decoder": dec, "total": enc + dec}
    if kind == "seq2seq":
        body = param_counts("transformer", cfg)
        shared = cfg.vocab_size * cfg.d_model
        return {"embeddings.shared": shared, "embeddings": shared, "encoder": body["encoder"],
                "decoder": body["decoder"], "total": shared + body["total"]}
    if kind == "gpt":
        return _gpt(cfg)
    return _bert(cfg)          # "bert" and "model"


def non_embedding_params(kind: str, cfg: ModelConfig) -> int:
    """N of Kaplan et al. 2020 (the scaling-law papers): all parameters but the embedding tables."""
    counts = param_counts(kind, cfg)
    return counts["total"] - counts.get("embeddings", 0)
