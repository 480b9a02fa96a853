"""`python -m bench peak`: this machine's matmul throughput per library and dtype (GFLOP/s),
its sustained memory bandwidth (GB/s, STREAM copy and triad) and the roofline's ridge point.

Measured once (~20 s) and cached in ~/.cache/tfbench/; `bench run` puts the cached table in the
run's meta.json so every case can report its share of the peak.
"""

from __future__ import annotations

import json
import sys

from bench.machine import peak

HELP = "measure this machine's matmul peak (GFLOP/s) per dtype"
EPILOG = """examples:
  python -m bench peak                     # cached if this machine was measured before
  python -m bench peak --threads 1 --no-cache
  python -m bench peak --json > peak.json"""

EXIT_BAD_INPUT = 2


def add_arguments(parser) -> None:
    parser.add_argument("--threads", type=int, metavar="N",
                        help="compute threads (default: the cores this process may use)")
    parser.add_argument("--no-cache", action="store_true",
                        help="measure again even if a cached result matches (and replace it)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where torch runs its matmuls (NumPy always on the CPU)")
    parser.add_argument("--sizes", type=int, nargs="+", metavar="N",
                        help="square matmul sizes n (default: 1024 2048)")
    parser.add_argument("--time-budget", type=float, metavar="S",
                        help="seconds of timed matmuls in all (default: 12)")
    parser.add_argument("--bandwidth-mib", type=int, metavar="MIB",
                        help="MiB per bandwidth array (default: 4x the last-level cache, >= 128)")


def format_table(result: dict) -> str:
    """One line per (library, dtype): peak GFLOP/s, the size that gave it, or why not run."""
    origin = (f"cached {result.get('cache_path')}" if result.get("source") == "cache"
              else f"measured in {result.get('elapsed_s', float('nan')):.1f} s")
    lines = [f"matmul peak on {result['key'].get('cpu_model')}, {result['threads']} thread(s), "
             f"{result['device']} ({origin})",
             f"{'library':<8} {'dtype':<6} {'GFLOP/s':>9} {'best n':>7}  note"]
    details, notes = result.get("details", {}), result.get("notes", {})
    for lib in ("numpy", "torch"):
        for dtype, gflops in result.get(lib, {}).items():
            name = f"{lib}.{dtype}"
            if gflops is None:
                lines.append(f"{lib:<8} {dtype:<6} {'-':>9} {'-':>7}  {notes.get(name, '')}")
                continue
            best = max(details.get(name, []), key=lambda p: p["gflops"], default={})
            note = "  GOP/s: int8 quantized::linear_dynamic (fbgemm)" if dtype == "int8" else ""
            lines.append(f"{lib:<8} {dtype:<6} {gflops:9.1f} {best.get('n', '-'):>7}{note}")
    lines.extend(bandwidth_lines(result))
    load = result.get("load_avg_before")
    if load is not None and load >= 1.0:
        lines.append(f"caution: load average {load:.2f} when measuring; other work competed for "
                     "the cores, so these peaks may be low (rerun with --no-cache when idle)")
    return "\n".join(lines)


def bandwidth_lines(result: dict) -> list[str]:
    """Copy and triad GB/s per library, then the ridge point per (library, dtype)."""
    bw = result.get("bandwidth")
    if not isinstance(bw, dict):
        return ["memory bandwidth: not measured"]
    lines = [f"memory bandwidth, {bw.get('array_bytes', 0) / 2 ** 20:.0f} MiB arrays "
             f"(STREAM counting): " + "; ".join(
                 f"{lib} copy {bw[lib].get('copy', float('nan')):.1f} GB/s, "
                 f"triad {bw[lib].get('triad', float('nan')):.1f} GB/s"
                 for lib in ("numpy", "torch") if bw.get(lib))]
    ridges = [f"{lib}.{dtype} {value:.1f}" for lib, table in (result.get("ridge") or {}).items()
              for dtype, value in table.items() if value]
    if ridges:
        lines.append("ridge point (peak GFLOP/s / triad GB/s, FLOP per byte): " + ", ".join(ridges))
    return lines


def main(args) -> int:
    measure_kwargs = {}
    if args.sizes:
        measure_kwargs["sizes"] = tuple(args.sizes)
    if args.time_budget is not None:
        measure_kwargs["time_budget_s"] = args.time_budget
    if args.bandwidth_mib is not None:
        if args.bandwidth_mib < 1:
            print(f"error: --bandwidth-mib: expected an integer >= 1, got {args.bandwidth_mib}",
                  file=sys.stderr)
            return EXIT_BAD_INPUT
        measure_kwargs["bandwidth_bytes"] = args.bandwidth_mib << 20
    try:
        result = peak.load_or_measure_peak(threads=args.threads, cache=not args.no_cache,
                                           device=args.device, **measure_kwargs)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(json.dumps(result, indent=1) if args.json else format_table(result))
    return 0
