"""Lay out a worked example in a terminal: numbered steps, formula, shape, values, checks.

    [3] Q = X·W_Q                                         (4×8)
        [[ 0.12 -1.03 ...]]

A `Printer` writes to the stream it is given and remembers the largest difference it has
checked against a library, so a caller (or a test) can read the verdict back.

Tests: tests/tfimpl/test_keras_parity.py.
"""

from __future__ import annotations

from typing import TextIO

import numpy as np

RULE_WIDTH = 78
LIBRARY = "ours - library"
STEPS = "steps - ours"


def shape_str(shape: tuple[int, ...]) -> str:
    """(4, 8) -> '4×8'; () -> 'scalar'."""
    return "×".join(str(n) for n in shape) if shape else "scalar"


class Printer:
    """Numbered steps with fixed-precision arrays; `check` prints max |ours - reference|."""

    def __init__(self, out: TextIO, precision: int = 3, linewidth: int = 110):
        self.out = out
        self.precision = precision
        self.linewidth = linewidth
        self.n_step = 0
        self.checks: list[tuple[str, float]] = []

    def line(self, text: str = "") -> None:
        print(text, file=self.out)

    def header(self, title: str, *formulas: str) -> None:
        self.n_step = 0
        self.line("=" * RULE_WIDTH)
        self.line(title)
        for formula in formulas:
            self.line("    " + formula)
        self.line("=" * RULE_WIDTH)

    def section(self, title: str) -> None:
        self.line()
        self.line(f"-- {title} " + "-" * max(0, RULE_WIDTH - len(title) - 4))

    def step(self, label: str, value, note: str | None = None,
             slice_name: str | None = None) -> np.ndarray:
        """Print step k: label, shape and values; `slice_name` labels the leading axis of a
        3-D array (e.g. 'head') so each slice prints under its own heading. Returns value."""
        self.n_step += 1
        value = np.asarray(value)
        head = f"[{self.n_step}] {label}"
        shape = f"({shape_str(value.shape)})"
        self.line()
        self.line(f"{head}{' ' * max(2, RULE_WIDTH - len(head) - len(shape))}{shape}")
        if note:
            self.line(f"    {note}")
        if slice_name and value.ndim >= 3:
            for i, part in enumerate(value):
                self.line(f"    {slice_name} {i}:")
                self._array(part, indent=6)
        else:
            self._array(value, indent=4)
        return value

    def _array(self, value: np.ndarray, indent: int) -> None:
        with np.printoptions(precision=self.precision, suppress=True, floatmode="fixed",
                             linewidth=self.linewidth - indent, sign=" "):
            text = np.array2string(value) if value.ndim else f"{value:.{self.precision}f}"
        pad = " " * indent
        for row in text.splitlines():
            self.line(pad + row)

    def check(self, label: str, ours, reference, *, what: str = LIBRARY) -> float:
        """Print max |ours - reference| (both converted to float64 NumPy arrays).

        `what` names the two sides: LIBRARY (`ours - library`, our function against a library
        call; remembered in `checks`) or e.g. STEPS (`steps - ours`, the step-by-step numbers
        against our own function)."""
        ours = np.asarray(ours, dtype=np.float64)
        reference = np.asarray(reference, dtype=np.float64)
        if ours.shape != reference.shape:
            raise ValueError(f"check {label!r}: shapes differ, {ours.shape} vs {reference.shape}")
        diff = float(np.max(np.abs(ours - reference))) if ours.size else 0.0
        self.line(f"    max |{what}| = {diff:.1e}   {label}")
        if what == LIBRARY:
            self.checks.append((label, diff))
        return diff

    @property
    def max_library_diff(self) -> float:
        return max((d for _, d in self.checks), default=0.0)
