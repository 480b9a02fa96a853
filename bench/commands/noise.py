"""`python -m bench noise`: is this machine quiet enough to compare two runs within a few percent?

A few fixed probes, cases of the harness itself, take turns in short slots for a while; each
slot's median call time is divided by the probe's fastest slot. On a quiet machine every slot
is within a few percent of the best. On a shared VM whole stretches run 10-50% slower, and
because all probes slow down in the same slots (their correlation near 1), the cause is the
machine (another tenant on the same caches and memory bus, the host's clocks), not the code:

    probe                       what it is sensitive to
    torch ffn T=32, 2 threads   19 MB of weights streamed from the last-level cache per call
    numpy ffn T=32, 2 threads   the same through OpenBLAS and NumPy's own threads
    torch ffn T=32, 1 thread    the same on one core (a second core being taken does not matter)
    torch-sdpa attention T=512  a fused kernel on small tiles: mostly compute

Two runs of a sweep cannot be expected to agree better than the slots of this command do over a
similar stretch of time; `bench compare` and the report's first paragraph give the same figure
from a run's own passes. The probes are bench.trackers.calibration's: `bench run` times one of
them beside every case (calib_s), so that `bench compare` can cancel a drift of the machine.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time

from bench.machine.threads import fixed_threads
# the probes live with the calibration tracker, which times one beside every case
from bench.trackers.calibration import probes  # noqa: F401  (re-exported: noise.probes)

HELP = "how steady this machine is: fixed probes timed in turns, slot by slot"
EPILOG = """examples:
  python -m bench noise                    # 30 s, 0.25 s slots
  python -m bench noise --seconds 120      # a longer look (spells last seconds to minutes)
  python -m bench noise --json > noise.json"""

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
QUIET_BAND = 0.05


def add_arguments(parser) -> None:
    parser.add_argument("--seconds", type=float, default=30.0, metavar="S",
                        help="how long to measure in all (default: 30)")
    parser.add_argument("--slot", type=float, default=0.25, metavar="S",
                        help="seconds per probe per turn (default: 0.25)")
    parser.add_argument("--threads", type=int, default=2, metavar="N",
                        help="threads of the multi-threaded probes (default: 2)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def summarize(series: dict[str, list[float]], band: float = QUIET_BAND) -> dict:
    """Per probe: slot medians relative to the fastest slot (p10, p50, p90, max) and the share
    of slots within `band` of it; the mean pairwise correlation of the probes' slot series."""
    import numpy as np

    out = {"band": band, "probes": {}}
    rel = {}
    for name, values in series.items():
        values = [v for v in values if v and math.isfinite(v)]
        if not values:
            continue
        r = np.asarray(values) / min(values)
        rel[name] = r
        p10, p50, p90 = np.percentile(r, [10, 50, 90])
        out["probes"][name] = {"slots": len(r), "best_s": min(values), "p10": float(p10),
                               "p50": float(p50), "p90": float(p90), "max": float(r.max()),
                               "share_within_band": float(np.mean(r <= 1 + band))}
    names = [n for n in rel if len(rel[n]) >= 3 and np.std(rel[n]) > 0]
    n = min((len(rel[k]) for k in names), default=0)
    pairs = [float(np.corrcoef(rel[a][:n], rel[b][:n])[0, 1])
             for i, a in enumerate(names) for b in names[i + 1:]]
    out["mean_correlation"] = statistics.fmean(pairs) if pairs else None
    shares = [p["share_within_band"] for p in out["probes"].values()]
    out["quiet"] = bool(shares) and min(shares) >= 0.9
    return out


def measure(named_cases, seconds: float, slot_s: float,
            progress=None) -> tuple[dict[str, list], bool]:
    """(slot medians (s) per probe, interrupted): the probes take turns, `slot_s` each, for
    `seconds` or until Ctrl-C."""
    from bench.impls.base import Unsupported
    from bench.plan import plan
    from bench.impls.prepare import prepare

    ready = []
    try:
        for name, case in named_cases:
            backend = plan(case).backend
            with fixed_threads(case.threads, backend):
                try:
                    prepared = prepare(case)
                except (Unsupported, ImportError):  # e.g. no torch: the NumPy probe alone
                    continue
                for _ in range(5):                 # first calls: allocation, dispatch, caches
                    prepared.fn()
            ready.append((name, case, backend, prepared))
        if not ready:                         # nothing to time: do not spin for `seconds`
            return {}, False
        series: dict[str, list[float]] = {name: [] for name, *_ in ready}
        interrupted = False
        start = time.perf_counter()
        try:
            while time.perf_counter() - start < seconds:
                for name, case, backend, prepared in ready:
                    with fixed_threads(case.threads, backend):
                        times = []
                        end = time.perf_counter() + slot_s
                        while not times or time.perf_counter() < end:
                            t0 = time.perf_counter()
                            prepared.fn()
                            times.append(time.perf_counter() - t0)
                    series[name].append(statistics.median(times))
                if progress:
                    progress(time.perf_counter() - start)
        except KeyboardInterrupt:             # Ctrl-C: summarize the slots measured so far
            interrupted = True
        return series, interrupted
    finally:
        for *_, prepared in ready:
            prepared.teardown()


def format_result(result: dict) -> str:
    lines = [f"machine noise over {result['seconds']:.0f} s, {result['slot_s']:g} s slots "
             f"(slot median / the probe's fastest slot):",
             f"{'probe':<34} {'slots':>5} {'best ms':>8} {'p10':>6} {'p50':>6} {'p90':>6} "
             f"{'max':>6}  within {result['band']:.0%}"]
    for name, p in result["probes"].items():
        lines.append(f"{name:<34} {p['slots']:>5} {p['best_s'] * 1e3:>8.3f} {p['p10']:>6.3f} "
                     f"{p['p50']:>6.3f} {p['p90']:>6.3f} {p['max']:>6.3f}  "
                     f"{p['share_within_band']:.0%} of slots")
    corr = result.get("mean_correlation")
    if corr is not None:
        lines.append(f"the probes' slot series: mean correlation {corr:.2f} "
                     + ("(they slow down together: the machine, not one library)" if corr >= 0.5
                        else "(they move more apart than together; each probe's spread above "
                             "still counts)"))
    if result["quiet"]:
        lines.append(f"quiet: >= 90% of every probe's slots within {result['band']:.0%} of its "
                     "best; two runs can be compared within a few percent")
    else:
        worst = max(result["probes"].values(), key=lambda p: p["p90"], default=None)
        if worst is not None:
            lines.append(f"noisy: a probe's slots ran up to {worst['p90']:.2f}x its best at the "
                         f"90th percentile; differences between two runs of that order are the "
                         f"machine's (longer --seconds, an idle host, or more passes help)")
    return "\n".join(lines)


def main(args) -> int:
    for key, value in (("--seconds", args.seconds), ("--slot", args.slot)):
        if not (math.isfinite(value) and value > 0):
            print(f"error: {key} must be a positive number of seconds, got {value!r}",
                  file=sys.stderr)
            return EXIT_BAD_INPUT
    if args.threads < 1:
        print(f"error: --threads must be >= 1, got {args.threads}", file=sys.stderr)
        return EXIT_BAD_INPUT
    named = probes(args.threads)
    if not named:
        print("error: no probe can run here (numpy and torch both unavailable)", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not args.json:
        print(f"timing {len(named)} probes in turns for {args.seconds:g} s ...", file=sys.stderr)
    last = [0.0]

    def progress(elapsed: float) -> None:
        if not args.json and elapsed - last[0] >= 10:
            last[0] = elapsed
            print(f"  {elapsed:.0f} s", file=sys.stderr)

    started = time.perf_counter()
    series, interrupted = measure(named, args.seconds, args.slot, progress)
    if not any(series.values()):
        print("error: no probe could be prepared here" if not interrupted
              else "interrupted before a slot was measured", file=sys.stderr)
        return EXIT_INTERRUPTED if interrupted else EXIT_BAD_INPUT
    result = summarize(series)
    result.update(seconds=min(args.seconds, time.perf_counter() - started), slot_s=args.slot,
                  threads=args.threads, interrupted=interrupted, series_s=series)
    if interrupted and not args.json:
        print("interrupted: the slots measured so far", file=sys.stderr)
    print(json.dumps(result, indent=2) if args.json else format_result(result))
    return EXIT_INTERRUPTED if interrupted else 0
