"""The run folder's one writer: `results/<run-id>/{config.yaml, meta.json, records.jsonl}`.

Only the driver process writes here; executors hand records back to it. Each record is one JSON
line written with a single `write()` and made durable with `fsync`, so a kill at any moment leaves
either the whole line or a torn tail. A torn tail (no final newline, or an unparsable last line)
is dropped when reading and truncated away before appending, never parsed as data.
`RunWriter.create` stamps meta.json with `schema_version` (bench.record.SCHEMA_VERSION).

Resume keeps the records whose status is `ok` or `skipped: ...` and rewrites the file without
the `failed: ...` ones (atomically: temporary file + `os.replace`), so after a resumed run every
case appears exactly once.

Reading a folder (read_records, read_meta, read_config, check_run_dir, RunDirError, the file
names, is_done, the passes' merge) is bench.reader, where the analysis may import it without
bench.run; those names are re-exported here for the run stage and older imports.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from bench.record import SCHEMA_VERSION, VERSION_KEY
from bench.reader import (CONFIG_FILE, CSV_FILE, META_FILE, PASS_KEY,  # noqa: F401 (re-exported)
                          RECORDS_FILE, RunDirError, _read_bytes, _valid_lines, check_run_dir,
                          check_version, is_done, is_pass_line, merge, read_config, read_meta,
                          read_records)


def run_dir_name(config_name: str, when: float | None = None) -> str:
    """`<config-name>-<YYYYmmdd-HHMMSS>` in local time."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if when is None else when))
    return f"{config_name}-{stamp}"


def new_run_dir(results_root: str | os.PathLike, config_name: str) -> Path:
    """A fresh folder name under `results_root` (suffix `-2`, `-3`, ... if the second is taken)."""
    root = Path(results_root)
    base = run_dir_name(config_name)
    candidate, n = root / base, 1
    while candidate.exists():
        n += 1
        candidate = root / f"{base}-{n}"
    return candidate


# What a folder may hold when a kill interrupted `RunWriter.create` before meta.json existed.
CREATION_LEFTOVERS = (CONFIG_FILE, CONFIG_FILE + ".tmp", META_FILE + ".tmp", RECORDS_FILE)


def unfinished_creation(run_dir: str | os.PathLike, also_allowed=()) -> bool:
    """True for a folder that `RunWriter.create` began and never finished (no meta.json, no
    record, nothing foreign): it can be created again."""
    path = Path(run_dir)
    if (path / META_FILE).exists():
        return False
    records = path / RECORDS_FILE
    if records.exists() and records.stat().st_size:
        return False
    allowed = set(CREATION_LEFTOVERS) | set(also_allowed)
    return all(p.name in allowed for p in path.iterdir())


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class RunWriter:
    """Appends records to `run_dir/records.jsonl` and keeps `meta.json` current.

    Use `RunWriter.create(...)` for a new folder or `RunWriter.reopen(...)` to resume one.
    """

    def __init__(self, run_dir: str | os.PathLike):
        self.run_dir = Path(run_dir)
        self.records_path = self.run_dir / RECORDS_FILE
        self.meta_path = self.run_dir / META_FILE

    # -- creating and reopening -------------------------------------------------------------

    @classmethod
    def create(cls, run_dir: str | os.PathLike, config_text: str, meta: dict) -> "RunWriter":
        """Make the folder and write `config.yaml` and `meta.json` (`meta` stamped with
        bench.record.SCHEMA_VERSION as `schema_version`); an empty `records.jsonl`."""
        writer = cls(run_dir)
        writer.run_dir.mkdir(parents=True, exist_ok=True)
        _write_atomic(writer.run_dir / CONFIG_FILE, config_text)
        writer.records_path.write_bytes(b"")
        writer.write_meta({**meta, VERSION_KEY: SCHEMA_VERSION})   # last: meta.json = complete
        return writer

    @classmethod
    def reopen(cls, run_dir: str | os.PathLike) -> tuple["RunWriter", list[dict]]:
        """Reopen an existing run for resuming: repair a torn tail, drop failed records.

        Returns the writer and the records kept (status ok or skipped, first one per case_id).
        """
        writer = cls(run_dir)
        if not writer.meta_path.exists():
            raise RunDirError(f"{writer.run_dir}: no {META_FILE}; not a tfbench run folder")
        read_meta(writer.run_dir)
        read_config(writer.run_dir)
        kept = writer.compact()
        return writer, kept

    def compact(self) -> list[dict]:
        """Rewrite records.jsonl with only the done records (one per case, and one line per
        later timing pass of a kept case), torn tail removed; returns them merged."""
        if not self.records_path.exists():
            self.records_path.touch()
            return []
        data = _read_bytes(self.records_path)
        records, _, torn = _valid_lines(data, self.records_path)
        seen: set = set()
        kept = []
        for record in records:
            case_id = record.get("case_id")
            if is_pass_line(record):
                key = (case_id, record[PASS_KEY])
                if case_id in seen and record.get("status") == "ok" and key not in seen:
                    seen.add(key)
                    kept.append(record)
            elif is_done(record) and case_id not in seen:
                seen.add(case_id)
                kept.append(record)
        if torn or len(kept) != len(records):
            _write_atomic(self.records_path, "".join(_line(r) for r in kept))
        return merge(kept)

    # -- records -----------------------------------------------------------------------------

    def append(self, record: dict) -> None:
        """One `write()` of one full line, then `fsync`: a kill leaves at most a torn tail."""
        payload = _line(record).encode()
        fd = os.open(self.records_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, payload)
            while written < len(payload):       # regular files write fully; be safe anyway
                written += os.write(fd, payload[written:])
            os.fsync(fd)
        finally:
            os.close(fd)

    def records(self) -> list[dict]:
        return read_records(self.run_dir)

    # -- meta and tables ---------------------------------------------------------------------

    def read_meta(self) -> dict:
        return read_meta(self.run_dir)

    def write_meta(self, meta: dict) -> None:
        _write_atomic(self.meta_path, json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")

    def update_meta(self, **changes) -> dict:
        meta = self.read_meta()
        meta.update(changes)
        self.write_meta(meta)
        return meta

    def write_csv(self) -> Path:
        """`results.csv`: one row per record; list columns (samples_s) as JSON text."""
        import pandas as pd

        rows = []
        for record in self.records():
            rows.append({k: json.dumps(v) if isinstance(v, (list, dict)) else v
                         for k, v in record.items()})
        path = self.run_dir / CSV_FILE
        pd.DataFrame(rows).to_csv(path, index=False)
        return path


def _line(record: dict) -> str:
    text = json.dumps(record, default=str)
    assert "\n" not in text
    return text + "\n"
