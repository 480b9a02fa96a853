"""`python -m bench explain [TOPIC] [--all]`: worked examples, step by step, beside PyTorch.

With no topic it lists the topics. Each topic prints its input, every intermediate with its
formula and shape, the output, and `max |ours - library|` against the PyTorch call.
"""

from __future__ import annotations

import argparse
import sys

from bench.guide.printer import Printer

HELP = "worked examples, step by step, beside the library call"
TOPIC_NAMES = ("softmax", "layernorm", "attention", "mha", "ffn", "encoder_layer", "gradients",
               "lstm")
EPILOG = """examples:
  python -m bench explain                  # list the topics
  python -m bench explain attention        # one head on 4 tokens, d=8, step by step
  python -m bench explain mha --precision 2
  python -m bench explain gradients        # gradient norms per layer through a 24-layer stack
  python -m bench explain lstm             # one LSTM cell over 3 tokens, beside nn.LSTM
  python -m bench explain --all"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("topic", nargs="?", metavar="TOPIC",
                        help=f"one of: {', '.join(TOPIC_NAMES)} (omit to list them)")
    parser.add_argument("--all", action="store_true", help="print every topic in turn")
    parser.add_argument("--seed", type=int, default=0, help="seed of the example inputs (default 0)")
    parser.add_argument("--precision", type=int, default=3,
                        help="decimals printed per number (default 3, 1-8)")


def main(args: argparse.Namespace) -> int:
    from bench.guide.explain import TOPICS, explain   # imports torch: only when it runs

    if args.topic is not None and args.topic not in TOPIC_NAMES:
        print(f"error: unknown topic {args.topic!r}; choose from: {', '.join(TOPIC_NAMES)}",
              file=sys.stderr)
        return 2
    if not 1 <= args.precision <= 8:
        print(f"error: --precision must be between 1 and 8, got {args.precision}", file=sys.stderr)
        return 2

    if args.topic is None and not args.all:
        print("topics (python -m bench explain TOPIC, or --all):")
        for name, (description, _) in TOPICS.items():
            print(f"  {name:<14} {description}")
        return 0
    printer = Printer(sys.stdout, precision=args.precision)
    for i, name in enumerate(TOPICS if args.all else [args.topic]):
        if i:
            print()
        explain(name, printer, seed=args.seed)
    return 0
