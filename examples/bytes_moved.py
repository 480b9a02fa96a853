"""A metric of your own: "bytes", the minimum bytes one call must move to and from memory.

Registered from outside the package (docs/PLUGINS.md, "A metric of your own"): a config lists
`plugins: [examples.bytes_moved]`, the run's driver fills the record column `bytes_moved_min`
from each finished record (the `value` hook below: no worker needs this module), the analysis
fits it against the swept variable and the report gives it a verdict row against the claims
added here.

What it counts (bytes_per_element e of the case's precision; B batch, T seq_len, D d_model,
H heads, F d_ff; every input read once, every output written once, and every intermediate the
implementation keeps in memory written once and read once):

    attention, materialised path   q, k, v read + out written: 4·B·T·D·e
                                   + the (B, H, T, T) probabilities written and read: 2·B·H·T²·e
    attention, fused path          4·B·T·D·e (the matrix never leaves the kernel)
    ffn                            x read + out written: 2·B·T·D·e, the (B, T, F) hidden written
                                   and read: 2·B·T·F·e, the weights and biases read once:
                                   (2·D·F + F + D)·e
    any other block                None (no claim, no column value)

A lower bound, not a measurement: caches can only make the traffic smaller than what a real
kernel moves (a kernel that spills its scores twice moves more). Theory, at fixed everything
else: attention T² (materialised) or T (fused), ffn T¹ (the weights are a constant term, so
the fit uses the top octaves, where the T-term dominates).
"""

from __future__ import annotations

from bench import blocks, metrics
from bench.blocks import FUSED, MATERIALISED, Claim


def bytes_moved(record: dict) -> float | None:
    """The minimum bytes one call moves (module docstring), from the record's case and facts."""
    e = record.get("bytes_per_element")
    if not e:
        return None
    b, t, d = int(record["batch"]), int(record["seq_len"]), int(record["d_model"])
    h, f = int(record["n_heads"]), int(record["d_ff"])
    if record["block"] == "attention":
        matrix = 2 * b * h * t * t if record.get("attn_materialised") else 0
        return float((4 * b * t * d + matrix) * e)
    if record["block"] == "ffn":
        return float((2 * b * t * d + 2 * b * t * f + 2 * d * f + f + d) * e)
    return None


METRIC = metrics.register(metrics.Metric(
    "bytes", "bytes_moved_min", "bytes", "minimum bytes moved per call (bytes)",
    fit_range="top_octaves", words="minimum bytes moved", value=bytes_moved))

blocks.add_claim("attention", Claim("bytes", "seq_len", 2.0,
                                    "O(n²) bytes moved (materialised path)",
                                    attention=MATERIALISED))
blocks.add_claim("attention", Claim("bytes", "seq_len", 1.0, "O(n) bytes moved (fused path)",
                                    attention=FUSED))
blocks.add_claim("ffn", Claim("bytes", "seq_len", 1.0, "O(n) bytes moved"))
