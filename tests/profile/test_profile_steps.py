"""The profile's step-wise forwards equal tfimpl's own forwards to the last bit (float64)."""

import dataclasses

import numpy as np
import pytest

from bench.profile import spec as profile_spec
from tfimpl.config import ModelConfig

CFG = ModelConfig(d_model=32, n_heads=4, d_ff=64, n_layers=2, vocab_size=100, max_position=64)
BLOCKS = ["attention", "mha", "ffn", "encoder_layer", "encoder", "model"]


def _spec(block, impl, activation="gelu"):
    cfg = dataclasses.replace(CFG, activation=activation)
    return profile_spec.ProfileSpec(target=block, block=block, preset="test", cfg=cfg, impl=impl,
                                    batch=2, seq_len=24, precision="fp64", threads=1)


def _as_list(out):
    return list(out) if isinstance(out, tuple) else [out]


class Recorder:
    """Marks that remember which steps ran, in order (and what was added)."""

    def __init__(self):
        self.names = []

    def __call__(self, name):
        import contextlib

        self.names.append(name)
        return contextlib.nullcontext()

    def add(self, name, seconds):
        self.names.append(name)


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("activation", ["gelu", "relu"])
def test_numpy_steps_equal_tfimpl(block, activation):
    from bench.profile import steps_numpy

    s = _spec(block, "numpy", activation)
    p, inputs = profile_spec.float64_params(s), profile_spec.float64_inputs(s)
    marks = Recorder()
    steps = _as_list(steps_numpy.block_steps(block, p, inputs, s.cfg, marks))
    whole = _as_list(steps_numpy.block_forward(block, p, inputs, s.cfg))
    for a, b in zip(steps, whole, strict=True):
        assert a.dtype == np.float64 and np.array_equal(a, b)
    from tfimpl.costs import components
    assert set(marks.names) == set(components(block, "explicit"))


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("impl", ["torch", "torch-sdpa"])
def test_torch_steps_equal_tfimpl(block, impl):
    torch = pytest.importorskip("torch")
    from bench.profile import steps_torch
    from tfimpl.costs import components

    s = _spec(block, impl)
    p = profile_spec.cast(s, profile_spec.float64_params(s))
    inputs = profile_spec.cast(s, profile_spec.float64_inputs(s))
    marks = Recorder()
    with torch.inference_mode():
        steps = _as_list(steps_torch.block_steps(block, p, inputs, s.cfg, s.attn_impl, marks))
        whole = _as_list(steps_torch.block_forward(block, p, inputs, s.cfg, s.attn_impl))
    for a, b in zip(steps, whole, strict=True):
        assert a.dtype == torch.float64 and torch.equal(a, b)
    assert marks.names[:len(components(block, s.attn_impl))] == list(
        components(block, s.attn_impl)) or block == "model"
    assert set(marks.names) == set(components(block, s.attn_impl))


def test_numpy_attention_split_sums_to_its_wall_time():
    from bench.profile import steps_numpy

    class Adder(Recorder):
        def __init__(self):
            super().__init__()
            self.seconds = {}

        def add(self, name, seconds):
            self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    ticks = iter(range(10_000))
    clock = lambda: float(next(ticks))                 # noqa: E731  every read: one second later
    s = _spec("attention", "numpy")
    inputs = profile_spec.float64_inputs(s)
    marks = Adder()
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):                         # tiles in this thread: ticks in order
        steps_numpy.attention_steps(inputs["q"], inputs["k"], inputs["v"], marks=marks, clock=clock)
    assert set(marks.seconds) == {"scores", "softmax", "weighted_sum"}
    tiles = 2                                          # B=2 entries, all 4 heads in one tile each
    wall = 1 + 4 * tiles                               # reads: start, 4 per tile, end
    assert sum(marks.seconds.values()) == pytest.approx(wall)
    assert marks.seconds["scores"] == pytest.approx(wall / 3)   # each step one tick per tile
