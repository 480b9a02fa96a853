"""bench.config + bench.capabilities: every error names the file and the key; overrides; configs."""

import dataclasses
from pathlib import Path

import pytest

from bench import capabilities
from bench.case import CASE_FIELDS, Case
from bench.config import (BOOL_FIELDS, FIELD_CHOICES, NON_NEGATIVE_INT_FIELDS, PLUGIN_FIELDS,
                          POSITIVE_INT_FIELDS, ConfigError, ExecutorConfig, config_hash,
                          load_config, parse_bytes)

CONFIGS = Path(__file__).resolve().parent.parent / "configs"

GOOD = """
name: t
measure: {warmup: 1, min_repeats: 3, min_time_s: 0.01}
defaults: {batch: 1, d_model: 64, n_heads: 4, d_ff: 128, threads: 1}
sweeps:
  - name: a
    fixed: {block: attention}
    grid: {impl: [numpy, torch], seq_len: [16, 32]}
"""


def write(tmp_path, text, name="x.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def error(tmp_path, text, overrides=()):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path, list(overrides))
    message = str(err.value)
    assert "\n" not in message
    return err.value, message


def assert_names(tmp_path, text, key, *fragments, overrides=()):
    exc, message = error(tmp_path, text, overrides)
    assert exc.key == key, message
    assert message.startswith(f"{tmp_path / 'x.yaml'}: {key}: "), message
    for fragment in fragments:
        assert fragment in message, message
    return message


# --- a good config -------------------------------------------------------------------------

def test_good_config_loads_frozen_and_in_order(tmp_path):
    config = load_config(write(tmp_path, GOOD))
    assert config.name == "t" and config.path == tmp_path / "x.yaml"
    assert config.measure.min_time_s == 0.01 and isinstance(config.measure.min_time_s, float)
    assert [(c.impl, c.seq_len) for c in config.cases] == [
        ("numpy", 16), ("numpy", 32), ("torch", 16), ("torch", 32)]
    assert all(c.d_model == 64 and c.block == "attention" for c in config.cases)
    assert config.case_sweeps == ("a",) * 4
    assert config.executor == ExecutorConfig()
    assert config.config_hash == config_hash(config.raw) and len(config.config_hash) == 64
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.name = "other"


def test_name_defaults_to_file_stem_and_top_level_form(tmp_path):
    text = "defaults: {d_model: 64, n_heads: 4, threads: 1}\ngrid: {seq_len: [8, 16]}\n"
    config = load_config(write(tmp_path, text, "my_sweep.yaml"))
    assert config.name == "my_sweep" and [c.seq_len for c in config.cases] == [8, 16]


def test_duplicate_cases_are_kept_once_first_sweep_wins(tmp_path):
    text = """
defaults: {d_model: 64, n_heads: 4, threads: 1}
sweeps:
  - {name: one, grid: {seq_len: [8, 16]}}
  - {name: two, grid: {seq_len: [16, 32]}}
"""
    config = load_config(write(tmp_path, text))
    assert [c.seq_len for c in config.cases] == [8, 16, 32]
    assert config.case_sweeps == ("one", "one", "two")


def test_hash_changes_with_content_not_with_formatting(tmp_path):
    a = load_config(write(tmp_path, GOOD, "a.yaml"))
    b = load_config(write(tmp_path, GOOD.replace("{batch: 1, ", "{ batch:   1, "), "b.yaml"))
    c = load_config(write(tmp_path, GOOD, "c.yaml"), ["seed=3"])
    assert a.config_hash == b.config_hash != c.config_hash


def test_executor_section_is_validated_and_stored(tmp_path):
    text = GOOD + "executor: {kind: ray, address: auto, exclusive: device, retries: 2}\n"
    config = load_config(write(tmp_path, text))
    assert config.executor == ExecutorConfig("ray", "auto", "device", 2)


# --- overrides -----------------------------------------------------------------------------

def test_set_scalar_replaces_a_grid_axis_everywhere(tmp_path):
    config = load_config(write(tmp_path, GOOD), ["seq_len=64", "impl=torch"])
    assert [(c.impl, c.seq_len) for c in config.cases] == [("torch", 64)]
    assert config.raw["defaults"]["seq_len"] == 64
    assert "seq_len" not in config.raw["sweeps"][0]["grid"]


def test_set_list_and_range_become_grid_axes(tmp_path):
    config = load_config(write(tmp_path, GOOD), ["impl=[torch]", "batch=[1, 2]"])
    # impl keeps its place in the grid, batch is a new last (fastest) axis
    assert [(c.impl, c.seq_len, c.batch) for c in config.cases] == [
        ("torch", 16, 1), ("torch", 16, 2), ("torch", 32, 1), ("torch", 32, 2)]
    assert list(config.raw["sweeps"][0]["grid"]) == ["impl", "seq_len", "batch"]
    config = load_config(write(tmp_path, GOOD),
                         ["impl=torch", "seq_len={geometric: {start: 8, stop: 64}}"])
    assert [c.seq_len for c in config.cases] == [8, 16, 32, 64]


def test_set_measure_and_executor_keys(tmp_path):
    config = load_config(write(tmp_path, GOOD),
                         ["measure.min_time_s=1e-3", "measure.isolation=process",
                          "executor.kind=process", "name=renamed"])
    assert config.measure.min_time_s == 0.001 and config.measure.isolation == "process"
    assert config.executor.kind == "process" and config.name == "renamed"
    assert config.raw["measure"]["min_time_s"] == 0.001


def test_set_removes_the_key_from_zip_groups(tmp_path):
    text = """
defaults: {threads: 1}
zip: [{d_model: [64, 128], n_heads: [4, 8]}]
"""
    config = load_config(write(tmp_path, text), ["d_model=256"])
    assert [(c.d_model, c.n_heads) for c in config.cases] == [(256, 4), (256, 8)]


@pytest.mark.parametrize("item, key, fragment", [
    ("threads", "threads", "expected KEY=VALUE"),
    ("colour=red", "colour", "unknown key"),
    ("seq_len=-4", "seq_len", "must be a positive int, got -4"),
    ("seq_len=[8, 0]", "seq_len", "must be a positive int, got 0"),
    ("precision=fp8", "precision", "must be one of fp64, fp32"),
    ("measure.warmup=0", "measure.warmup", "int >= 1"),
    ("measure.speed=1", "measure.speed", "unknown key"),
    ("executor.kind=slurm", "executor.kind", "inline, process, ray"),
    ("seq_len=[1, 2", "seq_len", "not valid YAML"),
])
def test_bad_set_names_set_and_key(tmp_path, item, key, fragment):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, GOOD), [item])
    assert err.value.file == "--set" and err.value.key == key
    assert str(err.value).startswith(f"--set: {key}: ") and fragment in str(err.value)


def test_error_caused_by_set_says_so(tmp_path):
    message = assert_names(tmp_path, GOOD, "defaults.d_model (from --set)", "not divisible",
                           overrides=["d_model=66"])
    assert "n_heads=4" in message


# --- every error path names file and key ---------------------------------------------------

def test_negative_size_message_is_exactly_one_line(tmp_path):
    text = GOOD.replace("seq_len: [16, 32]", "seq_len: [16, -4]")
    exc, message = error(tmp_path, text)
    expected = "sweeps[0].grid.seq_len: must be a positive int, got -4"
    assert message == f"{tmp_path / 'x.yaml'}: {expected}"


def test_unknown_top_level_key(tmp_path):
    assert_names(tmp_path, GOOD + "colour: red\n", "colour", "unknown key", "sweeps")


def test_unknown_case_field(tmp_path):
    assert_names(tmp_path, GOOD.replace("batch: 1", "batchsize: 1"), "defaults.batchsize",
                 "unknown key", "seq_len")


def test_unknown_sweep_key(tmp_path):
    assert_names(tmp_path, GOOD.replace("    fixed:", "    fixd:"), "sweeps[0].fixd",
                 "unknown key", "grid")


def test_wrong_type(tmp_path):
    assert_names(tmp_path, GOOD.replace("block: attention", "seq_len: long"),
                 "sweeps[0].fixed.seq_len", "positive int", "'long'")


def test_zero_size(tmp_path):
    assert_names(tmp_path, GOOD.replace("d_ff: 128", "d_ff: 0"), "defaults.d_ff",
                 "positive int, got 0")


def test_bool_is_not_an_int(tmp_path):
    assert_names(tmp_path, GOOD.replace("batch: 1", "batch: true"), "defaults.batch",
                 "positive int")


def test_bool_field_needs_a_bool(tmp_path):
    assert_names(tmp_path, GOOD.replace("batch: 1", "causal: 1"), "defaults.causal",
                 "true or false")


def test_grid_axis_must_be_a_list(tmp_path):
    assert_names(tmp_path, GOOD.replace("seq_len: [16, 32]", "seq_len: 16"),
                 "sweeps[0].grid.seq_len", "must be a list", "fixed")


def test_d_model_not_divisible_by_n_heads(tmp_path):
    assert_names(tmp_path, GOOD.replace("d_model: 64", "d_model: 66"), "defaults.d_model",
                 "d_model=66 is not divisible by n_heads=4")


def test_impl_cannot_run_block(tmp_path):
    text = GOOD.replace("impl: [numpy, torch]", "impl: [numpy, hf-bert]")
    assert_names(tmp_path, text, "sweeps[0].grid.impl", "'hf-bert' cannot run block "
                 "'attention'", "encoder_layer, encoder, model", "exclude")


def test_impl_cannot_run_precision(tmp_path):
    text = GOOD.replace("block: attention", "block: attention, precision: bf16")
    assert_names(tmp_path, text, "sweeps[0].fixed.precision", "'numpy' cannot run precision "
                 "'bf16'", "fp64, fp32", "exclude: [{impl: numpy, precision: bf16}]")


def test_impl_without_the_mode_is_named(tmp_path):
    text = GOOD.replace("block: attention", "block: ffn, mode: train").replace(
        "impl: [numpy, torch]", "impl: [torch-nn, torch]")
    assert_names(tmp_path, text, "sweeps[0].fixed.mode", "'torch-nn' cannot run mode")


def test_activation_choices(tmp_path):
    assert_names(tmp_path, GOOD.replace("batch: 1", "activation: swish"),
                 "defaults.activation", "relu, gelu, gelu_tanh", "'swish'")


def test_threads_above_cpu_count(tmp_path):
    many = capabilities.available_cpus() + 1
    assert_names(tmp_path, GOOD.replace("threads: 1", f"threads: {many}"), "defaults.threads",
                 f"threads={many}", "CPUs")


def test_cuda_without_a_gpu(tmp_path):
    if capabilities.cuda_available():
        pytest.skip("this machine has a GPU")
    text = GOOD.replace("impl: [numpy, torch]", "impl: [torch]").replace(
        "block: attention", "block: attention, device: cuda")
    assert_names(tmp_path, text, "sweeps[0].fixed.device", "torch.cuda.is_available()")


def test_malformed_yaml_names_line(tmp_path):
    exc, message = error(tmp_path, "name: x\ngrid: {seq_len: [1, 2}\n")
    assert exc.key.startswith("line 2") and "malformed YAML" in message
    assert message.startswith(str(tmp_path / "x.yaml"))


def test_duplicate_yaml_key(tmp_path):
    exc, message = error(tmp_path, "defaults: {seq_len: 8}\ndefaults: {seq_len: 16}\n")
    assert exc.key.startswith("line 2") and "duplicate key 'defaults'" in message


def test_empty_and_non_mapping_and_missing_files(tmp_path):
    assert "empty" in error(tmp_path, "# nothing\n")[1]
    assert "mapping" in error(tmp_path, "- 1\n- 2\n")[1]
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "nope.yaml")
    assert "nope.yaml" in str(err.value) and "cannot read" in str(err.value)
    (tmp_path / "bin.yaml").write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "bin.yaml")
    assert "bin.yaml" in str(err.value) and "UTF-8" in str(err.value)


def test_sweeps_and_top_level_grid_together(tmp_path):
    assert_names(tmp_path, GOOD + "grid: {batch: [1]}\n", "grid", "either")


def test_zip_unequal_lengths(tmp_path):
    text = GOOD + "    zip: [{d_model: [64, 128], n_heads: [4]}]\n"
    assert_names(tmp_path, text, "sweeps[0].zip[0]", "equal lengths")


def test_bad_exclude_value(tmp_path):
    text = GOOD + "    exclude: [{impl: numpy, precision: bf61}]\n"
    assert_names(tmp_path, text, "sweeps[0].exclude[0].precision", "must be one of")


def test_everything_excluded(tmp_path):
    text = GOOD + "    exclude: [{block: attention}]\n"
    assert_names(tmp_path, text, "exclude", "nothing to run")


def test_bad_name(tmp_path):
    assert_names(tmp_path, GOOD.replace("name: t", "name: a/b"), "name", "letters")


@pytest.mark.parametrize("measure, key, fragment", [
    ("{speed: 3}", "measure.speed", "unknown key; allowed: warmup"),
    ("{min_repeats: 0}", "measure.min_repeats", "positive int"),
    ("{min_time_s: -1}", "measure.min_time_s", ">= 0"),
    ("{budget_s: 0}", "measure.budget_s", "> 0"),
    ("{count_flops: 1}", "measure.count_flops", "true or false"),
    ("{isolation: thread}", "measure.isolation", "inline, process"),
    ("{max_memory: 8 gigs}", "measure.max_memory", "8GiB"),
    ("{min_repeats: 10, max_repeats: 5}", "measure.max_repeats", ">= min_repeats"),
    ("[1, 2]", "measure", "mapping"),
])
def test_measure_errors(tmp_path, measure, key, fragment):
    text = GOOD.replace("measure: {warmup: 1, min_repeats: 3, min_time_s: 0.01}",
                        f"measure: {measure}")
    assert_names(tmp_path, text, key, fragment)


@pytest.mark.parametrize("executor, key, fragment", [
    ("{kind: slurm}", "executor.kind", "inline, process, ray"),
    ("{exclusive: core}", "executor.exclusive", "node, device"),
    ("{retries: -1}", "executor.retries", "non-negative"),
    ("{kind: process, address: auto}", "executor.address", "only with kind: ray"),
    ("{where: here}", "executor.where", "unknown key"),
])
def test_executor_errors(tmp_path, executor, key, fragment):
    assert_names(tmp_path, GOOD + f"executor: {executor}\n", key, fragment)


def test_parse_bytes():
    assert parse_bytes("8GiB") == 8 * 2**30
    assert parse_bytes("512MiB") == 512 * 2**20
    assert parse_bytes("1.5GB") == 1_500_000_000
    assert parse_bytes("4096") == 4096
    for bad in ("8 gigs", "GiB", "-1GiB"):
        with pytest.raises(ValueError):
            parse_bytes(bad)


def test_max_memory_accepted(tmp_path):
    text = GOOD.replace("min_time_s: 0.01}", "min_time_s: 0.01, max_memory: 512MiB}")
    assert load_config(write(tmp_path, text)).measure.max_memory == "512MiB"


# --- capabilities ----------------------------------------------------------------------------

def test_every_case_field_has_exactly_one_rule():
    rules = list(FIELD_CHOICES) + list(PLUGIN_FIELDS) + list(POSITIVE_INT_FIELDS) + list(NON_NEGATIVE_INT_FIELDS) \
        + list(BOOL_FIELDS)
    assert sorted(rules) == sorted(CASE_FIELDS)


@pytest.mark.parametrize("changes, field", [
    ({}, None),
    ({"impl": "torch-nn", "block": "model"}, "impl"),
    ({"impl": "hf-bert", "block": "encoder_layer"}, None),
    ({"impl": "hf-bert", "block": "model", "norm_first": True}, "norm_first"),
    ({"impl": "hf-bert", "block": "encoder", "causal": True}, "causal"),
    ({"impl": "numpy", "precision": "amp-bf16"}, "precision"),
    ({"impl": "numpy", "precision": "fp64"}, None),
    ({"impl": "torch-sdpa", "precision": "amp-fp16", "mode": "forward+backward"}, None),
    ({"impl": "numpy", "device": "cuda"}, "device"),
    ({"d_model": 100, "n_heads": 12}, "d_model"),
    ({"threads": 3}, "threads"),
    ({"block": "ffn", "causal": True}, "causal"),
    ({"impl": "torch-nn", "block": "mha", "causal": True}, None),
])
def test_check_fields(changes, field):
    case = dataclasses.replace(Case(threads=1), **changes)
    problem = capabilities.check_fields(case, cuda=False, cpus=2)
    assert (problem and problem[0]) == field or (problem is None and field is None), problem
    assert (capabilities.check(case, cuda=False, cpus=2) is None) == (field is None)


def test_cuda_case_runs_where_cuda_is_available():
    case = Case(impl="torch", device="cuda", threads=1)
    assert capabilities.check(case, cuda=True, cpus=2) is None
    assert "cuda" in capabilities.check(case, cuda=False, cpus=2)


def test_caveat_warns_about_fp16_on_cpu():
    assert capabilities.caveat(Case(precision="fp16")) is not None
    assert capabilities.caveat(Case(precision="bf16")) is None


# --- the shipped configs ---------------------------------------------------------------------

@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load(path):
    config = load_config(path, ["threads=1"])      # threads=1 so a 1-CPU CI runner passes
    assert config.cases and config.description


def test_smoke_is_tiny():
    config = load_config(CONFIGS / "smoke.yaml", ["threads=1"])
    assert {c.impl for c in config.cases} == {"numpy", "torch"}
    assert {c.block for c in config.cases} == {"attention", "ffn"}
    assert max(c.seq_len for c in config.cases) <= 32 and {c.d_model for c in config.cases} == {64}
    assert config.measure.min_time_s <= 0.01 and config.measure.warmup == 1


def test_seq_sweep_covers_what_the_analysis_needs():
    config = load_config(CONFIGS / "seq_sweep.yaml", ["threads=1"])
    attention = [c for c in config.cases if c.block == "attention"]
    lengths = sorted({c.seq_len for c in attention})
    assert lengths[0] <= 32 and lengths[-1] >= 2048
    # the fit wants 4 points whose fp32 score matrix (B*H*T*T*4 bytes) is >= 2x a 35.8 MiB LLC
    assert len([t for t in lengths if 12 * t * t * 4 >= 2 * 35.8 * 2**20]) >= 4
    assert any(t & (t - 1) for t in lengths)                        # non-powers of two
    assert {c.impl for c in attention} == {"numpy", "torch", "torch-sdpa", "torch-nn"}
    assert {c.n_heads for c in config.cases if c.d_model == 768} == {12}
    # the d side at fixed n (d_k = 64): 4 widths past 2x a 35.8 MiB LLC for each time fit
    llc2 = 2 * 35.8 * 2**20
    att_d = {c.d_model for c in attention if c.seq_len == 1024}
    ffn_d = {c.d_model for c in config.cases if c.block == "ffn" and c.seq_len == 256}
    assert len([d for d in att_d if (d // 64) * 1024 * 1024 * 4 >= llc2]) >= 4
    assert len([d for d in ffn_d if 32 * d * d + 256 * 5 * d * 4 >= llc2]) >= 4
    assert all(c.d_model == 64 * c.n_heads for c in config.cases)
    assert not any(c.impl == "numpy" and c.precision != "fp32" for c in config.cases)
    layer = [c for c in config.cases if c.block == "encoder_layer"]
    assert {c.precision for c in layer} == {"fp32", "bf16", "amp-bf16"}
    assert min(c.seq_len for c in layer) <= 256 <= max(c.seq_len for c in layer)
