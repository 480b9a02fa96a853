"""`python -m bench params` and `python -m bench flops`: exact numbers (parsed from --json),
the text a reader sees, and the error paths."""

import pytest

from bench.cli import dispatch as main
from support import run, run_json

BERT_BASE = {"total": 109_482_240, "embeddings": 23_837_184, "embeddings.word": 23_440_896,
             "per_layer": 7_087_872, "pooler": 590_592}


# ---- params ------------------------------------------------------------------------------

def test_params_bert_base_numbers_and_library_check(capsys):
    s = run_json(capsys, "params", "bert-base")
    for key, value in BERT_BASE.items():
        assert s["params"][key] == value
    assert s["layers"]["encoder_layer"]["total"] == 7_087_872
    assert s["memory_bytes"] == {"fp32": 437_928_960, "bf16": 218_964_480,
                                 "fp16": 218_964_480, "int8": 109_482_240}
    assert s["library_name"] == "transformers.BertModel"
    assert set(s["counted"].values()) == {109_482_240}
    assert len(s["counted"]) == 3 and s["check"] is True


def test_params_text_shows_the_breakdown(capsys):
    rc, out, _ = run(capsys, "params", "bert-base", "--no-counted")
    assert rc == 0
    for number in ("109,482,240", "23,837,184", "23,440,896", "7,087,872", "590,592", "437.9 MB"):
        assert number in out
    assert "counted" not in out


def test_params_bert_large_analytic(capsys):
    s = run_json(capsys, "params", "bert-large", "--no-counted")
    assert s["params"]["total"] == 335_141_888
    assert s["check"] is None and s["counted"] == {"analytic": 335_141_888}


def test_params_small_model_is_built_and_counted(capsys):
    s = run_json(capsys, "params", "minilm-l6")
    assert s["counted"]["tfimpl.numpy"] == s["counted"]["tfimpl.torch"] == 22_713_216
    assert s["counted"]["library"] == 22_713_216 and s["check"] is True


def test_params_transformer_base_shares_one_table(capsys):
    s = run_json(capsys, "params", "transformer-base")
    assert s["kind"] == "seq2seq"
    assert s["params"]["embeddings.shared"] == 37_000 * 512
    assert s["params"]["total"] == 44_140_544 + 37_000 * 512
    assert s["library_name"] == "torch.nn.Transformer"
    assert s["counted"]["analytic"] == s["counted"]["library"] == 44_140_544
    assert s["check"] is True


def test_params_explicit_sizes(capsys):
    s = run_json(capsys, "params", "--d-model", "256", "--layers", "4", "--heads", "4",
                 "--vocab", "1000", "--no-counted")
    d, f = 256, 1024                                  # d_ff defaults to 4·D
    layer = 4 * d * d + 2 * d * f + f + 9 * d
    embeddings = (1000 + 512 + 2) * d + 2 * d
    assert s["config"]["d_ff"] == f
    assert s["params"]["total"] == 4 * layer + embeddings + d * d + d


def test_params_preset_with_one_size_changed(capsys):
    s = run_json(capsys, "params", "bert-base", "--layers", "6", "--no-counted")
    assert s["model"] == "bert-base (modified)"
    assert s["params"]["total"] == 109_482_240 - 6 * 7_087_872


def test_params_unknown_model(capsys):
    rc, out, err = run(capsys, "params", "gpt-5")
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and "gpt-5" in err and "bert-base" in err


def test_params_bad_size_names_the_flag(capsys):
    rc, _, err = run(capsys, "params", "--d-model", "100", "--heads", "3")
    assert rc == 2 and "--d-model" in err and "--heads" in err
    rc, _, err = run(capsys, "params", "bert-base", "--layers", "0")
    assert rc == 2 and "--layers" in err


# ---- flops -------------------------------------------------------------------------------

def test_flops_bert_base_numbers(capsys):
    s = run_json(capsys, "flops", "bert-base", "--seq-len", "512", "--batch", "2")
    b, t, d, f, layers = 2, 512, 768, 3072, 12
    per_layer = 8 * b * t * d * d + 4 * b * t * d * f + 4 * b * t * t * d
    assert s["forward"]["matmul"] == layers * per_layer + 2 * b * d * d
    assert s["forward"]["attn_scores"] == layers * 2 * b * t * t * d
    assert s["forward"]["pooler"] == 2 * b * d * d
    assert s["forward_backward"]["matmul"] == 3 * s["forward"]["matmul"]
    assert s["attention_flops"] == layers * 4 * b * t * t * d
    assert s["attention_share"] == pytest.approx(s["attention_flops"] / s["forward"]["matmul"])
    assert s["crossover_seq_len"] == {"encoder_layer": 2 * d + f}
    n = 109_482_240 - 23_837_184
    assert s["non_embedding_params"] == n
    assert s["per_token"]["kaplan_forward"] == 2 * n + 2 * layers * t * d
    assert s["per_token"]["kaplan_train"] == 6 * n
    assert s["per_token"]["ours_forward"] == pytest.approx(s["forward"]["matmul"] / (b * t))
    assert len(s["differences"]) == 3


def test_flops_difference_decomposition_is_exact(capsys):
    """2N - our linear matmuls per token = 2·(biases + norm params) + pooler's excess."""
    s = run_json(capsys, "flops", "bert-base", "--seq-len", "128")
    pt, d, t = s["per_token"], 768, 128
    excess = 2 * s["bias_and_norm_params"] + 2 * (d * d + d) - 2 * d * d / t
    assert pt["kaplan_2n"] - pt["ours_linear_forward"] == pytest.approx(excess)


def test_flops_text(capsys):
    rc, out, _ = run(capsys, "flops", "bert-base", "--seq-len", "512")
    assert rc == 0
    assert "T* = 4,608" in out and "96,637,943,808" in out and "Kaplan" in out


def test_flops_transformer_counts_cross_attention(capsys):
    s = run_json(capsys, "flops", "transformer-base", "--seq-len", "64")
    assert s["block"] == "transformer"
    assert s["forward"]["cross_attn_scores"] == 6 * 2 * 64 * 64 * 512
    assert s["logits_flops"] == 2 * 64 * 512 * 37_000
    assert s["crossover_seq_len"] == {"encoder_layer": 3072, "decoder_layer": 2048}


@pytest.mark.parametrize("argv, needle", [
    (["flops", "nope", "--seq-len", "8"], "unknown model 'nope'"),
    (["flops", "bert-base", "--seq-len", "0"], "--seq-len must be a positive int"),
    (["flops", "bert-base", "--seq-len", "8", "--batch", "-1"], "--batch must be a positive int"),
])
def test_flops_errors(capsys, argv, needle):
    rc, out, err = run(capsys, *argv)
    assert rc == 2 and out == "" and needle in err


def test_flops_requires_seq_len(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["flops", "bert-base"])
    assert exc.value.code == 2
    assert "--seq-len" in capsys.readouterr().err
