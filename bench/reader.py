"""Reading a run folder: `results/<run-id>/{config.yaml, meta.json, records.jsonl, run.lock}`.

The read side of the record contract (bench.record declares the fields), kept apart from the
run stage so that the analysis can read a folder without importing bench.run: every reader
(bench.analysis, the commands, bench.run.writer's resume) goes through these functions. The
writer (bench.run.writer.RunWriter) and the lock (bench.run.lock.RunLock) stay in bench.run and
re-export what they need from here. Its own module beside bench/record.py (the schema) because
the two together would pass the 400-line limit; not under bench/analysis, which bench.run must
not import.

- records.jsonl: one JSON object per line. Only the last line may be torn (no final newline,
  or unparsable after a kill): it is dropped with a warning, never parsed as data; a bad line
  in the middle is corruption (RunDirError naming the file and line).
- meta.json: `schema_version` (bench.record.SCHEMA_VERSION; absent: version 1). A version this
  tfbench does not know (newer, or not an integer) is refused with one RunDirError line.
- Later timing passes (bench.run.passes) are lines {"case_id", "pass": k, timing columns};
  `merge` folds them into their case's record when the folder is read: samples_s of every pass
  in order, sample_pass, pass_medians_s, pass_spread (max / min of them), passes, best_pass,
  and the statistics (median_s ... unstable, bench.record.sample_stats) of the pass with the
  lowest median; calib_s, calib_probe, calib_samples_s of that pass too (the calibration probe
  timed beside it, schema version 3) and pass_calib_s (each pass's calib_s).
- run.lock: what its JSON line says about the run holding the folder, and whether one holds it
  now (bench.run.lock takes and releases it).

Tested by tests/test_record.py, tests/run/test_writer.py, tests/run/test_rundir.py, tests/run/test_passes.py.

Tests: tests/test_record.py.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path

from bench.case import Measure
from bench.record import SCHEMA_VERSION, VERSION_KEY, sample_stats

CONFIG_FILE = "config.yaml"
META_FILE = "meta.json"
RECORDS_FILE = "records.jsonl"
CSV_FILE = "results.csv"
LOCK_FILE = "run.lock"
PASS_KEY = "pass"
CALIB_KEYS = ("calib_s", "calib_probe", "calib_samples_s")   # bench.trackers.calibration


class RunDirError(RuntimeError):
    """A run folder that cannot be used as asked (other config, other machine, corrupt file)."""


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
    case's record (`merge`); a torn last line is dropped with a warning."""
    path = Path(run_dir) / RECORDS_FILE
    if not path.exists():
        return []
    records, _, torn = _valid_lines(_read_bytes(path), path)
    if torn:
        warnings.warn(f"{path}: dropped a torn last line: {torn}", stacklevel=2)
    return merge(records)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise RunDirError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def read_meta(run_dir: str | os.PathLike) -> dict:
    """meta.json as a dict ({} when absent); damage or an unknown schema_version ->
    RunDirError naming the file (and line)."""
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
    check_version(meta, path)
    return meta


def check_version(meta: dict, path: str | os.PathLike = META_FILE) -> int:
    """The folder's schema version (1 when meta.json has none); RunDirError, one line, for a
    version this tfbench cannot read (newer than SCHEMA_VERSION, below 1, or not an integer)."""
    version = meta.get(VERSION_KEY, 1)
    known = isinstance(version, int) and not isinstance(version, bool)
    if known and 1 <= version <= SCHEMA_VERSION:
        return version
    newer = known and version > SCHEMA_VERSION
    why = ("written by a newer tfbench: read it with that version" if newer
           else "not a schema version number (meta.json damaged?)")
    raise RunDirError(f"{path}: {VERSION_KEY} {json.dumps(version)}: this tfbench reads "
                      f"versions 1-{SCHEMA_VERSION}; {why}")


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
    read a run folder. A missing folder or meta.json, a damaged records.jsonl, meta.json or
    config.yaml, or an unknown schema_version raises RunDirError with one line naming the file
    (and line)."""
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


def is_done(record: dict) -> bool:
    """A case that resume keeps: measured (`ok`) or deliberately skipped; failures are rerun."""
    status = str(record.get("status", ""))
    return status == "ok" or status.startswith("skipped")


# ---- later timing passes folded into their records ------------------------------------------

def is_pass_line(line: dict) -> bool:
    return int(line.get(PASS_KEY) or 1) > 1


def merge(lines: list[dict], spread_warn: float = Measure.spread_warn) -> list[dict]:
    """Records with their later passes folded in (see the module docstring), in file order."""
    records: list[dict] = []
    by_id: dict[str, dict] = {}
    extra: dict[str, list[dict]] = {}
    for line in lines:
        if is_pass_line(line):
            extra.setdefault(line.get("case_id"), []).append(line)
        else:
            records.append(line)
            by_id.setdefault(line.get("case_id"), line)
    out = []
    for record in records:
        later = [p for p in extra.get(record.get("case_id"), []) if p.get("status") == "ok"]
        if record.get("status") != "ok" or not later or by_id.get(record["case_id"]) is not record:
            out.append(record)
            continue
        out.append(_folded(record, sorted(later, key=lambda p: p[PASS_KEY]), spread_warn))
    return out


def _spread(medians: list[float]) -> float | None:
    finite = [m for m in medians if m and m != float("inf")]
    return max(finite) / min(finite) if len(finite) >= 2 else None


def _calibs(passes: list[dict]) -> list[float] | None:
    """Each pass's calib_s, or None unless every pass has one."""
    calibs = [p.get("calib_s") for p in passes]
    ok = all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in calibs)
    return calibs if ok else None


def _folded(record: dict, later: list[dict], spread_warn: float) -> dict:
    passes = [record] + later
    samples = [list(p.get("samples_s") or []) for p in passes]
    medians = [sample_stats(s, spread_warn)["median_s"] if s else float("inf") for s in samples]
    best = min(range(len(passes)), key=lambda i: medians[i])
    merged = dict(record)
    merged.update(sample_stats(samples[best], spread_warn))
    merged.update(samples_s=[x for s in samples for x in s],
                  sample_pass=[i + 1 for i, s in enumerate(samples) for _ in s],
                  n_samples=sum(len(s) for s in samples), passes=len(passes),
                  pass_medians_s=medians, best_pass=best + 1,
                  pass_spread=_spread(medians),
                  interference=bool(passes[best].get("interference")),
                  pass_calib_s=_calibs(passes))
    for key in CALIB_KEYS:                      # the probe timed beside the pass kept
        if any(key in p for p in passes):       # (records before version 3 have none)
            merged[key] = passes[best].get(key)
    if merged.get("flops_analytic") and merged["median_s"]:
        merged["gflops_per_s"] = merged["flops_analytic"] / merged["median_s"] / 1e9
    return merged


# ---- run.lock, read only ----------------------------------------------------------------------

def describe_holder(info: dict) -> str:
    since = info.get("since")
    when = (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since))
            if isinstance(since, (int, float)) else "an unknown time")
    return f"pid {info.get('pid', '?')} on host {info.get('host', '?')} since {when}"


def read_holder(run_dir: str | os.PathLike) -> dict:
    """What the lock file says about its holder ({} when absent or unreadable)."""
    try:
        info = json.loads((Path(run_dir) / LOCK_FILE).read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def holder_running(run_dir: str | os.PathLike) -> bool:
    """True when another process holds the folder's lock right now (a run is in progress)."""
    import fcntl

    path = Path(run_dir) / LOCK_FILE
    if not path.exists():
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
