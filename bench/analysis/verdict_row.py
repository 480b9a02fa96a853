"""One verdict row: the type every verdict section returns (scaling, crossover, params, precision
in bench.analysis.verdicts; training; generation), and the verdict words they share.

A row is what report.md's `## Verdicts` table prints and what summary.json["claims"] holds:
`VerdictRow.to_dict()` is that dict, its keys in the order summary.json has always had them:

    id, kind, claim, block, metric, variable, impl, [ffn_impl], precision, [d_model], theory,
    theory_text, value, ci_low, ci_high, unit, fit_range, verdict, sentence, then `extra`

(`ffn_impl` and `d_model` only on crossover rows; training and generation rows carry
theory_text right after kind, as they always have.) Rows also read like that dict
(`row["verdict"]`, `row.get("d_model")`), for code written against summary.json.

Verdict words: held / did not hold / not enough data; `band_verdict` is the factor-band test
the crossover, precision and training rows share (claims.verdict is the exponent's).

Tests: tests/analysis/test_verdicts.py, tests/analysis/test_training_verdicts.py
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

HELD = "held"
NOT_HELD = "did not hold"
NOT_ENOUGH = "not enough data"

_ORDER = ("id", "kind", "claim", "block", "metric", "variable", "impl", "precision", "theory",
          "theory_text", "value", "ci_low", "ci_high", "unit", "fit_range", "verdict", "sentence")
_TEXT_FIRST = ("id", "kind", "theory_text") + tuple(
    k for k in _ORDER if k not in ("id", "kind", "theory_text"))
_TEXT_FIRST_KINDS = ("training", "generation")


@dataclass(frozen=True)
class VerdictRow:
    """One claim tested by a run (see module docstring)."""

    id: str
    kind: str
    claim: str
    block: str
    metric: str
    variable: str | None
    impl: str
    precision: str | None
    theory: Any
    theory_text: str
    value: Any
    ci_low: Any
    ci_high: Any
    unit: str
    fit_range: str
    verdict: str
    sentence: str
    ffn_impl: str | None = None         # crossover: the implementation of the ffn side
    d_model: int | None = None          # crossover: the width it was measured at
    extra: dict = field(default_factory=dict)   # section-specific keys, after sentence

    def to_dict(self) -> dict:
        out = {}
        for name in _TEXT_FIRST if self.kind in _TEXT_FIRST_KINDS else _ORDER:
            out[name] = getattr(self, name)
            if name == "impl" and self.ffn_impl is not None:
                out["ffn_impl"] = self.ffn_impl
            if name == "precision" and self.d_model is not None:
                out["d_model"] = self.d_model
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, row: dict) -> "VerdictRow":
        """The row back from summary.json["claims"] (to_dict's inverse)."""
        names = _ORDER + ("ffn_impl", "d_model")
        return cls(**{k: row.get(k) for k in names},
                   extra={k: v for k, v in row.items() if k not in names})

    def __getitem__(self, key: str):
        return self.to_dict()[key]

    def get(self, key: str, default=None):
        return self.to_dict().get(key, default)


def band_verdict(lo, hi, target: float, factor: float) -> str:
    """held: [lo, hi] within [target/factor, target·factor]; did not hold: wholly outside."""
    if lo is None or hi is None:
        return NOT_ENOUGH
    a, b = target / factor, target * factor
    if lo >= a and hi <= b:
        return HELD
    if hi < a or lo > b:
        return NOT_HELD
    return NOT_ENOUGH
