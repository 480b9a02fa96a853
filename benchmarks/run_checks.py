"""The repeatability checks of one run folder, printed: wall time, unstable and interfered cases,
the first torch case against the next size, how warm-up went.

    python benchmarks/run_checks.py results/rep-A [results/rep-B ...]

Reads records.jsonl and meta.json only (bench.writer.check_run_dir); measures nothing. Pair it
with `python -m bench compare A B` for the run-to-run figures. Exit 2 on a bad folder.
"""

from __future__ import annotations

import sys


def _attention_ratio(records: list[dict], impl: str = "torch") -> str:
    by_t = {r["seq_len"]: r for r in records if r.get("status") == "ok"
            and r.get("impl") == impl and r.get("block") == "attention"
            and r.get("precision") == "fp32"}
    if 32 not in by_t or 64 not in by_t:
        return f"{impl} attention T=32/T=64: not in this run"
    a, b = by_t[32]["median_s"], by_t[64]["median_s"]
    return (f"{impl} attention T=32 {a * 1e3:.4g} ms, T=64 {b * 1e3:.4g} ms: ratio {a / b:.2f} "
            f"(must be < 3); T=32 warm-up {by_t[32].get('warmup_calls')} call(s), settled "
            f"{by_t[32].get('warmup_settled')}")


def check(run_dir: str) -> list[str]:
    from bench.writer import check_run_dir

    records, meta = check_run_dir(run_dir)
    ok = [r for r in records if r.get("status") == "ok"]
    sessions = meta.get("sessions") or []
    wall = sum((s.get("end_time") or 0) - (s.get("start_time") or 0) for s in sessions)
    unstable = [r for r in ok if r.get("unstable")]
    interfered = [r for r in ok if r.get("interference")]
    retimed = [r for r in ok if (r.get("timing_attempts") or 1) > 1]
    unsettled = [r for r in ok if r.get("warmup_settled") is False]
    remeasured = [r for r in ok if (r.get("rounds") or 1) > 1]
    share = len(unstable) / len(ok) if ok else float("nan")
    lines = [f"{run_dir}: {len(ok)} ok of {len(records)} records, {meta.get('n_cases')} cases; "
             f"status {meta.get('status')}; wall {wall:.0f} s over {len(sessions)} session(s) "
             "(budget 180 s)",
             f"  unstable (IQR/median > spread_warn after re-measuring): {len(unstable)} "
             f"({share:.1%}; must be <= 5%)",
             f"  re-measured: {len(remeasured)}; warm-up not settled within its time cap: "
             f"{len(unsettled)}",
             f"  interference flagged: {len(interfered)}; re-timed: {len(retimed)}",
             "  " + _attention_ratio(ok)]
    for r in unstable[:10]:
        lines.append(f"    unstable: {r['impl']}/{r['block']} {r['precision']} T={r['seq_len']} "
                     f"spread {r['spread']:.0%} n={r['n_samples']} rounds={r.get('rounds')}")
    return lines


def main(argv: list[str]) -> int:
    from bench.writer import RunDirError

    if not argv:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    for run_dir in argv:
        try:
            print("\n".join(check(run_dir)))
        except RunDirError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
