"""AdamW (Loshchilov & Hutter 2019) in NumPy, step for step as torch.optim.AdamW computes it.

For each parameter θ with gradient g, at step t = 1, 2, ...:
    θ ← θ · (1 − lr·λ)                                  decoupled weight decay (not in g)
    m ← β₁ m + (1 − β₁) g                               first moment
    v ← β₂ v + (1 − β₂) g²                              second moment
    v̂_max ← max(v̂_max, v)                               (amsgrad only)
    θ ← θ − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)   bias-corrected step

State: m and v, one array each per parameter (amsgrad: a third), allocated at the first step in
the parameter's dtype; torch keeps them in the parameter's dtype too, so with fp32 weights AdamW
holds 2 × 4 bytes per parameter beside the weights and gradients.
"""

from __future__ import annotations

import math

import numpy as np


class AdamW:
    """In-place AdamW over a dict of named arrays: opt.step(params, grads)."""

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False):
        if lr < 0 or eps < 0 or weight_decay < 0:
            raise ValueError(f"lr, eps and weight_decay must be >= 0, got {lr}, {eps}, {weight_decay}")
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        self.lr, self.betas, self.eps = lr, tuple(betas), eps
        self.weight_decay, self.amsgrad = weight_decay, amsgrad
        self.t = 0
        self.state: dict[str, dict[str, np.ndarray]] = {}

    def step(self, params: dict, grads: dict) -> None:
        """One update of every parameter that has a gradient (in place; names as in params)."""
        self.t += 1
        beta1, beta2 = self.betas
        correction1 = 1.0 - beta1 ** self.t
        sqrt_correction2 = math.sqrt(1.0 - beta2 ** self.t)
        step_size = self.lr / correction1
        for name, g in grads.items():
            if g is None:
                continue
            theta = params[name]
            state = self._state(name, theta)
            m, v = state["m"], state["v"]
            tmp = np.empty_like(theta)                   # the one temporary of this update
            theta *= 1.0 - self.lr * self.weight_decay
            np.subtract(g, m, out=tmp)
            tmp *= 1.0 - beta1
            m += tmp                                     # = β₁ m + (1 − β₁) g  (torch's lerp)
            v *= beta2
            np.multiply(g, g, out=tmp)
            tmp *= 1.0 - beta2
            v += tmp                                     # β₂ v + (1 − β₂) g²
            if self.amsgrad:
                np.maximum(state["v_max"], v, out=state["v_max"])
                v = state["v_max"]
            np.sqrt(v, out=tmp)
            tmp /= sqrt_correction2
            tmp += self.eps                              # √v / √(1 − β₂ᵗ) + ε
            np.divide(m, tmp, out=tmp)
            tmp *= step_size
            theta -= tmp

    def _state(self, name: str, theta: np.ndarray) -> dict[str, np.ndarray]:
        if name not in self.state:
            self.state[name] = {"m": np.zeros_like(theta), "v": np.zeros_like(theta)}
            if self.amsgrad:
                self.state[name]["v_max"] = np.zeros_like(theta)
        return self.state[name]

    def state_bytes(self) -> int:
        """Bytes of optimizer state held now (m, v and v_max arrays)."""
        return int(sum(a.nbytes for s in self.state.values() for a in s.values()))

    def state_dict(self) -> dict:
        """A deep copy of the step count and moments (to restore with load_state_dict)."""
        return {"t": self.t, "state": {n: {k: a.copy() for k, a in s.items()}
                                       for n, s in self.state.items()}}

    def load_state_dict(self, saved: dict) -> None:
        self.t = saved["t"]
        self.state = {n: {k: a.copy() for k, a in s.items()} for n, s in saved["state"].items()}
