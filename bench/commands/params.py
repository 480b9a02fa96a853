"""`python -m bench params MODEL`: where a model's parameters are, counted three ways.

The analytic counts come from tfimpl.costs (formulas in tfimpl/costs/params.py); beside them,
the count of our own model (tfimpl.params.init_params, the dict both backends run on, and its
torch conversion) and of the library model where one exists (HuggingFace BertModel for the
BERT presets; torch.nn.Transformer, which has no embeddings, for transformer-*;
GPT2LMHeadModel, its LM head tied to the token table, for gpt2*). Library
models are built on torch's "meta" device: real modules, no memory.

Tests: tests/test_cli.py.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from bench.commands.model_args import (BYTES_PER_ELEMENT, ModelChoiceError, add_model_arguments,
                                config_dict, human_bytes, model_kind, resolve_model, table)
from tfimpl import costs, loaders
from tfimpl.params import count, init_params, param_shapes, to_torch

HELP = "parameter breakdown of a model preset or explicit size"
EPILOG = """examples:
  python -m bench params bert-base
  python -m bench params bert-large --no-counted
  python -m bench params transformer-base
  python -m bench params gpt2 --json
  python -m bench params --d-model 512 --layers 8 --heads 8 --json
  python -m bench params bert-base --layers 6          # a preset with one size changed

Memory is decimal (1 MB = 10^6 bytes), weights only (no activations, gradients or optimizer
state). transformer-base/-big (Vaswani et al. 2017) share ONE 37,000-token table between the
encoder input, the decoder input and the pre-softmax projection (their section 3.4); their
sinusoidal positions have no parameters. gpt2* (Radford et al. 2019) tie the LM head to the
token table: it adds no parameters (HuggingFace counts it once).
exit status: 0 (all counts agree or were skipped), 1 (a counted total differs), 2 (bad model)"""

# Our init_params draws every weight in float64 before casting (seconds per 100M weights):
# above this many weights we count the shapes of the same layout (tfimpl.params.param_shapes,
# which init_params fills), as exact and instant.
BUILD_LIMIT = 50_000_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--no-counted", action="store_true",
                        help="skip counting our model and the library model (analytic only)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def main(args: argparse.Namespace) -> int:
    try:
        name, cfg = resolve_model(args)
    except ModelChoiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary = summarize(name, cfg, counted=not args.no_counted)
    print(json.dumps(summary, indent=2) if args.json else render(summary))
    return 1 if summary["check"] is False else 0


# ---- the numbers -------------------------------------------------------------------------

def summarize(name: str, cfg, counted: bool = True) -> dict:
    kind = model_kind(cfg)
    params = costs.param_counts(kind, cfg)
    layers = {"encoder_layer": costs.param_counts("encoder_layer", cfg)}
    if kind == "seq2seq":
        layers["decoder_layer"] = costs.param_counts("decoder_layer", cfg)
    body_kind = {"seq2seq": "transformer", "gpt": "gpt"}.get(kind, "bert")
    analytic_body = costs.param_counts(body_kind, cfg)["total"]
    summary = {
        "model": name, "kind": kind, "config": config_dict(cfg), "params": params,
        "layers": layers, "non_embedding": costs.non_embedding_params(kind, cfg),
        "memory_bytes": {dt: params["total"] * b for dt, b in BYTES_PER_ELEMENT.items()},
        "counted_scope": ("encoder + decoder, without the shared embedding table"
                          if kind == "seq2seq" else "whole model"),
        "counted": {"analytic": analytic_body},
        "library_name": None, "check": None,
    }
    if counted:
        summary["counted"].update(count_ours(body_kind, cfg, analytic_body))
        library_name, library_count = count_library(kind, cfg)
        summary["library_name"] = library_name
        summary["counted"]["library"] = library_count
        values = [v for k, v in summary["counted"].items() if v is not None and k != "analytic"]
        summary["check"] = all(v == analytic_body for v in values)
    return summary


def count_ours(kind: str, cfg, analytic_total: int) -> dict:
    """Our model's weights: built by init_params (float32) and converted by to_torch (on the
    meta device) when small enough; the layout's shapes alone otherwise."""
    if analytic_total > BUILD_LIMIT:
        shapes = param_shapes(kind, cfg)
        return {"tfimpl.params layout (shapes)": sum(math.prod(s) for s in shapes.values())}
    import numpy as np
    import torch

    params = init_params(kind, cfg, seed=0, dtype=np.float32)
    return {"tfimpl.numpy": count(params),
            "tfimpl.torch": count(to_torch(params, dtype=torch.float32, device="meta"))}


def count_library(kind: str, cfg) -> tuple[str | None, int | None]:
    """(name, count) of the library's own module, built on the meta device; (None, None) when
    no library model has this shape."""
    import torch

    if kind == "bert":
        try:
            from transformers import BertModel
        except ImportError:
            return None, None
        if cfg.type_vocab_size == 0:
            return None, None
        config = loaders.hf_bert_config(cfg)
        with torch.device("meta"):
            model = BertModel(config)
        return "transformers.BertModel", sum(p.numel() for p in model.parameters())
    if kind == "gpt":
        return _count_hf_gpt2(cfg)
    if not cfg.final_norm:                   # torch.nn.Transformer always has both final norms
        return None, None
    with torch.device("meta"):
        model = torch.nn.Transformer(cfg.d_model, cfg.n_heads, cfg.n_layers, cfg.n_decoder_layers,
                                     cfg.d_ff, batch_first=True)
    return "torch.nn.Transformer", sum(p.numel() for p in model.parameters())


def _count_hf_gpt2(cfg) -> tuple[str | None, int | None]:
    """GPT2LMHeadModel on the meta device; parameters() lists the tied lm_head/wte once."""
    import torch

    try:
        from transformers import GPT2Config, GPT2LMHeadModel
    except ImportError:
        return None, None
    if (cfg.activation != "gelu_tanh" or not cfg.norm_first or not cfg.final_norm
            or cfg.positional != "learned"):
        return None, None
    config = GPT2Config(vocab_size=cfg.vocab_size, n_positions=cfg.max_position, n_embd=cfg.d_model,
                        n_layer=cfg.n_layers, n_head=cfg.n_heads, n_inner=cfg.d_ff)
    with torch.device("meta"):
        model = GPT2LMHeadModel(config)
    return "transformers.GPT2LMHeadModel", sum(p.numel() for p in model.parameters())


# ---- the text ----------------------------------------------------------------------------

def _n(value) -> str:
    return "—" if value is None else f"{value:,}"


def _row(label, n, total):
    return [label, _n(n), f"{100 * n / total:.2f}%", human_bytes(4 * n)]


def _layer_rows(prefix: str, layer: dict, total: int) -> list:
    rows = []
    for key, value in layer.items():
        if key != "total":
            rows.append(_row(f"  {prefix}{key}", value, total))
    rows.append(_row(f"  {prefix}= one layer", layer["total"], total))
    return rows


def render(s: dict) -> str:
    cfg, p, total = s["config"], s["params"], s["params"]["total"]
    title = (f"{s['model']}: D={cfg['d_model']} H={cfg['n_heads']} d_ff={cfg['d_ff']} "
             f"L={cfg['n_layers']}" + (f"+{cfg['n_decoder_layers']}" if s["kind"] == "seq2seq" else "")
             + f" V={cfg['vocab_size']}")
    rows = []
    if s["kind"] == "gpt":
        for key in ("embeddings.word", "embeddings.position", "embeddings"):
            rows.append(_row(key + (" (= the tied LM head)" if key == "embeddings.word" else ""),
                             p[key], total))
        rows.append(None)
        rows += _layer_rows("", s["layers"]["encoder_layer"], total)
        rows.append(_row(f"blocks ({p['layers']} layers)", p["blocks"], total))
        rows.append(_row("final norm (LN_f)", p["final_norm"], total))
        rows.append(_row("lm_head (tied: no weights of its own)", p["lm_head"], total))
    elif s["kind"] == "bert":
        for key in ("embeddings.word", "embeddings.position", "embeddings.token_type",
                    "embeddings.norm"):
            rows.append(_row(key, p[key], total))
        rows.append(_row("embeddings", p["embeddings"], total))
        rows.append(None)
        rows += _layer_rows("", s["layers"]["encoder_layer"], total)
        rows.append(_row(f"encoder ({p['layers']} layers)", p["encoder"], total))
        rows.append(_row("pooler", p["pooler"], total))
    else:
        rows.append(_row("embeddings.shared (tied)", p["embeddings.shared"], total))
        rows.append(None)
        rows += _layer_rows("enc ", s["layers"]["encoder_layer"], total)
        rows.append(_row(f"encoder ({cfg['n_layers']} layers + norm)", p["encoder"], total))
        rows += _layer_rows("dec ", s["layers"]["decoder_layer"], total)
        rows.append(_row(f"decoder ({cfg['n_decoder_layers']} layers + norm)", p["decoder"], total))
    rows.append(None)
    rows.append(_row("total", total, total))
    rows.append(_row("non-embedding (N)", s["non_embedding"], total))
    out = [title, "", table(["component", "params", "share", "fp32"], rows)]
    memory = "  ".join(f"{dt} {human_bytes(b)}" for dt, b in s["memory_bytes"].items())
    out += ["", f"weights in memory: {memory}"]
    counted = s["counted"]
    if len(counted) > 1:
        out += ["", f"counted ({s['counted_scope']}):"]
        analytic = counted["analytic"]
        names = {"library": s["library_name"] or "library (none for this shape)"}
        crows = [["analytic (tfimpl.costs)", _n(analytic), ""]]
        for key, value in counted.items():
            if key == "analytic":
                continue
            mark = "" if value is None else ("✓" if value == analytic else "✗")
            crows.append([names.get(key, key), _n(value), mark])
        out.append(table(["source", "params", "check"], crows, "lrl"))
        if s["check"] is not None:
            out.append("all agree ✓" if s["check"] else "MISMATCH ✗")
    return "\n".join(out)
