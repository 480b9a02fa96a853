"""`python -m bench flops MODEL --seq-len N`: FLOPs per component, and what dominates when.

All numbers come from tfimpl.costs (formulas derived in tfimpl/costs/flops.py): forward and
forward+backward per component (2·m·n·k per matmul; element-wise work apart), the share of
the two T×T products (scores, weighted sum) against the linear work, the sequence length where
they break even, and the common per-token rules of thumb beside ours (Kaplan et al. 2020,
"Scaling Laws for Neural Language Models", Table 1: C_forward ≈ 2N + 2·n_layer·n_ctx·d_attn,
training ≈ 6N per token, N = non-embedding parameters), with each difference explained.
"""

from __future__ import annotations

import argparse
import json
import sys

from bench.commands import _flops_gpt as flops_gpt
from bench.commands.model_args import (ModelChoiceError, add_model_arguments, config_dict,
                                human_flops, model_kind, resolve_model, table)
from tfimpl import costs

HELP = "forward/backward FLOPs per component of a model"
EPILOG = """examples:
  python -m bench flops bert-base --seq-len 512
  python -m bench flops bert-large --seq-len 4096 --batch 8
  python -m bench flops transformer-base --seq-len 128 --json
  python -m bench flops gpt2 --seq-len 1024
  python -m bench flops --d-model 256 --layers 4 --heads 4 --seq-len 1024

BERT presets count BertModel (embedding lookups: 0 FLOPs; the pooler on the first token).
transformer-* count torch.nn.Transformer's body with source and target both --seq-len long
(no embeddings, no pre-softmax projection; that projection is shown apart).
gpt2* count a forward with every position's logits (the tied LM head), dense and causal, then
a decode step, its recompute and the KV cache at that context (tfimpl/costs/decode.py).
exit status: 0, or 2 for an unknown model or a bad size"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--seq-len", type=int, required=True, metavar="T",
                        help="sequence length T (source and target alike for transformer-*)")
    parser.add_argument("--batch", type=int, default=1, metavar="B", help="batch size (default 1)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def main(args: argparse.Namespace) -> int:
    try:
        name, cfg = resolve_model(args)
        for flag, value in (("--seq-len", args.seq_len), ("--batch", args.batch)):
            if value <= 0:
                raise ModelChoiceError(f"{flag} must be a positive int, got {value}")
    except ModelChoiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if model_kind(cfg) == "gpt":
        summary = flops_gpt.summarize(name, cfg, args.batch, args.seq_len)
        print(json.dumps(summary, indent=2) if args.json else flops_gpt.render(summary))
        return 0
    summary = summarize(name, cfg, args.batch, args.seq_len)
    print(json.dumps(summary, indent=2) if args.json else render(summary))
    return 0


# ---- the numbers -------------------------------------------------------------------------

def summarize(name: str, cfg, batch: int, seq_len: int) -> dict:
    kind = model_kind(cfg)
    block = "model" if kind == "bert" else "transformer"
    fwd = costs.forward_flops(block, cfg, batch, seq_len)
    bwd = costs.backward_flops(block, cfg, batch, seq_len)
    ew = costs.elementwise_flops(block, cfg, batch, seq_len)
    components = [k for k in fwd if k not in ("matmul", "elementwise", "total")]
    quadratic = sum(fwd.get(k, 0) for k in costs.ATTENTION_KEYS)
    crossover = {"encoder_layer": costs.crossover_seq_len(cfg)}
    if kind == "seq2seq":
        crossover["decoder_layer"] = costs.crossover_seq_len(cfg, layer="decoder")
    summary = {
        "model": name, "block": block, "batch": batch, "seq_len": seq_len,
        "config": config_dict(cfg), "components": components,
        "forward": fwd, "backward": bwd,
        "forward_backward": {k: fwd[k] + bwd[k] for k in fwd},
        "elementwise_forward": ew,
        "attention_flops": quadratic, "linear_flops": fwd["matmul"] - quadratic,
        "attention_share": quadratic / fwd["matmul"],
        "crossover_seq_len": crossover,
        "attention_ffn_crossover": costs.attention_ffn_crossover(cfg),
        "logits_flops": (costs.matmul_flops(batch * seq_len, cfg.d_model, cfg.vocab_size)
                         if kind == "seq2seq" else None),
    }
    summary.update(per_token_estimates(kind, cfg, batch, seq_len, fwd, bwd, quadratic))
    return summary


def per_token_estimates(kind, cfg, batch, seq_len, fwd, bwd, quadratic) -> dict:
    """Ours per token beside Kaplan et al.'s 2N + 2·L·n_ctx·d and 6N, and the reasons they differ.

    The decomposition is exact: 2N - (our linear matmuls per token) is what 2N charges for the
    biases and norm parameters (2 per parameter; element-wise work, no matmul) plus the pooler
    charged on every token although it runs on the first only.
    """
    tokens = batch * seq_len
    n = costs.non_embedding_params(kind, cfg)
    attn_layers = cfg.n_layers + 2 * cfg.n_decoder_layers     # self (+ cross) attention sub-layers
    kaplan_attn = 2 * attn_layers * seq_len * cfg.d_model
    ours_fwd = fwd["matmul"] / tokens
    ours_linear = (fwd["matmul"] - quadratic) / tokens
    ours_train = (fwd["matmul"] + bwd["matmul"]) / tokens
    layer = costs.param_counts("encoder_layer", cfg)
    d, dff = cfg.d_model, cfg.d_ff
    enc_extra = layer["total"] - (4 * d * d + 2 * d * dff)          # biases + norms of one layer
    extra = cfg.n_layers * enc_extra
    if cfg.n_decoder_layers:
        dec = costs.param_counts("decoder_layer", cfg)
        extra += cfg.n_decoder_layers * (dec["total"] - (8 * d * d + 2 * d * dff))
    extra += 2 * d if cfg.final_norm else 0
    extra += (2 * d if cfg.final_norm and cfg.n_decoder_layers else 0)
    pooler = costs.param_counts("bert", cfg)["pooler"] if kind == "bert" else 0
    pooler_gap = 2 * pooler - 2 * d * d / seq_len if kind == "bert" else 0.0
    differences = [
        f"attention: Kaplan counts 2·L·n_ctx·d = {human_flops(kaplan_attn)}/token with L={attn_layers} "
        f"attention sub-layers (one T×T product, or both at the causal half); we count both dense "
        f"products, 4·L·T·d = {human_flops(quadratic / tokens)}/token (the materialised path computes "
        f"the whole matrix).",
        f"2N vs our linear matmuls ({human_flops(2 * n)} vs {human_flops(ours_linear)}/token): 2N also "
        f"charges 2 FLOPs to each of the {extra:,} biases and norm parameters (element-wise work, "
        f"not matmul)" + (f" and the pooler on every token instead of one per sequence "
                          f"({human_flops(pooler_gap)}/token)" if kind == "bert" else "")
        + f": {human_flops(2 * extra + pooler_gap)}/token.",
        f"training: 6N = 3 × 2N rests on backward = 2 × forward, as ours does; ours also triples "
        f"the attention term ({human_flops(3 * quadratic / tokens)}/token), which 6N leaves out.",
    ]
    return {"non_embedding_params": n, "per_token": {
        "ours_forward": ours_fwd, "kaplan_forward": 2 * n + kaplan_attn,
        "ours_forward_backward": ours_train, "kaplan_train": 6 * n,
        "ours_linear_forward": ours_linear, "kaplan_2n": 2 * n},
        "bias_and_norm_params": extra, "differences": differences}


# ---- the text ----------------------------------------------------------------------------

def render(s: dict) -> str:
    cfg, fwd, both = s["config"], s["forward"], s["forward_backward"]
    matmul = fwd["matmul"]
    head = (f"{s['model']} ({s['block']}): B={s['batch']} T={s['seq_len']} D={cfg['d_model']} "
            f"H={cfg['n_heads']} d_ff={cfg['d_ff']} L={cfg['n_layers']}"
            + (f"+{cfg['n_decoder_layers']}" if cfg["n_decoder_layers"] else ""))
    rows = [[k, f"{fwd[k]:,}", human_flops(fwd[k]), human_flops(both[k]),
             f"{100 * fwd[k] / matmul:.1f}%"] for k in s["components"]]
    rows.append(None)
    rows.append(["matmul total", f"{matmul:,}", human_flops(matmul), human_flops(both["matmul"]),
                 "100.0%"])
    ew, ew_both = s["elementwise_forward"]["total"], s["forward_backward"]["elementwise"]
    rows.append(["element-wise (apart)", f"{ew:,}", human_flops(ew), human_flops(ew_both),
                 f"{100 * ew / matmul:.1f}%"])
    out = [head, "", table(["component", "forward FLOPs", "forward", "fwd+bwd", "of matmul"], rows)]
    if s["logits_flops"]:
        out.append(f"(not in the total: the tied pre-softmax projection to {cfg['vocab_size']} "
                   f"tokens, {human_flops(s['logits_flops'])} forward)")
    share = s["attention_share"]
    cross = ", ".join(f"{k} T* = {v:,}" for k, v in s["crossover_seq_len"].items())
    out += ["",
            f"T² terms (scores + weighted sum): {100 * share:.1f}% of matmul work; linear "
            f"(projections, feed-forward{', pooler' if s['block'] == 'model' else ''}): "
            f"{100 * (1 - share):.1f}%",
            f"attention overtakes the feed-forward at n* = d_ff = {s['attention_ffn_crossover']:,} "
            f"(attention core 4·n²·D = FFN 4·n·D·d_ff: the crossover a run's report judges)",
            f"all quadratic work overtakes all linear work (projections included) at "
            f"T* = 2·D + d_ff ({cross}): per layer 4·T²·D = 8·T·D² + 4·T·D·d_ff",
            "", "per token (matmul FLOPs)"]
    pt = s["per_token"]
    out.append(table(["", "ours", "Kaplan et al. 2020"], [
        ["forward", human_flops(pt["ours_forward"]),
         f"{human_flops(pt['kaplan_forward'])}  (2N + 2·L·n_ctx·d)"],
        ["forward+backward", human_flops(pt["ours_forward_backward"]),
         f"{human_flops(pt['kaplan_train'])}  (6N)"],
    ], "lrl"))
    out.append(f"N = {s['non_embedding_params']:,} non-embedding parameters")
    out += [f"- {line}" for line in s["differences"]]
    return "\n".join(out)
