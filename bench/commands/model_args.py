"""Shared pieces of the `params` and `flops` commands: which model, how to print a table.

No heavy imports at module level (the CLI imports command modules to build --help).

Tests: tests/test_cli.py.
"""

from __future__ import annotations

import argparse

from tfimpl.config import PRESETS, ModelConfig

# (flag, ModelConfig field, help)
SIZE_FLAGS = (
    ("--d-model", "d_model", "width D of the residual stream"),
    ("--layers", "n_layers", "encoder layers (a gpt2* preset's blocks)"),
    ("--heads", "n_heads", "attention heads (must divide D)"),
    ("--d-ff", "d_ff", "feed-forward inner width (default 4·D when --d-model is given)"),
    ("--vocab", "vocab_size", "token vocabulary size"),
    ("--max-position", "max_position", "learned position table length"),
    ("--type-vocab", "type_vocab_size", "token-type (segment) table length"),
    ("--decoder-layers", "n_decoder_layers", "decoder layers (> 0: an encoder-decoder model)"),
)
BYTES_PER_ELEMENT = {"fp32": 4, "bf16": 2, "fp16": 2, "int8": 1}


class ModelChoiceError(ValueError):
    """An unknown preset or an invalid size; the message is one line."""


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", default=None, metavar="MODEL",
                        help=f"a preset: {', '.join(PRESETS)}; omit it to give sizes only "
                             "(starting from BERT-base's)")
    sizes = parser.add_argument_group("explicit sizes (override the preset's)")
    for flag, field, text in SIZE_FLAGS:
        sizes.add_argument(flag, dest=field, type=int, default=None, metavar="N", help=text)


def resolve_model(args: argparse.Namespace):
    """(name, ModelConfig) from a preset name and/or explicit sizes; ModelChoiceError if bad."""
    if args.model is not None and args.model not in PRESETS:
        raise ModelChoiceError(f"unknown model {args.model!r}; presets: {', '.join(PRESETS)} "
                               "(or give explicit sizes: --d-model --layers --heads ...)")
    cfg = PRESETS[args.model] if args.model else ModelConfig()
    changes = {field: getattr(args, field) for _, field, _ in SIZE_FLAGS
               if getattr(args, field, None) is not None}
    if "d_model" in changes and "d_ff" not in changes:
        changes["d_ff"] = 4 * changes["d_model"]
    if "d_model" in changes and "n_heads" not in changes and changes["d_model"] % cfg.n_heads:
        changes["n_heads"] = max(1, changes["d_model"] // 64)
    try:
        cfg = cfg.replace(**changes)
    except ValueError as exc:
        flags = {field: flag for flag, field, _ in SIZE_FLAGS}
        message = str(exc)
        for field, flag in flags.items():
            message = message.replace(f"ModelConfig.{field}", flag).replace(f"by {field} ", f"by {flag} ")
        raise ModelChoiceError(message) from None
    name = args.model or "custom"
    if changes and args.model:
        name += " (modified)"
    return name, cfg


def model_kind(cfg) -> str:
    """The param_counts kind a whole model is: BERT-style, the 2017 encoder-decoder, or a
    GPT-2-style decoder-only language model."""
    if getattr(cfg, "decoder_only", False):
        return "gpt"
    return "seq2seq" if cfg.n_decoder_layers > 0 else "bert"


def config_dict(cfg) -> dict:
    import dataclasses

    return dataclasses.asdict(cfg)


def human_bytes(n: float) -> str:
    """Decimal units, as model cards quote them: 437928960 -> '437.9 MB'."""
    for unit, size, digits in (("GB", 1e9, 2), ("MB", 1e6, 1), ("kB", 1e3, 1)):
        if n >= size:
            return f"{n / size:.{digits}f} {unit}"
    return f"{int(n)} B"


def human_flops(n: float) -> str:
    for unit, size in (("PFLOP", 1e15), ("TFLOP", 1e12), ("GFLOP", 1e9), ("MFLOP", 1e6),
                       ("kFLOP", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{int(n)} FLOP"


def table(headers: list[str], rows: list[list], align: str | None = None) -> str:
    """A plain text table; `align` is one of 'l'/'r' per column (default: first left, rest right).
    A row that is None prints a rule."""
    align = align or "l" + "r" * (len(headers) - 1)
    cells = [[str(c) for c in row] for row in rows if row is not None]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def fmt(row):
        return "  ".join(c.ljust(w) if a == "l" else c.rjust(w)
                         for c, w, a in zip(row, widths, align)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    lines = [fmt(headers), rule]
    for row in rows:
        lines.append(rule if row is None else fmt([str(c) for c in row]))
    return "\n".join(lines)
