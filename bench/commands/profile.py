"""`python -m bench profile`: where the time goes inside a model or a block, step by step,
against analytic FLOPs and bytes and the machine's two ceilings (a roofline).

Writes profile.md (table, claims), profile.csv, profile.json, roofline.png, and trace.json
(torch; open it in ui.perfetto.dev) or memory_lines.txt (NumPy) into --out.
"""

from __future__ import annotations

import sys
import time

from bench.machine import peak
from bench.profile import report
from bench.profile.run import run_profile
from bench.profile.spec import SpecError, make_spec

HELP = "per-step time of a model or block against FLOPs, bytes and the roofline"
EPILOG = """examples:
  python -m bench profile bert-base --seq-len 512 --out /tmp/prof
  python -m bench profile bert-base --seq-len 512 --impl numpy --out /tmp/prof-np
  python -m bench profile encoder_layer --seq-len 1024 --impl torch-sdpa
  python -m bench profile mha --preset bert-large --precision bf16 --repeats 3"""

EXIT_BAD_INPUT = 2


def add_arguments(parser) -> None:
    parser.add_argument("target", metavar="MODEL_OR_BLOCK",
                        help="a BERT preset (the whole model: bert-base, bert-tiny, ...) or a "
                             "block: attention, mha, ffn, encoder_layer, encoder")
    parser.add_argument("--preset", help="the width of a block (default bert-base)")
    parser.add_argument("--seq-len", type=int, default=128, metavar="N")
    parser.add_argument("--batch", type=int, default=1, metavar="B")
    parser.add_argument("--impl", default="torch", help="torch (explicit attention), "
                        "torch-sdpa (fused) or numpy (default torch)")
    parser.add_argument("--precision", default="fp32",
                        help="fp64, fp32 (default), bf16, amp-bf16 (torch); fp64, fp32 (numpy)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="compute threads (default: the cores this process may use)")
    parser.add_argument("--repeats", type=int, default=5, metavar="N",
                        help="profiled forwards; each step's time is their median (default 5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", metavar="DIR",
                        help="output folder (default results/profile-<target>-<time>)")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory pass")
    parser.add_argument("--no-trace", action="store_true", help="torch: no trace.json")


def main(args) -> int:
    from pathlib import Path

    try:
        spec = make_spec(args.target, preset=args.preset, impl=args.impl, batch=args.batch,
                         seq_len=args.seq_len, precision=args.precision, device=args.device,
                         threads=args.threads, repeats=args.repeats, seed=args.seed)
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    out = Path(args.out or f"results/profile-{args.target}-{time.strftime('%Y%m%d-%H%M%S')}")
    if out.exists() and not out.is_dir():
        print(f"error: --out: {out} exists and is not a folder", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"profiling {spec.label()} -> {out}", file=sys.stderr)
    machine = peak.load_or_measure_peak(threads=spec.threads, device=spec.device)
    result = run_profile(spec, out, machine, memory=not args.no_memory, trace=not args.no_trace)
    paths = report.write(result, out)
    print(report.markdown({**result, "claims": report.claims(result)}))
    print("wrote " + ", ".join(sorted(paths.values())), file=sys.stderr)
    return 0
