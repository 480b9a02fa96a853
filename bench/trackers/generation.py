"""Generation latencies from a generate call's step marks: time to first token (the prefill),
inter-token latency percentiles over the decode steps of the timed calls, tokens/s of each
phase. The implementations of block `generate` (bench/impls/gpt_ours.py, hf_gpt2.py) mark each
step's time inside the call and hand the marks here when the record is made.
Tests: tests/impls/test_gpt2_harness.py.
"""

from __future__ import annotations

from bench.case import Case


def generation_record(case: Case, step_marks: list, record: dict) -> dict:
    """TTFT, inter-token latency percentiles and tokens/s from the timed calls' step times.

    step_marks: one list per call of [prefill seconds, decode step seconds ...]; the timed
    calls are the last n_samples x number_per_sample (warm-up calls came first).
    """
    import numpy as np

    timed = (record.get("n_samples") or 0) * (record.get("number_per_sample") or 1)
    calls = step_marks[-timed:] if timed else step_marks
    if not calls:
        return {}
    prefill = np.array([c[0] for c in calls])
    steps = np.array([s for c in calls for s in c[1:]])
    ttft = float(np.median(prefill))
    out = {"ttft_s": ttft, "prefill_tokens_per_s": case.batch * case.seq_len / ttft}
    if steps.size:
        p50, p90, p99 = np.percentile(steps, [50, 90, 99])
        per_call = np.median([sum(c[1:]) for c in calls])
        out.update(itl_p50_s=float(p50), itl_p90_s=float(p90), itl_p99_s=float(p99),
                   decode_tokens_per_s=case.batch * (len(calls[0]) - 1) / float(per_call))
    return out
