"""The run folder and its one writer: `results/<run-id>/{config.yaml, meta.json, records.jsonl}`.

Only the driver process writes here; executors hand records back to it. Each record is one JSON
line written with a single `write()` and made durable with `fsync`, so a kill at any moment leaves
either the whole line or a torn tail. A torn tail (no final newline, or an unparsable last line)
is dropped when reading and truncated away before appending, never parsed as data.

Resume keeps the records whose status is `ok` or `skipped: ...` and rewrites the file without
the `failed: ...` ones (atomically: temporary file + `os.replace`), so after a resumed run every
case appears exactly once.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path

from bench.run import passes

CONFIG_FILE = "config.yaml"
META_FILE = "meta.json"
RECORDS_FILE = "records.jsonl"
CSV_FILE = "results.csv"


class RunDirError(RuntimeError):
    """A run folder that cannot be used as asked (other config, other machine, corrupt file)."""


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


def _valid_lines(data: bytes, path: str | os.PathLike = RECORDS_FILE
                 ) -> tuple[list[dict], int, str | None]:
    """Parse JSON lines; return (records, byte length of the valid prefix, torn-tail reason).

    Only the last line may be torn; a bad line in the middle (not JSON, or JSON that is not an
    object) is corruption and raises RunDirError naming `path` and the line number.
    """
    records: list[dict] = []
    good_end = 0
    lines = data.split(b"\n")
    complete, tail = lines[:-1], lines[-1]      # `tail` is b"" when the file ends with "\n"
    for index, raw in enumerate(complete):
        end = good_end + len(raw) + 1
        if not raw.strip():
            good_end = end
            continue
        try:
            record = json.loads(raw)
            problem = None if isinstance(record, dict) else f"a JSON {type(record).__name__}"
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            problem = f"not valid JSON ({getattr(exc, 'msg', None) or exc.reason})"
        if problem is not None:
            if index == len(complete) - 1 and not tail:
                return records, good_end, f"unparsable last line ({problem})"
            raise RunDirError(f"{path}: line {index + 1}: {problem}, not a record; only a torn "
                              "last line can be repaired (move the file aside to start over)")
        records.append(record)
        good_end = end
    if tail:
        return records, good_end, f"last line has no newline ({len(tail)} bytes torn)"
    return records, good_end, None


def read_records(run_dir: str | os.PathLike) -> list[dict]:
    """All complete records of a run, in file order, later timing passes folded into their
    case's record (bench.run.passes.merge); a torn last line is dropped with a warning."""
    path = Path(run_dir) / RECORDS_FILE
    if not path.exists():
        return []
    records, _, torn = _valid_lines(_read_bytes(path), path)
    if torn:
        warnings.warn(f"{path}: dropped a torn last line: {torn}", stacklevel=2)
    return passes.merge(records)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise RunDirError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def read_meta(run_dir: str | os.PathLike) -> dict:
    """meta.json as a dict ({} when absent); damage -> RunDirError naming the file and line."""
    path = Path(run_dir) / META_FILE
    if not path.exists():
        return {}
    data = _read_bytes(path)
    try:
        meta = json.loads(data)
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{path}: line {exc.lineno}, column {exc.colno}: not valid JSON "
                          f"({exc.msg})") from None
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise RunDirError(f"{path}: line {line}: not UTF-8 text") from None
    if not isinstance(meta, dict):
        raise RunDirError(f"{path}: line 1: a JSON {type(meta).__name__}, expected an object")
    return meta


def read_config(run_dir: str | os.PathLike) -> dict | None:
    """config.yaml (the config as run) parsed; None when absent; damage -> RunDirError."""
    import yaml

    path = Path(run_dir) / CONFIG_FILE
    if not path.exists():
        return None
    data = _read_bytes(path)
    try:
        config = yaml.safe_load(data.decode())
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise RunDirError(f"{path}: line {line}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "line ?"
        what = getattr(exc, "problem", None) or type(exc).__name__
        raise RunDirError(f"{path}: {where}: not valid YAML ({what})") from None
    if not isinstance(config, dict):
        raise RunDirError(f"{path}: line 1: a YAML {type(config).__name__}, expected a mapping")
    return config


def check_run_dir(run_dir: str | os.PathLike) -> tuple[list[dict], dict]:
    """(records, meta) of a run folder, every file checked: the one call for commands that
    read a run folder. A missing folder or meta.json, or a damaged records.jsonl, meta.json or
    config.yaml, raises RunDirError with one line naming the file (and line)."""
    path = Path(run_dir)
    if not path.is_dir():
        raise RunDirError(f"{path}: no such folder")
    if not (path / META_FILE).is_file() and not (path / RECORDS_FILE).is_file():
        raise RunDirError(f"{path}: no {META_FILE} or {RECORDS_FILE}; not a tfbench run folder")
    meta = read_meta(path)
    read_config(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")           # a torn last line is expected after a kill
        records = read_records(path)
    return records, meta


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


def is_done(record: dict) -> bool:
    """A case that resume keeps: measured (`ok`) or deliberately skipped; failures are rerun."""
    status = str(record.get("status", ""))
    return status == "ok" or status.startswith("skipped")


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
        """Make the folder and write `config.yaml` and `meta.json`; an empty `records.jsonl`."""
        writer = cls(run_dir)
        writer.run_dir.mkdir(parents=True, exist_ok=True)
        _write_atomic(writer.run_dir / CONFIG_FILE, config_text)
        writer.records_path.write_bytes(b"")
        writer.write_meta(meta)               # last: a folder with meta.json is complete
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
            if passes.is_pass_line(record):
                key = (case_id, record[passes.PASS_KEY])
                if case_id in seen and record.get("status") == "ok" and key not in seen:
                    seen.add(key)
                    kept.append(record)
            elif is_done(record) and case_id not in seen:
                seen.add(case_id)
                kept.append(record)
        if torn or len(kept) != len(records):
            _write_atomic(self.records_path, "".join(_line(r) for r in kept))
        return passes.merge(kept)

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
