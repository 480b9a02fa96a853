"""Backpropagation through time for tfimpl.numpy.recurrent's LSTM and GRU, from first principles.

`lstm_forward` / `gru_forward` compute what tfimpl.numpy.recurrent.lstm / gru compute and keep,
per layer, what the backward reads; `*_backward(cache, grad_out, grad_state=None)` returns
(grad_x, grads, grad_state0): ∂L/∂x (B, T, I), ∂L/∂θ keyed weight_ih_l{k}, ..., and ∂L/∂h₀
(∂L/∂c₀) where an initial state was given (None otherwise). The steps run backwards, t = T−1 .. 0,
each adding its share to the weight gradients; layers run backwards too, layer k's ∂L/∂x being
layer k−1's ∂L/∂out.

LSTM step (a = pre-activations, gates i, f, g, o after σ / tanh, s = tanh(c_t)):
    dh = ∂L/∂h_t (from the output and from step t+1)      dc = ∂L/∂c_t (from step t+1)
    do = dh ⊙ s                dc += dh ⊙ o ⊙ (1 − s²)
    di = dc ⊙ g   df = dc ⊙ c_{t-1}   dg = dc ⊙ i          dc_{t-1} = dc ⊙ f
    da = [di ⊙ i(1−i) | df ⊙ f(1−f) | dg ⊙ (1−g²) | do ⊙ o(1−o)]           (B, 4h)
    dh_{t-1} = da W_hh      ∂W_hh += daᵀ h_{t-1}      ∂b_hh += Σ_B da
GRU step (a_hn = h W_hnᵀ + b_hn, n = tanh(a_xn + r ⊙ a_hn)):
    dn = dh ⊙ (1 − z)   dz = dh ⊙ (h_{t-1} − n)   dh_{t-1} = dh ⊙ z
    dan = dn ⊙ (1 − n²)   dr = dan ⊙ a_hn
    da_x = [dr ⊙ r(1−r) | dz ⊙ z(1−z) | dan]    da_h = [.. | .. | dan ⊙ r]       (B, 3h)
    dh_{t-1} += da_h W_hh   ∂W_hh += da_hᵀ h_{t-1}   ∂b_hh += Σ_B da_h
Then for the whole sequence at once (one matmul each, as the forward's input projection):
    ∂W_ih = Σ_{B,T} da_xᵀ x     ∂b_ih = Σ_{B,T} da_x     ∂L/∂x = da_x W_ih
With no initial state the first step has no h_{t-1} (zero): no W_hh term there.
Float64 results equal torch autograd's through torch.nn.LSTM / nn.GRU to ~1e-12.
"""

from __future__ import annotations

import numpy as np

from tfimpl.numpy.recurrent import _check, gru_cell, layer_names, lstm_cell, n_layers_of


def lstm_forward(p: dict, x: np.ndarray, state=None):
    """(out (B, T, h), cache); cache per layer: x, a_x-free step records and the states."""
    hid = _check(x, p, "lstm")
    layers = []
    h_n, c_n = [], []
    for k in range(n_layers_of(p)):
        w_ih, w_hh, b_ih, b_hh = (p[name] for name in layer_names(k))
        a_x = x @ w_ih.T + b_ih                                       # (B, T, 4h)
        h, c = (None, None) if state is None else (state[0][k], state[1][k])
        B, T = x.shape[:2]
        out = np.empty((B, T, hid), dtype=a_x.dtype)                  # (B, T, h): h_t
        cells = np.empty((B, T, hid), dtype=a_x.dtype)                # (B, T, h): c_t
        gates = np.empty((B, T, 4 * hid), dtype=a_x.dtype)            # (B, T, 4h): i f g o
        h0, c0 = h, c
        for t in range(T):
            h, c, (i, f, g, o) = lstm_cell(a_x[:, t], h, c, w_hh, b_hh)
            out[:, t], cells[:, t] = h, c
            gates[:, t] = np.concatenate((i, f, g, o), axis=-1)
        del a_x
        layers.append({"x": x, "out": out, "cells": cells, "gates": gates, "h0": h0, "c0": c0,
                       "w_ih": w_ih, "w_hh": w_hh, "k": k})
        h_n.append(h)
        c_n.append(c)
        x = out
    return x, {"layers": layers, "kind": "lstm", "h_n": np.stack(h_n), "c_n": np.stack(c_n)}


def _lstm_layer_backward(L: dict, grad_out, dh_last, dc_last):
    x, out, cells, gates, w_hh = L["x"], L["out"], L["cells"], L["gates"], L["w_hh"]
    B, T, hid = out.shape
    da_all = np.empty_like(gates)                                     # (B, T, 4h)
    dw_hh = np.zeros_like(w_hh)
    dh = np.zeros((B, hid), dtype=out.dtype) if dh_last is None else dh_last.copy()
    dc = np.zeros((B, hid), dtype=out.dtype) if dc_last is None else dc_last.copy()
    for t in range(T - 1, -1, -1):
        i, f, g, o = np.split(gates[:, t], 4, axis=-1)                # (B, h) each
        c_prev = cells[:, t - 1] if t > 0 else L["c0"]
        h_prev = out[:, t - 1] if t > 0 else L["h0"]
        dh = dh + grad_out[:, t]
        s = np.tanh(cells[:, t])
        do = dh * s
        dc = dc + dh * o * (1.0 - s * s)
        di, dg = dc * g, dc * i
        df = dc * c_prev if c_prev is not None else np.zeros_like(dc)
        da = np.concatenate((di * i * (1.0 - i), df * f * (1.0 - f), dg * (1.0 - g * g),
                             do * o * (1.0 - o)), axis=-1)             # (B, 4h)
        da_all[:, t] = da
        dc = dc * f
        if h_prev is not None:
            dw_hh += da.T @ h_prev                                    # (4h, h)
            dh = da @ w_hh                                            # (B, h)
        else:
            dh = None
    return _input_grads(L, da_all, dw_hh), dh, (dc if L["c0"] is not None else None)


def _input_grads(L: dict, da_all, dw_hh):
    """∂L/∂x and the layer's four gradients from every step's da_x (B, T, G) at once."""
    x, w_ih, k = L["x"], L["w_ih"], L["k"]
    flat = da_all.reshape(-1, da_all.shape[-1])                       # (B·T, G)
    grads = {f"weight_ih_l{k}": flat.T @ x.reshape(-1, x.shape[-1]),  # (G, I)
             f"weight_hh_l{k}": dw_hh,                                # (G, h)
             f"bias_ih_l{k}": flat.sum(axis=0)}                       # (G,)
    return da_all @ w_ih, grads                                       # (B, T, I)


def _backward(cache, grad_out, grad_state, layer_backward, n_state):
    layers = cache["layers"]
    grads: dict = {}
    state0 = [[None] * len(layers) for _ in range(n_state)]
    for L in reversed(layers):
        k = L["k"]
        last = [None if grad_state is None else grad_state[j][k] for j in range(n_state)]
        (grad_out, g), *first = layer_backward(L, grad_out, *last)
        grads.update(g)
        for j in range(n_state):
            state0[j][k] = first[j]
    has_state = layers[0]["h0"] is not None
    state = [np.stack(s) for s in state0] if has_state else None
    return grad_out, grads, state


def lstm_backward(cache, grad_out, grad_state=None):
    """(∂L/∂x, grads, (∂L/∂h₀, ∂L/∂c₀) or None); grad_state: (∂L/∂h_n, ∂L/∂c_n) or None."""
    def layer(L, g_out, dh, dc):
        (dx, grads), dh0, dc0 = _lstm_layer_backward(L, g_out, dh, dc)
        grads[f"bias_hh_l{L['k']}"] = grads[f"bias_ih_l{L['k']}"].copy()   # a = .. + b_ih + b_hh
        return (dx, grads), dh0, dc0
    dx, grads, state = _backward(cache, grad_out, grad_state, layer, 2)
    return dx, grads, None if state is None else tuple(state)


def gru_forward(p: dict, x: np.ndarray, state=None):
    """(out (B, T, h), cache); cache per layer: x, outputs, gates r z n and a_hn."""
    hid = _check(x, p, "gru")
    layers, h_n = [], []
    for k in range(n_layers_of(p)):
        w_ih, w_hh, b_ih, b_hh = (p[name] for name in layer_names(k))
        a_x = x @ w_ih.T + b_ih                                       # (B, T, 3h)
        h = None if state is None else state[k]
        B, T = x.shape[:2]
        out = np.empty((B, T, hid), dtype=a_x.dtype)                  # (B, T, h)
        gates = np.empty((B, T, 4 * hid), dtype=a_x.dtype)            # (B, T, 4h): r z n a_hn
        h0 = h
        for t in range(T):
            h, (r, z, n, a_hn) = gru_cell(a_x[:, t], h, w_hh, b_hh)
            out[:, t] = h
            gates[:, t] = np.concatenate((r, z, n, a_hn), axis=-1)
        del a_x
        layers.append({"x": x, "out": out, "gates": gates, "h0": h0, "w_ih": w_ih,
                       "w_hh": w_hh, "k": k})
        h_n.append(h)
        x = out
    return x, {"layers": layers, "kind": "gru", "h_n": np.stack(h_n)}


def _gru_layer_backward(L: dict, grad_out, dh_last):
    x, out, gates, w_hh, k = L["x"], L["out"], L["gates"], L["w_hh"], L["k"]
    B, T, hid = out.shape
    da_x_all = np.empty((B, T, 3 * hid), dtype=out.dtype)             # (B, T, 3h)
    dw_hh = np.zeros_like(w_hh)
    db_hh = np.zeros(3 * hid, dtype=out.dtype)
    dh = np.zeros((B, hid), dtype=out.dtype) if dh_last is None else dh_last.copy()
    for t in range(T - 1, -1, -1):
        r, z, n, a_hn = np.split(gates[:, t], 4, axis=-1)             # (B, h) each
        h_prev = out[:, t - 1] if t > 0 else L["h0"]
        dh = dh + grad_out[:, t]
        dn = dh * (1.0 - z)
        dz = dh * ((0.0 if h_prev is None else h_prev) - n)            # h_t = n + z ⊙ (h − n)
        dan = dn * (1.0 - n * n)
        dr = dan * a_hn
        dar, daz = dr * r * (1.0 - r), dz * z * (1.0 - z)
        da_x_all[:, t] = np.concatenate((dar, daz, dan), axis=-1)
        da_h = np.concatenate((dar, daz, dan * r), axis=-1)           # (B, 3h)
        db_hh += da_h.sum(axis=0)
        if h_prev is not None:
            dw_hh += da_h.T @ h_prev                                  # (3h, h)
            dh = dh * z + da_h @ w_hh                                 # (B, h)
        else:
            dh = None
    (dx, grads) = _input_grads(L, da_x_all, dw_hh)
    grads[f"bias_hh_l{k}"] = db_hh
    return (dx, grads), dh


def gru_backward(cache, grad_out, grad_state=None):
    """(∂L/∂x, grads, ∂L/∂h₀ or None); grad_state: ∂L/∂h_n (L, B, h) or None."""
    wrapped = None if grad_state is None else (grad_state,)
    dx, grads, state = _backward(cache, grad_out, wrapped, _gru_layer_backward, 1)
    return dx, grads, None if state is None else state[0]
