"""The run's description reflects --set overrides (bench.analysis.describe)."""

from bench.analysis.describe import describe_cases, effective_description

CASES = [{"block": "attention", "seq_len": 128, "d_model": 768, "batch": 1, "threads": 2,
          "precision": "fp32"},
         {"block": "ffn", "seq_len": 128, "d_model": 768, "batch": 1, "threads": 2,
          "precision": "fp32"},
         {"block": "ffn", "seq_len": 128, "d_model": 768, "batch": 1, "threads": 2,
          "precision": "bf16"}]


def test_no_case_override_keeps_the_configured_text():
    assert effective_description("seq_len 32..4096", [], CASES) == "seq_len 32..4096"
    assert effective_description("seq_len 32..4096", ["measure.min_time_s=0.02",
                                                      "executor.kind=process"], CASES) \
        == "seq_len 32..4096"


def test_an_override_says_what_was_run():
    text = effective_description("seq_len 32..4096 at d 768", ["seq_len=[128]"], CASES)
    assert text == ("seq_len 32..4096 at d 768 (configured); as run with --set seq_len=[128]: "
                    "attention seq_len 128, d_model 768, fp32; ffn seq_len 128, d_model 768, "
                    "bf16/fp32")


def test_long_axes_are_ranges_and_varying_threads_show():
    cases = [{"block": "ffn", "seq_len": n, "d_model": 768, "threads": t, "precision": "fp32"}
             for n in (32, 64, 128, 256) for t in (1, 2)]
    assert describe_cases(cases) == "ffn seq_len 32..256 (4 sizes), d_model 768, threads 1, 2, fp32"
