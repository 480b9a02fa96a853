"""LSTM and GRU layers from first principles (mirrors tfimpl.numpy.recurrent step for step).

The equations, gate order ([i | f | g | o], [r | z | n]) and parameter names (weight_ih_l{k},
weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k}) are torch.nn.LSTM's and torch.nn.GRU's, so their
state dicts load as they are; tfimpl.numpy.recurrent's docstring writes the equations out.

The loop is explicit: one (B·T, I)·(I, G) input projection, then T matmuls (B, h)·(h, G), one
per step, each a separate kernel launch waiting for the one before. That is the sequential cost
the comparison with attention is about; torch.nn.LSTM runs the same arithmetic in one fused
ATen call (cuDNN on CUDA). Without an initial state the first step's h₀ W_hhᵀ is skipped (h₀ = 0),
so FlopCounterMode counts 2·B·T·I·G + 2·B·(T − 1)·h·G forward (tfimpl.costs.recurrent).
Differentiable: autograd runs back through the loop (BPTT). The steps read a_x through
`unbind` (one backward that stacks the T step gradients), not a_x[:, t]: each slice's backward
would write a zero tensor of a_x's full size, T times, O(T²) work for an O(T) gradient.
"""

from __future__ import annotations

import torch

from tfimpl.numpy.recurrent import GATES, layer_names, n_layers_of


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(x)


def lstm_cell(a_x, h, c, w_hh, b_hh):
    """One LSTM step from a_x = x_t W_ihᵀ + b_ih (B, 4h); h, c (B, h) or None (zero state)."""
    a = a_x + b_hh if h is None else a_x + h @ w_hh.T + b_hh          # (B, 4h)
    a_i, a_f, a_g, a_o = a.chunk(4, dim=-1)                            # (B, h) each
    i = sigmoid(a_i)                                                   # (B, h) input gate
    f = sigmoid(a_f)                                                   # (B, h) forget gate
    g = torch.tanh(a_g)                                                # (B, h) candidate
    o = sigmoid(a_o)                                                   # (B, h) output gate
    c_t = i * g if c is None else f * c + i * g                        # (B, h)
    h_t = o * torch.tanh(c_t)                                          # (B, h)
    return h_t, c_t, (i, f, g, o)


def gru_cell(a_x, h, w_hh, b_hh):
    """One GRU step from a_x = x_t W_ihᵀ + b_ih (B, 3h); h (B, h) or None (zero state)."""
    a_h = b_hh if h is None else h @ w_hh.T + b_hh                     # (B, 3h) or (3h,)
    x_r, x_z, x_n = a_x.chunk(3, dim=-1)                               # (B, h) each
    hh_r, hh_z, hh_n = a_h.chunk(3, dim=-1)                            # (B, h) or (h,) each
    r = sigmoid(x_r + hh_r)                                            # (B, h) reset gate
    z = sigmoid(x_z + hh_z)                                            # (B, h) update gate
    a_hn = hh_n.expand_as(r)                                           # (B, h)
    n = torch.tanh(x_n + r * a_hn)                                     # (B, h) candidate
    h_t = (1.0 - z) * n if h is None else (1.0 - z) * n + z * h        # (B, h)
    return h_t, (r, z, n, a_hn)


def _check(x, p, kind):
    if x.dim() != 3:
        raise ValueError(f"{kind}: x must be (B, T, I) (batch first), got shape {tuple(x.shape)}")
    w_ih = p["weight_ih_l0"]
    if w_ih.shape[1] != x.shape[-1] or w_ih.shape[0] % GATES[kind]:
        raise ValueError(f"{kind}: weight_ih_l0 {tuple(w_ih.shape)} does not fit x "
                         f"{tuple(x.shape)}")
    return w_ih.shape[0] // GATES[kind]


def lstm(p: dict, x: torch.Tensor, state=None):
    """As tfimpl.numpy.recurrent.lstm: (out (B, T, h), (h_n, c_n) (L, B, h) each)."""
    _check(x, p, "lstm")
    h_n, c_n = [], []
    for k in range(n_layers_of(p)):
        w_ih, w_hh, b_ih, b_hh = (p[name] for name in layer_names(k))
        a_x = x @ w_ih.T + b_ih                                       # (B, T, 4h): all steps
        a_steps = a_x.unbind(1)                                       # T views (B, 4h)
        h, c = (None, None) if state is None else (state[0][k], state[1][k])
        steps = []
        for t in range(x.shape[1]):                                   # T sequential steps
            h, c, _ = lstm_cell(a_steps[t], h, c, w_hh, b_hh)           # (B, h) each
            steps.append(h)
        h_n.append(h)
        c_n.append(c)
        x = torch.stack(steps, dim=1)                                 # (B, T, h)
        del a_x, a_steps, steps                                     # before the next layer's
    return x, (torch.stack(h_n), torch.stack(c_n))                     # (L, B, h) each


def gru(p: dict, x: torch.Tensor, state=None):
    """As tfimpl.numpy.recurrent.gru: (out (B, T, h), h_n (L, B, h))."""
    _check(x, p, "gru")
    h_n = []
    for k in range(n_layers_of(p)):
        w_ih, w_hh, b_ih, b_hh = (p[name] for name in layer_names(k))
        a_x = x @ w_ih.T + b_ih                                       # (B, T, 3h): all steps
        a_steps = a_x.unbind(1)                                       # T views (B, 3h)
        h = None if state is None else state[k]
        steps = []
        for t in range(x.shape[1]):                                   # T sequential steps
            h, _ = gru_cell(a_steps[t], h, w_hh, b_hh)                  # (B, h)
            steps.append(h)
        h_n.append(h)
        x = torch.stack(steps, dim=1)                                 # (B, T, h)
        del a_x, a_steps, steps                                     # before the next layer's
    return x, torch.stack(h_n)                                         # (L, B, h)
