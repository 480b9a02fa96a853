"""`python -m bench explain`: every topic prints its steps and agrees with the library call."""

import re

import pytest

from bench import cli
from bench.commands import explain as explain_cmd

LIBRARY_DIFF = re.compile(r"max \|ours - library\| = (\S+)")
STEP = re.compile(r"^\[(\d+)\] ", re.MULTILINE)

# Steps each topic must show (a formula fragment per step a learner looks for).
EXPECTED = {
    "softmax": ["m = max_j x_ij", "z = x - m", "e = exp(z)", "p = e / s", "naive exp(x)"],
    "layernorm": ["μ = mean_j x_ij", "σ² = mean_j", "x̂ = (x - μ) / √(σ² + ε)", "y = γ ⊙ x̂ + β"],
    "attention": ["X: 4 token vectors", "Q = X·W_Q", "K = X·W_K", "V = X·W_V",
                  "scores = Q·Kᵀ / √d_k", "A = softmax(scores)", "output = A·V", "(4×8)", "(4×4)",
                  "j > i set to -inf"],
    "mha": ["split heads", "head 3:", "scores_h = Q_h·K_hᵀ / √d_k", "A_h = softmax",
            "concat heads", "output = concat·W_Oᵀ + b_O", "(4×4×2)", "nn.MultiheadAttention"],
    "ffn": ["h = X·W_1ᵀ + b_1", "Φ(h)", "a = GELU(h)", "y = a·W_2ᵀ + b_2", "(3×16)"],
    "encoder_layer": ["a = MHA(X)", "r1 = X + a", "h = LayerNorm_1(r1)", "f = FFN(h)",
                      "r2 = h + f", "out = LayerNorm_2(r2)", "nn.TransformerEncoderLayer"],
    "gradients": ["log10(RMS ∂L/∂x_0", "log10(‖∂L/∂θ_0‖", "post-norm, no residual",
                  "Xavier init", "gradient_flow.png"],
    "lstm": ["x·W_ihᵀ + b_ih for every token", "i = σ(a_i)", "f = σ(a_f)", "g = tanh(a_g)",
             "o = σ(a_o)", "c_1 = f ⊙ c_0 + i ⊙ g", "h_3 = o ⊙ tanh(c_3)", "nn.LSTM"],
}


def run(capsys, *argv):
    rc = cli.main(["explain", *argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def test_topic_names_match_the_guide():
    from bench.guide.explain import TOPICS
    assert tuple(TOPICS) == explain_cmd.TOPIC_NAMES == tuple(EXPECTED)


@pytest.mark.parametrize("topic", list(EXPECTED))
def test_topic_shows_each_step_and_matches_the_library(capsys, topic):
    rc, out, _ = run(capsys, topic)
    assert rc == 0
    for fragment in EXPECTED[topic]:
        assert fragment in out, f"{topic}: missing {fragment!r}"
    steps = [int(n) for n in STEP.findall(out)]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) >= 4
    diffs = [float(d) for d in LIBRARY_DIFF.findall(out)]
    assert diffs, "no comparison with the library printed"
    # Everything runs in float64: a handful of roundings of O(1) numbers, ~1e-16 each.
    assert max(diffs) < 1e-12
    assert "nan" not in out.split("-- check")[1]


def test_numbers_use_the_requested_precision(capsys):
    _, out3, _ = run(capsys, "layernorm")
    _, out5, _ = run(capsys, "layernorm", "--precision", "5")
    assert re.search(r"-?\d+\.\d{3}\b", out3) and not re.search(r"\d+\.\d{4}\b", out3.split("-- check")[0])
    assert re.search(r"\d+\.\d{5}\b", out5)


def test_seeded_output_is_reproducible_and_seed_changes_it(capsys):
    _, a, _ = run(capsys, "mha")
    _, b, _ = run(capsys, "mha")
    _, c, _ = run(capsys, "mha", "--seed", "1")
    assert a == b and a != c


def test_no_topic_lists_topics(capsys):
    rc, out, _ = run(capsys)
    assert rc == 0
    for name in EXPECTED:
        assert name in out


def test_all_prints_every_topic(capsys):
    rc, out, _ = run(capsys, "--all")
    assert rc == 0
    assert out.count("max |ours - library|") >= len(EXPECTED)
    for title in ("softmax:", "layer norm:", "attention: one head", "multi-head attention:",
                  "position-wise feed-forward:", "encoder layer"):
        assert title in out


def test_unknown_topic_is_a_one_line_error(capsys):
    rc, out, err = run(capsys, "transformer")
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and "unknown topic 'transformer'" in err and "softmax" in err


def test_bad_precision_is_refused(capsys):
    rc, _, err = run(capsys, "softmax", "--precision", "0")
    assert rc == 2 and "--precision" in err
