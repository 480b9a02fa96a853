"""LSTM and GRU layers from first principles (Hochreiter & Schmidhuber 1997; Cho et al. 2014).

Torch's equations, gate order and parameter names, so a `torch.nn.LSTM` / `torch.nn.GRU` state
dict (batch_first, bias=True) is a parameter mapping here as it stands. Per layer k, with
input x_t (B, I), state h (B, h) (and c for the LSTM), G = 4h (LSTM) or 3h (GRU) gate rows:

    weight_ih_l{k} (G, I)   weight_hh_l{k} (G, h)   bias_ih_l{k} (G,)   bias_hh_l{k} (G,)

LSTM, gates [i | f | g | o] (rows 0:h, h:2h, 2h:3h, 3h:4h):
    a_t = x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh        (B, 4h)
    i = σ(a_i), f = σ(a_f), g = tanh(a_g), o = σ(a_o)
    c_t = f ⊙ c_{t-1} + i ⊙ g
    h_t = o ⊙ tanh(c_t)

GRU, gates [r | z | n]:
    r = σ(x W_irᵀ + b_ir + h W_hrᵀ + b_hr)
    z = σ(x W_izᵀ + b_iz + h W_hzᵀ + b_hz)
    n = tanh(x W_inᵀ + b_in + r ⊙ (h W_hnᵀ + b_hn))
    h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}

How the work is arranged (the same in tfimpl.torch.recurrent): the input projection
x W_ihᵀ + b_ih of all T steps is ONE matmul (B·T, I)·(I, G) before the loop; the recurrence is
then T matmuls of (B, h)·(h, G), one per step, each waiting for the last: T sequential steps
however many cores there are (attention has one). Without an initial state h₀ = c₀ = 0, so the
first step's h₀ W_hhᵀ is zero and is skipped (b_hh is still added): T − 1 recurrent matmuls.
FLOPs, state and activation bytes: tfimpl.costs.recurrent.
"""

from __future__ import annotations

import numpy as np

GATES = {"lstm": 4, "gru": 3}


def sigmoid(x: np.ndarray) -> np.ndarray:
    """σ(x) = 1 / (1 + e^{−x}), written as ½(1 + tanh(x/2)): the same number, no overflow."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def layer_names(k: int) -> tuple[str, str, str, str]:
    """torch's names of layer k's parameters: weight_ih, weight_hh, bias_ih, bias_hh."""
    return (f"weight_ih_l{k}", f"weight_hh_l{k}", f"bias_ih_l{k}", f"bias_hh_l{k}")


def n_layers_of(p: dict) -> int:
    """How many layers a parameter mapping holds (weight_ih_l0, weight_ih_l1, ...)."""
    n = 0
    while f"weight_ih_l{n}" in p:
        n += 1
    if n == 0:
        raise ValueError("no weight_ih_l0 among the parameters: not an LSTM/GRU state dict")
    return n


def lstm_cell(a_x, h, c, w_hh, b_hh):
    """One LSTM step from the step's input projection a_x = x_t W_ihᵀ + b_ih (B, 4h).

    h, c: (B, h) or None (zero state: the h W_hhᵀ term is skipped). Returns (h_t, c_t, gates)
    with gates (i, f, g, o) after their non-linearities, each (B, h).
    """
    a = a_x + b_hh if h is None else a_x + h @ w_hh.T + b_hh          # (B, 4h)
    a_i, a_f, a_g, a_o = np.split(a, 4, axis=-1)                       # (B, h) each
    i = sigmoid(a_i)                                                   # (B, h) input gate
    f = sigmoid(a_f)                                                   # (B, h) forget gate
    g = np.tanh(a_g)                                                   # (B, h) candidate
    o = sigmoid(a_o)                                                   # (B, h) output gate
    c_t = i * g if c is None else f * c + i * g                        # (B, h)
    h_t = o * np.tanh(c_t)                                             # (B, h)
    return h_t, c_t, (i, f, g, o)


def gru_cell(a_x, h, w_hh, b_hh):
    """One GRU step from a_x = x_t W_ihᵀ + b_ih (B, 3h); h (B, h) or None (zero state).

    Returns (h_t, (r, z, n, a_hn)) with a_hn = h W_hnᵀ + b_hn (B, h), what n's reset multiplies.
    """
    a_h = b_hh if h is None else h @ w_hh.T + b_hh                     # (B, 3h) or (3h,)
    x_r, x_z, x_n = np.split(a_x, 3, axis=-1)                          # (B, h) each
    hh_r, hh_z, hh_n = np.split(a_h, 3, axis=-1)                       # (B, h) or (h,) each
    r = sigmoid(x_r + hh_r)                                            # (B, h) reset gate
    z = sigmoid(x_z + hh_z)                                            # (B, h) update gate
    a_hn = np.broadcast_to(hh_n, r.shape)                              # (B, h)
    n = np.tanh(x_n + r * a_hn)                                        # (B, h) candidate
    h_t = (1.0 - z) * n if h is None else (1.0 - z) * n + z * h        # (B, h)
    return h_t, (r, z, n, a_hn)


def _check(x, p, kind):
    if x.ndim != 3:
        raise ValueError(f"{kind}: x must be (B, T, I) (batch first), got shape {x.shape}")
    w_ih = p["weight_ih_l0"]
    if w_ih.shape[1] != x.shape[-1] or w_ih.shape[0] % GATES[kind]:
        raise ValueError(f"{kind}: weight_ih_l0 {w_ih.shape} does not fit x {x.shape}")
    return w_ih.shape[0] // GATES[kind]


def lstm(p: dict, x: np.ndarray, state=None):
    """A multi-layer LSTM over x (B, T, I), batch first, as torch.nn.LSTM(batch_first=True).

    state: None (zeros) or (h0, c0), each (L, B, h). Returns (out (B, T, h), (h_n, c_n)), h_n
    and c_n (L, B, h): the last step's state of every layer. Layer k > 0 reads layer k−1's out.
    """
    hid = _check(x, p, "lstm")
    h_n, c_n = [], []
    for k in range(n_layers_of(p)):
        w_ih, w_hh, b_ih, b_hh = (p[name] for name in layer_names(k))
        a_x = x @ w_ih.T                                              # (B, T, 4h): all steps
        a_x += b_ih
        h, c = (None, None) if state is None else (state[0][k], state[1][k])
        out = np.empty(x.shape[:2] + (hid,), dtype=a_x.dtype)           # (B, T, h)
        for t in range(x.shape[1]):                                   # T sequential steps
            h, c, _ = lstm_cell(a_x[:, t], h, c, w_hh, b_hh)           # (B, h) each
            out[:, t] = h
        del a_x                                                       # before the next layer's
        h_n.append(h)
        c_n.append(c)
        x = out
    return x, (np.stack(h_n), np.stack(c_n))                           # (L, B, h) each


def gru(p: dict, x: np.ndarray, state=None):
    """A multi-layer GRU over x (B, T, I), batch first, as torch.nn.GRU(batch_first=True).

    state: None (zeros) or h0 (L, B, h). Returns (out (B, T, h), h_n (L, B, h)).
    """
    hid = _check(x, p, "gru")
    h_n = []
    for k in range(n_layers_of(p)):
        w_ih, w_hh, b_ih, b_hh = (p[name] for name in layer_names(k))
        a_x = x @ w_ih.T                                              # (B, T, 3h): all steps
        a_x += b_ih
        h = None if state is None else state[k]
        out = np.empty(x.shape[:2] + (hid,), dtype=a_x.dtype)           # (B, T, h)
        for t in range(x.shape[1]):                                   # T sequential steps
            h, _ = gru_cell(a_x[:, t], h, w_hh, b_hh)                  # (B, h)
            out[:, t] = h
        del a_x                                                       # before the next layer's
        h_n.append(h)
        x = out
    return x, np.stack(h_n)                                            # (L, B, h)
