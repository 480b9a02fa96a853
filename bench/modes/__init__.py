"""One declaration per mode: what one timed call does, and which costs it incurs.

A mode is `Case.mode`. Its declaration says, once:

- `grad`: weights and float inputs require grad (the call differentiates);
- `flops_parts`: which of tfimpl.costs' FLOP functions add up to one call's analytic count
  ("forward" -> costs.forward_flops, "backward" -> costs.backward_flops);
- `peak_mode`: the `mode` argument of tfimpl.costs.predicted_peak_bytes;
- `reference_mode`: the mode of the float64 run the accuracy check compares against (the
  output of one forward, also for modes that differentiate);
- `torch_step(call, leaves, autocast)`: how the torch implementations turn a forward closure
  into the timed call (inference_mode for a forward; backward of the sum of the outputs and
  grads dropped afterwards so every call allocates them afresh, for forward+backward).

To add a mode: a `Mode(...)` in `MODES` (or `register()` from a plugin module) and, for each
implementation that runs it, its name in that implementation's `modes`. The train mode's steps
and costs are bench/modes/train.py.

Tests: tests/test_train_mode.py, tests/run/test_runner.py (each mode through the runner).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from bench.modes import train as train_mode


@dataclass(frozen=True)
class Mode:
    name: str
    description: str
    grad: bool
    flops_parts: tuple[str, ...]
    peak_mode: str
    reference_mode: str = "forward"
    torch_step: Callable | None = None      # (call, leaves, autocast) -> fn() returning output
    # optional: costs(case, cfg) -> dict of analytic facts beyond flops_parts (bench.plan), e.g.
    # an optimizer step's FLOPs or its state bytes, each from a tfimpl.costs function
    costs: Callable | None = None


def _torch_forward(call: Callable, leaves: list, autocast: Callable) -> Callable:
    import torch

    def fn():
        with torch.inference_mode(), autocast():
            out = call()
        return out[0] if isinstance(out, tuple) else out
    return fn


def _torch_forward_backward(call: Callable, leaves: list, autocast: Callable) -> Callable:
    """The loss is the sum of every returned tensor (the model's pooler included), as
    tfimpl.costs.backward_flops counts it; grads are set to None after each call."""

    def fn():
        with autocast():
            out = call()
        outs = out if isinstance(out, tuple) else (out,)
        sum(o.sum() for o in outs).backward()
        for t in leaves:
            t.grad = None
        return outs[0].detach()
    return fn


MODES: dict[str, Mode] = {}


def register(mode: Mode) -> Mode:
    MODES[mode.name] = mode
    return mode


register(Mode("forward", "one forward pass (torch: under inference_mode)", grad=False,
              flops_parts=("forward",), peak_mode="forward", torch_step=_torch_forward))
register(Mode("forward+backward", "forward, then backward of the outputs' sum (grads fresh "
              "each call)", grad=True, flops_parts=("forward", "backward"),
              peak_mode="forward+backward", torch_step=_torch_forward_backward))


register(Mode("train", "forward, backward, AdamW step; weights and optimizer state restored "
              "after each call (bench/modes/train.py)", grad=True,
              flops_parts=("forward", "backward"), peak_mode="forward+backward",
              torch_step=train_mode.torch_train_step, costs=train_mode.train_costs))


def get(name: str) -> Mode:
    """The declaration of mode `name`; ValueError listing the known modes otherwise."""
    try:
        return MODES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown mode {name!r}; allowed: {', '.join(MODES)}") from None


def names() -> tuple[str, ...]:
    return tuple(MODES)
