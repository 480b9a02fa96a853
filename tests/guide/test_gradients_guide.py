"""bench.guide.gradients: gradient norms per layer, our backward against torch, the figure."""

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

from bench.guide.gradients import (INITS, VARIANTS, flow_table, gradient_flow,  # noqa: E402
                                   gradient_flow_figure, init_weights, stack_config)


@pytest.fixture(scope="module")
def flows():
    return {init: gradient_flow(n_layers=8, d_model=16, n_heads=2, d_ff=32, seq_len=5, init=init)
            for init in INITS}


def test_every_variant_matches_torch(flows):
    for init, fl in flows.items():
        assert [f.name for f in fl] == [v[0] for v in VARIANTS]
        for f in fl:
            assert f.torch_rel_err < 1e-10, (init, f.name)
            scale = np.abs(f.torch_input_grads).max(axis=(1, 2, 3), keepdims=True)
            assert (np.abs(f.input_grads - f.torch_input_grads) / scale).max() < 1e-10, (init, f.name)


def test_residuals_carry_the_gradient_down_and_their_absence_does_not(flows):
    """At BERT's init the branches are small: with the identity path the first layer's input
    gradient is the last one's within a few percent; without it, it shrinks geometrically."""
    by_name = {f.name: f for f in flows["bert"]}
    for name in ("post-norm", "pre-norm"):
        ratio = by_name[name].input_rms[0] / by_name[name].input_rms[-1]
        assert 0.8 < ratio < 1.25, (name, ratio)
    for name in ("post-norm, no residual", "pre-norm, no residual"):
        f = by_name[name]
        assert f.input_rms[0] / f.input_rms[-1] < 1e-2, name
        assert np.all(np.diff(np.log(f.input_rms)) > 0), name          # shrinks layer by layer


def test_table_and_figure(flows, tmp_path):
    rows = flow_table(flows["bert"])
    assert len(rows) == 2 + 8 and "post-norm, no residual" in rows[0]
    path = gradient_flow_figure(tmp_path / "g.png", flows)
    from matplotlib.image import imread
    image = imread(path)
    assert image.shape[0] >= 600 and image.shape[1] >= 1000


def test_xavier_init_layout():
    cfg = stack_config(2, 8, 2, 16, norm_first=False)
    w = init_weights("xavier", cfg, seed=0)
    assert np.all(w["layers.0.norm1.weight"] == 1) and np.all(w["layers.1.ffn.ff1.bias"] == 0)
    assert abs(w["layers.0.ffn.ff1.weight"].std() - np.sqrt(2 / (16 + 8))) < 0.05
    with pytest.raises(ValueError, match="init must be one of"):
        init_weights("he", cfg, seed=0)
