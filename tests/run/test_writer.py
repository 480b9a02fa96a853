"""bench.run.writer: atomic appends, torn-tail repair, resume compaction, run folder naming."""

import json
import re

import pytest

from bench.record import SCHEMA_VERSION
from bench.run.writer import (RECORDS_FILE, RunDirError, RunWriter, is_done, new_run_dir,
                          read_records)


def _record(case_id, status="ok", **extra):
    return {"case_id": case_id, "status": status, "samples_s": [0.1, 0.2], **extra}


@pytest.fixture
def writer(tmp_path):
    return RunWriter.create(tmp_path / "run", "name: t\n", {"config_hash": "abc"})


def test_create_writes_config_meta_and_empty_records(writer):
    assert (writer.run_dir / "config.yaml").read_text() == "name: t\n"
    assert writer.read_meta() == {"config_hash": "abc", "schema_version": SCHEMA_VERSION}
    assert (writer.run_dir / RECORDS_FILE).read_bytes() == b""
    assert read_records(writer.run_dir) == []


def test_append_writes_one_full_line_per_record(writer):
    writer.append(_record("a"))
    writer.append(_record("b", status="failed: boom"))
    lines = (writer.run_dir / RECORDS_FILE).read_text().splitlines()
    assert [json.loads(line)["case_id"] for line in lines] == ["a", "b"]
    assert read_records(writer.run_dir) == [_record("a"), _record("b", status="failed: boom")]


def test_torn_last_line_is_dropped_then_truncated_on_reopen(writer):
    writer.append(_record("a"))
    path = writer.run_dir / RECORDS_FILE
    with open(path, "ab") as fh:
        fh.write(b'{"case_id": "b", "stat')                 # a kill in the middle of a write
    with pytest.warns(UserWarning, match="torn"):
        assert [r["case_id"] for r in read_records(writer.run_dir)] == ["a"]
    reopened, kept = RunWriter.reopen(writer.run_dir)
    assert [r["case_id"] for r in kept] == ["a"]
    assert path.read_bytes() == (json.dumps(_record("a")) + "\n").encode()
    reopened.append(_record("c"))
    assert [r["case_id"] for r in read_records(writer.run_dir)] == ["a", "c"]


def test_unparsable_last_line_with_newline_is_torn_too(writer):
    writer.append(_record("a"))
    with open(writer.run_dir / RECORDS_FILE, "ab") as fh:
        fh.write(b"{not json}\n")
    with pytest.warns(UserWarning, match="unparsable last line"):
        assert len(read_records(writer.run_dir)) == 1


def test_corrupt_middle_line_is_an_error_not_silently_skipped(writer):
    path = writer.run_dir / RECORDS_FILE
    path.write_text(json.dumps(_record("a")) + "\n{garbage\n" + json.dumps(_record("b")) + "\n")
    with pytest.raises(RunDirError, match="line 2"):
        read_records(writer.run_dir)


def test_reopen_keeps_ok_and_skipped_drops_failed_and_duplicates(writer):
    for record in (_record("a"), _record("b", status="failed: x"), _record("c", status="skipped: y"),
                   _record("a", status="ok", note="duplicate")):
        writer.append(record)
    _, kept = RunWriter.reopen(writer.run_dir)
    assert [(r["case_id"], r["status"]) for r in kept] == [("a", "ok"), ("c", "skipped: y")]
    assert read_records(writer.run_dir) == kept


def test_is_done():
    assert is_done({"status": "ok"}) and is_done({"status": "skipped: needs 3 GiB"})
    assert not is_done({"status": "failed: timeout after 5 s"}) and not is_done({})


def test_reopen_refuses_a_folder_without_meta(tmp_path):
    with pytest.raises(RunDirError, match="not a tfbench run"):
        RunWriter.reopen(tmp_path)


def test_update_meta_merges(writer):
    writer.update_meta(status="complete", end_time=12.5)
    assert writer.read_meta() == {"config_hash": "abc", "status": "complete", "end_time": 12.5,
                                  "schema_version": SCHEMA_VERSION}


def test_csv_has_one_row_per_record_and_lists_as_json(writer):
    import pandas as pd

    writer.append(_record("a", median_s=0.15))
    writer.append(_record("b", status="failed: x"))
    frame = pd.read_csv(writer.write_csv())
    assert list(frame["case_id"]) == ["a", "b"]
    assert json.loads(frame["samples_s"][0]) == [0.1, 0.2]


def test_new_run_dir_names_and_never_reuses(tmp_path):
    first = new_run_dir(tmp_path, "smoke")
    assert re.fullmatch(r"smoke-\d{8}-\d{6}", first.name)
    first.mkdir()
    second = new_run_dir(tmp_path, "smoke")
    assert second != first and not second.exists()
