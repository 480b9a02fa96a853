"""`python -m bench noise`: the summary on synthetic slot series, a short real run, bad input."""

import json
import time

import numpy as np
import pytest

from bench.cli import dispatch as cli
from bench.commands import noise


def test_a_quiet_machine_is_called_quiet():
    rng = np.random.default_rng(0)
    series = {"a": list(0.002 * (1 + rng.uniform(0, 0.02, 40))),
              "b": list(0.010 * (1 + rng.uniform(0, 0.02, 40)))}
    result = noise.summarize(series)
    assert result["quiet"] and all(p["share_within_band"] == 1.0 for p in result["probes"].values())
    assert result["probes"]["a"]["p10"] >= 1.0 and result["probes"]["a"]["max"] <= 1.02
    assert "quiet:" in noise.format_result({**result, "seconds": 10, "slot_s": 0.25})


def test_spells_shared_by_every_probe_are_the_machines():
    spell = np.r_[np.ones(20), np.full(20, 1.3), np.ones(20)]          # a slow stretch, all probes
    jitter = np.random.default_rng(1).uniform(0, 0.01, (2, 60))
    series = {"a": list(0.002 * (spell + jitter[0])), "b": list(0.010 * (spell + jitter[1]))}
    result = noise.summarize(series)
    assert not result["quiet"] and result["mean_correlation"] > 0.95
    assert result["probes"]["a"]["share_within_band"] == pytest.approx(40 / 60)
    text = noise.format_result({**result, "seconds": 10, "slot_s": 0.25})
    assert "noisy:" in text and "the machine, not one library" in text


def test_a_short_real_run_prints_json(capsys):
    assert cli(["noise", "--seconds", "0.3", "--slot", "0.02", "--threads", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["probes"] and all(p["slots"] >= 1 and p["best_s"] > 0
                                    for p in result["probes"].values())
    assert set(result["series_s"]) == set(result["probes"])


@pytest.mark.parametrize("argv, words", [(["--seconds", "0"], "--seconds must be a positive"),
                                         (["--slot", "-1"], "--slot must be a positive"),
                                         (["--threads", "0"], "--threads must be >= 1")])
def test_bad_input_is_one_line_and_exit_2(argv, words, capsys):
    assert cli(["noise", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]


def test_ctrl_c_summarizes_the_slots_measured_so_far(monkeypatch, capsys):
    import bench.impls.prepare

    class Fake:
        calls = 0

        def fn(self):
            Fake.calls += 1
            time.sleep(0.0005)                    # ~2 calls per 1 ms slot
            if Fake.calls == 200:
                raise KeyboardInterrupt

        def teardown(self):
            pass

    monkeypatch.setattr(bench.impls.prepare, "prepare", lambda case: Fake())
    assert cli(["noise", "--seconds", "60", "--slot", "0.001", "--threads", "1"]) == 130
    out, err = capsys.readouterr()
    assert "interrupted: the slots measured so far" in err and "machine noise over" in out
