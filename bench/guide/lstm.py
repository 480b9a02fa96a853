"""`python -m bench explain lstm`: one LSTM cell step by step, beside torch.nn.LSTM.

Three tokens through an LSTM of hidden size 4 (input size 3), float64: each step's input
projection, the four gates [i | f | g | o] (torch's order), the cell update and the output,
then the same numbers from tfimpl.numpy.recurrent.lstm and from torch.nn.LSTM loaded with the
same state dict. Step t needs h_{t-1}: the loop cannot run its steps at once (attention can).

Tests: tests/guide/test_explain.py.
"""

from __future__ import annotations

import numpy as np
import torch

from bench.guide.printer import STEPS, Printer
from tfimpl.numpy.recurrent import lstm, sigmoid
from tfimpl.params import recurrent_shapes


def explain_lstm(pr: Printer, seed: int) -> None:
    T, I, H = 3, 3, 4
    rng = np.random.default_rng(seed)
    p = {name: rng.normal(size=shape) / np.sqrt(H)
         for name, shape in recurrent_shapes("lstm", I, H, 1).items()}
    X = np.random.default_rng(seed + 1).normal(size=(T, I))
    pr.header(f"LSTM: {T} tokens of width {I}, hidden size h = {H} (gates [i | f | g | o], "
              f"torch's order)",
              "a_t = x_t·W_ihᵀ + b_ih + h_{t-1}·W_hhᵀ + b_hh   (4h = 16 numbers per token)",
              "i, f, o = σ(a_i), σ(a_f), σ(a_o);  g = tanh(a_g)",
              "c_t = f ⊙ c_{t-1} + i ⊙ g;   h_t = o ⊙ tanh(c_t)   (h_0 = c_0 = 0)")
    pr.step(f"X: {T} tokens × I={I}", X)
    a_x = pr.step("x·W_ihᵀ + b_ih for every token at once (no dependence between tokens)",
                  X @ p["weight_ih_l0"].T + p["bias_ih_l0"])
    h, c = np.zeros(H), np.zeros(H)
    outs = []
    for t in range(T):
        pr.section(f"step t = {t + 1} (needs h_{t} from the step before)")
        a = pr.step(f"a_{t + 1} = (x·W_ihᵀ + b_ih)[{t}] + h_{t}·W_hhᵀ + b_hh",
                    a_x[t] + h @ p["weight_hh_l0"].T + p["bias_hh_l0"])
        i, f, g, o = (pr.step(label, fn(part)) for label, fn, part in (
            ("i = σ(a_i): how much of the candidate to write", sigmoid, a[0:H]),
            ("f = σ(a_f): how much of the old cell to keep", sigmoid, a[H:2 * H]),
            ("g = tanh(a_g): the candidate", np.tanh, a[2 * H:3 * H]),
            ("o = σ(a_o): how much of the cell to show", sigmoid, a[3 * H:4 * H])))
        c = pr.step(f"c_{t + 1} = f ⊙ c_{t} + i ⊙ g", f * c + i * g)
        h = pr.step(f"h_{t + 1} = o ⊙ tanh(c_{t + 1})", o * np.tanh(c))
        outs.append(h)
    steps = np.stack(outs)
    ours, (h_n, c_n) = lstm(p, X[None])
    module = torch.nn.LSTM(I, H, batch_first=True, dtype=torch.float64)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in p.items()})
    with torch.no_grad():
        ref, (ref_h, ref_c) = module(torch.from_numpy(X[None]))
    pr.section("check")
    pr.check("steps vs tfimpl.numpy.recurrent.lstm", steps, ours[0], what=STEPS)
    pr.line(f"    library: torch.nn.LSTM({I}, {H}, batch_first=True), the same state dict "
            "(weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0)")
    pr.check("ours vs nn.LSTM: outputs h_1..h_T", ours[0], ref[0].numpy())
    pr.check("ours vs nn.LSTM: final (h_n, c_n)", np.concatenate([h_n[0, 0], c_n[0, 0]]),
             np.concatenate([ref_h[0, 0].numpy(), ref_c[0, 0].numpy()]))
    pr.line(f"    {T} tokens took {T} dependent steps; state carried: h and c, 2·h = {2 * H} "
            f"numbers whatever T (attention keeps all T keys and values)")
