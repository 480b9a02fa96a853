"""bench.config.sweep: axis forms and the grid x zip product with excludes (hand-computed values)."""

import pytest

from bench.config.sweep import SweepError, expand, expand_axis, geometric, int_range, matches, zip_groups


def test_range_is_inclusive_of_stop():
    assert int_range({"start": 64, "stop": 256, "step": 64}) == [64, 128, 192, 256]
    assert int_range({"start": 1, "stop": 4}) == [1, 2, 3, 4]
    assert int_range({"start": 10, "stop": 25, "step": 10}) == [10, 20]


def test_geometric_factor_two_is_exact():
    assert geometric({"start": 64, "stop": 4096}) == [64, 128, 256, 512, 1024, 2048, 4096]
    assert geometric({"start": 32, "stop": 2000, "factor": 4}) == [32, 128, 512]


def test_geometric_extra_points_are_merged_sorted_and_deduplicated():
    assert geometric({"start": 64, "stop": 512, "extra": [96, 128, 768]}) == \
        [64, 96, 128, 256, 512, 768]


def test_geometric_points_per_octave_rounds_to_multiples_of_8():
    # 32 * 2^(k/2) = 32, 45.25, 64, 90.51, 128, 181.02, 256 -> nearest multiples of 8
    assert geometric({"start": 32, "stop": 256, "points_per_octave": 2}) == \
        [32, 48, 64, 88, 128, 184, 256]
    assert geometric({"start": 32, "stop": 256, "points_per_octave": 2, "round_to": 1}) == \
        [32, 45, 64, 91, 128, 181, 256]


def test_geometric_non_integer_factor_rounds_to_int():
    # 10 * 1.5^k = 10, 15, 22.5, 33.75, 50.6, 75.9 (a half rounds up)
    assert geometric({"start": 10, "stop": 100, "factor": 1.5}) == [10, 15, 23, 34, 51, 76]


@pytest.mark.parametrize("spec, key", [
    ({"start": 0, "stop": 8}, "g.start"),
    ({"start": 8, "stop": 4}, "g.stop"),
    ({"start": 8, "stop": 64, "factor": 1}, "g.factor"),
    ({"start": 8, "stop": 64, "factor": 2, "points_per_octave": 2}, "g.points_per_octave"),
    ({"start": 8, "stop": 64, "extra": [0]}, "g.extra"),
    ({"start": 8, "stop": 64, "steps": 2}, "g.steps"),
    ({"stop": 64}, "g.start"),
])
def test_geometric_errors_name_the_key(spec, key):
    with pytest.raises(SweepError) as err:
        geometric(spec, "g")
    assert err.value.key == key


def test_expand_axis_forms():
    assert expand_axis([3, 1], "a") == [3, 1]
    assert expand_axis({"range": {"start": 1, "stop": 3}}, "a") == [1, 2, 3]
    assert expand_axis({"geometric": {"start": 2, "stop": 8}}, "a") == [2, 4, 8]
    for bad in (5, [], {"linear": {}}, {"range": {"start": 1, "stop": 2}, "extra": 1}):
        with pytest.raises(SweepError) as err:
            expand_axis(bad, "grid.seq_len")
        assert err.value.key.startswith("grid.seq_len")


def test_grid_is_a_product_last_axis_fastest():
    out = expand({"block": "ffn"}, {"impl": ["numpy", "torch"], "seq_len": [16, 32]}, [], [])
    assert out == [
        {"block": "ffn", "impl": "numpy", "seq_len": 16},
        {"block": "ffn", "impl": "numpy", "seq_len": 32},
        {"block": "ffn", "impl": "torch", "seq_len": 16},
        {"block": "ffn", "impl": "torch", "seq_len": 32},
    ]


def test_zip_varies_axes_together_times_the_grid():
    zips = zip_groups({"d_model": [256, 512], "n_heads": [4, 8]})
    out = expand({}, {"impl": ["numpy", "torch"]}, zips, [])
    assert [(p["impl"], p["d_model"], p["n_heads"]) for p in out] == [
        ("numpy", 256, 4), ("numpy", 512, 8), ("torch", 256, 4), ("torch", 512, 8)]


def test_zip_of_unequal_lengths_is_an_error():
    with pytest.raises(SweepError) as err:
        expand({}, {}, [{"d_model": [256, 512], "n_heads": [4]}], [], "sweeps[1]")
    assert err.value.key == "sweeps[1].zip[0]"
    assert "d_model: 2" in err.value.message and "n_heads: 1" in err.value.message


def test_exclude_drops_partial_matches_and_lists_match_any():
    grid = {"impl": ["numpy", "torch"], "precision": ["fp32", "bf16", "amp-bf16"]}
    out = expand({}, grid, [], [{"impl": "numpy", "precision": ["bf16", "amp-bf16"]}])
    assert [(p["impl"], p["precision"]) for p in out] == [
        ("numpy", "fp32"), ("torch", "fp32"), ("torch", "bf16"), ("torch", "amp-bf16")]
    assert matches({"a": 1, "b": 2}, {"a": 1}) and not matches({"a": 1}, {"a": 1, "b": 2})


def test_a_key_in_two_places_is_an_error():
    with pytest.raises(SweepError) as err:
        expand({"seq_len": 8}, {"seq_len": [16]}, [], [], "sweeps[0]")
    assert err.value.key == "sweeps[0].grid.seq_len"
    assert "sweeps[0].fixed.seq_len" in err.value.message


def test_zip_groups_must_be_mappings():
    with pytest.raises(SweepError) as err:
        zip_groups([[1, 2]], "zip")
    assert err.value.key == "zip"
