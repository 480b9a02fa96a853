"""Argument checks and small shared helpers for the cost model (no formulas live here)."""

from __future__ import annotations

from collections import Counter

from tfimpl.config import ModelConfig

# bench's block names (bench.case.BLOCKS) plus the two encoder-decoder shapes the CLI prints.
FLOP_BLOCKS = ("attention", "mha", "ffn", "encoder_layer", "encoder", "model",
               "decoder_layer", "decoder", "transformer")
MEMORY_BLOCKS = ("attention", "mha", "ffn", "encoder_layer", "encoder", "model")
ATTN_IMPLS = ("explicit", "sdpa", "library")
MODES = ("forward", "forward+backward")


def check_cfg(cfg) -> ModelConfig:
    if not isinstance(cfg, ModelConfig):
        raise TypeError(f"cfg must be a tfimpl.config.ModelConfig, got {type(cfg).__name__}")
    return cfg


def check_choice(name: str, value, allowed: tuple) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def check_positive(name: str, value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def add(*parts: dict) -> dict:
    """Key-wise sum of count dicts (a key missing from a part counts 0)."""
    total: Counter = Counter()
    for part in parts:
        total.update(part)
    return dict(total)


def scale(part: dict, factor: int) -> dict:
    return {key: factor * value for key, value in part.items()}


def prefixed(part: dict, prefix: str) -> dict:
    return {prefix + key: value for key, value in part.items()}
