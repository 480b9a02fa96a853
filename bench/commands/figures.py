"""`python -m bench figures --out DIR`: positional_encoding.png, attention_pattern.png and
gradient_flow.png (per-layer gradient norms at initialisation, see `bench explain gradients`).

The attention figure shows the pretrained all-MiniLM-L6-v2 run through our NumPy BERT when the
`pretrained` extra is installed; otherwise (or with --random) a randomly initialised model of
the same shape on a synthetic sentence, and both the figure title and stdout say so.
"""

from __future__ import annotations

import argparse
import sys
import time

from bench.guide import DEFAULT_SENTENCE

HELP = "draw positional-encoding and attention-pattern figures"
EPILOG = """examples:
  python -m bench figures --out figures
  python -m bench figures --out figures --sentence "The bank raised its interest rate."
  python -m bench figures --out figures --layers 0,5 --heads 0,1,2,3,4,5
  python -m bench figures --out figures --random      # random-init model, labelled as such"""


def _indices(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected non-negative integers, got {text!r}")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="figures", help="output folder (default: figures)")
    parser.add_argument("--sentence", default=DEFAULT_SENTENCE,
                        help=f"sentence for the attention figure (default: {DEFAULT_SENTENCE!r})")
    parser.add_argument("--layers", type=_indices, default=None,
                        help="layers to show, e.g. 0,2,5 (default: first, middle, last)")
    parser.add_argument("--heads", type=_indices, default=None,
                        help="heads to show, e.g. 0,4,8,11 (default: four spread over all heads)")
    parser.add_argument("--random", action="store_true",
                        help="use a randomly initialised model even if the pretrained one is installed")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random-init model (default 0)")


def main(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bench.guide.attention_maps import attention_source
    from bench.guide.figures import (ATTENTION_FILE, PE_FILE, attention_pattern_figure,
                                     positional_encoding_figure)

    out = Path(args.out)
    start = time.perf_counter()
    source = attention_source(args.sentence, use_pretrained=not args.random, seed=args.seed)
    try:
        attn_path = attention_pattern_figure(out / ATTENTION_FILE, source, layers=args.layers,
                                             heads=args.heads)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {attn_path}  ({len(source.weights)} layers × "
          f"{source.weights[0].shape[0]} heads available, {len(source.tokens)} tokens)")
    pe_path = positional_encoding_figure(out / PE_FILE)
    print(f"wrote {pe_path}  (sinusoidal table, columns as curves, PE·PEᵀ vs distance)")
    from bench.guide.gradients import GRADIENT_FLOW_FILE, INITS, gradient_flow, gradient_flow_figure

    flow_path = gradient_flow_figure(out / GRADIENT_FLOW_FILE,
                                     {init: gradient_flow(seed=args.seed, init=init) for init in INITS})
    print(f"wrote {flow_path}  (gradient norms per layer at init: residual vs none, post- vs pre-norm)")
    print(f"attention figure shows: {source.description}")
    if not source.pretrained:
        print("NOTE: not a trained model; install the extra for real attention patterns: "
              "pip install -e '.[pretrained]'")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0
