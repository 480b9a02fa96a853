"""Model sizes: one frozen dataclass handed to every block, and the well-known presets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

ACTIVATIONS = ("relu", "gelu", "gelu_tanh")


@dataclass(frozen=True)
class ModelConfig:
    """Sizes and choices of a Transformer.

    d_model: width D of the residual stream; n_heads: H, with d_head = D / H;
    d_ff: inner width of the position-wise feed-forward; n_layers: encoder layers;
    n_decoder_layers: decoder layers (0 for encoder-only models such as BERT);
    vocab_size / max_position / type_vocab_size: embedding tables (BERT-style models);
    activation: relu (the 2017 paper), gelu (exact erf form, BERT) or gelu_tanh (approximation);
    norm_first: False = post-norm (the paper, BERT), True = pre-norm;
    final_norm: a last layer norm after the stack (torch.nn.Transformer, pre-norm stacks).
    decoder_only: a GPT-style language model: n_layers causal self-attention blocks (no
        cross-attention, no token types), learned positions, an LM head tied to the token table.
    """

    d_model: int = 768
    n_heads: int = 12
    d_ff: int = 3072
    n_layers: int = 12
    n_decoder_layers: int = 0
    vocab_size: int = 30522
    max_position: int = 512
    type_vocab_size: int = 2
    activation: str = "gelu"
    norm_first: bool = False
    layer_norm_eps: float = 1e-12
    final_norm: bool = False
    positional: str = "learned"      # learned (BERT) | sinusoidal (the 2017 paper)
    decoder_only: bool = False       # GPT-2 style causal language model (tfimpl.*.gpt)

    def __post_init__(self):
        for name in ("d_model", "n_heads", "d_ff", "n_layers", "vocab_size", "max_position"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"ModelConfig.{name} must be a positive int, got {value!r}")
        for name in ("n_decoder_layers", "type_vocab_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"ModelConfig.{name} must be a non-negative int, got {value!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"ModelConfig.d_model ({self.d_model}) must be divisible by "
                             f"n_heads ({self.n_heads})")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"ModelConfig.activation must be one of {ACTIVATIONS}, "
                             f"got {self.activation!r}")
        if self.decoder_only and self.n_decoder_layers:
            raise ValueError(f"ModelConfig.n_decoder_layers must be 0 for a decoder_only model "
                             f"(its n_layers are the causal blocks), got {self.n_decoder_layers}")
        if self.positional not in ("learned", "sinusoidal"):
            raise ValueError(f"ModelConfig.positional must be 'learned' or 'sinusoidal', "
                             f"got {self.positional!r}")

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    def replace(self, **changes) -> "ModelConfig":
        return dataclasses.replace(self, **changes)


def _bert(n_layers: int, d_model: int, n_heads: int) -> ModelConfig:
    return ModelConfig(d_model=d_model, n_heads=n_heads, d_ff=4 * d_model, n_layers=n_layers)


def _paper(d_model: int, n_heads: int, d_ff: int) -> ModelConfig:
    # Vaswani et al. 2017, Table 3: N=6 encoder and 6 decoder layers, ReLU, post-norm,
    # sinusoidal positions, shared source/target BPE vocabulary of about 37,000 tokens.
    return ModelConfig(d_model=d_model, n_heads=n_heads, d_ff=d_ff, n_layers=6, n_decoder_layers=6,
                       vocab_size=37000, activation="relu", layer_norm_eps=1e-5,
                       final_norm=True, positional="sinusoidal", type_vocab_size=0)


def _gpt2(n_layers: int, d_model: int, n_heads: int) -> ModelConfig:
    # Radford et al. 2019 ("Language Models are Unsupervised Multitask Learners", Table 2) and
    # HuggingFace's gpt2* config.json: byte-level BPE of 50,257 tokens, 1,024 positions, pre-norm
    # blocks with a final layer norm (eps 1e-5), GELU (tanh form, "gelu_new"), d_ff = 4·D.
    return ModelConfig(d_model=d_model, n_heads=n_heads, d_ff=4 * d_model, n_layers=n_layers,
                       vocab_size=50257, max_position=1024, type_vocab_size=0,
                       activation="gelu_tanh", norm_first=True, layer_norm_eps=1e-5,
                       final_norm=True, decoder_only=True)


# Sources: BERT (Devlin et al. 2019) and google-research/bert's 24 smaller models (Turc et al.
# 2019) for the bert-*; "Attention Is All You Need" Table 3 for transformer-*;
# sentence-transformers/all-MiniLM-L6-v2's config.json for minilm-l6; GPT-2 above for gpt2*.
PRESETS: dict[str, ModelConfig] = {
    "bert-tiny": _bert(2, 128, 2),
    "bert-mini": _bert(4, 256, 4),
    "bert-small": _bert(4, 512, 8),
    "bert-medium": _bert(8, 512, 8),
    "bert-base": _bert(12, 768, 12),
    "bert-large": _bert(24, 1024, 16),
    "minilm-l6": ModelConfig(d_model=384, n_heads=12, d_ff=1536, n_layers=6),
    "transformer-base": _paper(512, 8, 2048),
    "transformer-big": _paper(1024, 16, 4096),
    "gpt2": _gpt2(12, 768, 12),
    "gpt2-medium": _gpt2(24, 1024, 16),
    "gpt2-large": _gpt2(36, 1280, 20),
    "gpt2-xl": _gpt2(48, 1600, 25),
}


def preset(name: str) -> ModelConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown model preset {name!r}; known: {', '.join(PRESETS)}") from None
