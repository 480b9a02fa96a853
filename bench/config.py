"""Config loading: a YAML sweep file (+ `--set key=value` overrides) -> a frozen `SweepConfig`.

Every mistake becomes a `ConfigError(file, key, message)` whose `str` is one line, e.g.

    configs/x.yaml: sweeps[0].grid.seq_len: must be a positive int, got -4

and is raised before anything is measured or written (the CLI turns it into exit status 2).
The file format is documented in docs/INTERFACES.md ("Config format") and in the comments of
configs/*.yaml; axis expansion lives in `bench.sweep`, the table of what can run in
`bench.capabilities`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Iterable

import yaml

from bench import blocks, capabilities, impls, modes, precision
from bench.case import CASE_FIELDS, DEVICES, Case, Measure
from bench.sweep import SweepError, expand, expand_axis, zip_groups
from tfimpl.config import ACTIVATIONS

TOP_KEYS = ("name", "description", "measure", "defaults", "executor",
            "sweeps", "fixed", "grid", "zip", "exclude")
SECTION_KEYS = ("fixed", "grid", "zip", "exclude")
SWEEP_KEYS = ("name", "description") + SECTION_KEYS
MEASURE_KEYS = tuple(f.name for f in fields(Measure))
EXECUTOR_KEYS = ("kind", "address", "exclusive", "retries")
EXECUTOR_KINDS = ("inline", "process", "ray")
EXCLUSIVE = ("node", "device")
ISOLATIONS = ("inline", "process")
OVERRIDE_FILE = "--set"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9._-]+$")

# How each Case field is checked. Every field of bench.case.Case appears exactly once.
# (impl is any built-in or plugin name bench.impls resolves; the rest come from declarations.)
FIELD_CHOICES = {"block": blocks.names(), "precision": precision.NAMES, "device": DEVICES,
                 "mode": modes.names(), "activation": ACTIVATIONS}
PLUGIN_FIELDS = ("impl",)       # a built-in or plugin name, resolved by bench.impls.get
POSITIVE_INT_FIELDS = ("batch", "seq_len", "d_model", "n_heads", "d_ff", "layers", "threads",
                       "vocab_size")
NON_NEGATIVE_INT_FIELDS = ("seed", "new_tokens", "max_position",)
BOOL_FIELDS = ("norm_first", "causal", "checkpoint", "compile")

BYTE_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
              "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


class ConfigError(Exception):
    """A config mistake: `file` (or "--set"), dotted `key`, and what is wrong / allowed."""

    def __init__(self, file: str, key: str, message: str):
        self.file, self.key, self.message = str(file), key, message
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [self.file] + ([self.key] if self.key else []) + [self.message]
        return ": ".join(parts).replace("\n", " ")


@dataclass(frozen=True)
class ExecutorConfig:
    """The optional `executor:` section: where cases run (see bench/run/executors/)."""

    kind: str = "inline"            # inline | process | ray
    address: str | None = None      # ray only: cluster address ("auto", "ray://host:10001")
    exclusive: str = "node"         # one case at a time per node, or per device (GPU)
    retries: int = 0                # re-run a case whose worker died (not one that failed)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class SweepConfig:
    """A loaded, validated sweep: what to measure (cases) and how (measure, executor)."""

    name: str
    path: Path
    description: str
    measure: Measure
    executor: ExecutorConfig
    cases: tuple[Case, ...]          # deduplicated, in the order the file lists them
    case_sweeps: tuple[str, ...]     # name of the (first) sweep that produced each case
    raw: dict                        # the config as run (overrides applied): write as config.yaml
    config_hash: str                 # sha256 of the canonical JSON of `raw`


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> SweepConfig:
    """Read, override, validate and expand `path`; raise ConfigError on the first mistake."""
    file = str(path)
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(file, "", f"cannot read the config: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(file, "", f"not a UTF-8 text file ({exc.reason} at byte "
                                    f"{exc.start})") from None
    raw = parse_yaml(text, file)
    parsed = parse_overrides(overrides)
    raw = apply_overrides(raw, parsed)
    return build_config(raw, file, overridden=[key for key, _ in parsed])


def parse_yaml(text: str, file: str) -> dict:
    """YAML text -> the top-level mapping; syntax errors and duplicate keys are ConfigErrors."""
    try:
        raw = yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(file, where, f"malformed YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(file, "", f"malformed YAML: {exc}") from None
    if raw is None:
        raise ConfigError(file, "", "the config is empty")
    if not isinstance(raw, dict):
        raise ConfigError(file, "", f"the top level must be a mapping, got {type(raw).__name__}")
    return raw


def parse_overrides(overrides: Iterable[str]) -> list[tuple[str, Any]]:
    """`["threads=1", "seq_len=[64,128]", "measure.min_time_s=0.05"]` -> checked (key, value)s.

    The value is parsed as YAML (so lists, mappings, numbers and booleans work) and checked
    here, so a bad override is reported against "--set", not against the file.
    """
    parsed = []
    for item in overrides:
        key, sep, text = str(item).partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(OVERRIDE_FILE, str(item), "expected KEY=VALUE, e.g. threads=1")
        try:
            value = yaml.load(text, Loader=_StrictLoader)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or exc
            raise ConfigError(OVERRIDE_FILE, key, f"value {text!r} is not valid YAML: "
                                                  f"{problem}") from None
        try:
            _check_override(key, value)
        except SweepError as exc:
            raise ConfigError(OVERRIDE_FILE, exc.key, exc.message) from None
        parsed.append((key, value))
    return parsed


def apply_overrides(raw: dict, overrides: list[tuple[str, Any]]) -> dict:
    """A copy of `raw` with each (key, value) applied.

    A Case field is overridden everywhere: a single value goes to `defaults` and the key is
    removed from every fixed/grid/zip; a list or range becomes a grid axis of every sweep.
    `measure.x` / `executor.x` set one key of that section; `name`/`description` replace.
    """
    raw = copy.deepcopy(raw)
    for key, value in overrides:
        section, _, sub = key.partition(".")
        if section in ("measure", "executor"):
            if not isinstance(raw.get(section), dict):
                raw[section] = {}
            raw[section][sub] = value
        elif key in ("name", "description"):
            raw[key] = value
        else:
            _override_field(raw, key, value)
    return raw


def build_config(raw: dict, file: str, overridden: Iterable[str] = ()) -> SweepConfig:
    """Validate `raw` (a parsed config) and expand it into a SweepConfig.

    `overridden` names the Case fields set by --set, so an error about one says so.
    """
    try:
        return _build(raw, file, tuple(overridden))
    except SweepError as exc:
        raise ConfigError(file, exc.key, exc.message) from None


def parse_bytes(text: str) -> int:
    """'8GiB' -> 8589934592, '512MiB', '1.5GB', '4096' (bytes). ValueError when malformed."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", str(text))
    unit = match.group(2).upper() if match else ""
    if not match or (unit and unit not in BYTE_UNITS):
        raise ValueError(f"expected a size such as 8GiB, 512MiB or 2GB, got {text!r}")
    return int(float(match.group(1)) * BYTE_UNITS[unit or "B"])


def config_hash(raw: dict) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces) of a config."""
    blob = json.dumps(raw, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()


# ---------------------------------------------------------------------------------------------
# Building

def _build(raw: dict, file: str, overridden: tuple[str, ...]) -> SweepConfig:
    _unknown_keys(raw, TOP_KEYS, "")
    name = raw.get("name", Path(file).stem)
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise SweepError("name", f"must be letters, digits, '.', '_' or '-', got {name!r}")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise SweepError("description", f"must be a string, got {description!r}")
    measure = _measure(raw.get("measure", {}), "measure")
    executor = _executor(raw.get("executor", {}), "executor")
    defaults = _mapping(raw.get("defaults", {}), "defaults")
    for key, value in defaults.items():
        _check_field(key, value, f"defaults.{key}")

    cases: dict[Case, str] = {}
    for where, section_name, section in _sections(raw, name):
        params_list, origin = _expand_section(section, where)
        provenance = {**{key: f"defaults.{key}" for key in defaults}, **origin}
        provenance = {k: f"{v} (from --set)" if k in overridden else v
                      for k, v in provenance.items()}
        for params in params_list:
            case = Case(**{**defaults, **params})
            _check_case(case, provenance)
            cases.setdefault(case, section_name)
    if not cases:
        raise SweepError("exclude", "every combination is excluded; there is nothing to run")
    return SweepConfig(name=name, path=Path(file), description=description, measure=measure,
                       executor=executor, cases=tuple(cases), case_sweeps=tuple(cases.values()),
                       raw=raw, config_hash=config_hash(raw))


def _sections(raw: dict, config_name: str) -> list[tuple[str, str, dict]]:
    """[(key prefix, sweep name, section mapping)]: the `sweeps` list or the top level."""
    top = [k for k in SECTION_KEYS if k in raw]
    if "sweeps" not in raw:
        return [("", config_name, {k: raw[k] for k in top})]
    if top:
        raise SweepError(top[0], "use either a `sweeps:` list or top-level "
                                 "fixed/grid/zip/exclude, not both")
    sweeps = raw["sweeps"]
    if not isinstance(sweeps, list) or not sweeps:
        raise SweepError("sweeps", "must be a non-empty list of sweeps (mappings with "
                                   f"{', '.join(SWEEP_KEYS)})")
    out = []
    for i, sweep in enumerate(sweeps):
        where = f"sweeps[{i}]"
        _mapping(sweep, where)
        _unknown_keys(sweep, SWEEP_KEYS, where)
        sweep_name = sweep.get("name", f"sweep{i}")
        if not isinstance(sweep_name, str):
            raise SweepError(f"{where}.name", f"must be a string, got {sweep_name!r}")
        if not isinstance(sweep.get("description", ""), str):
            raise SweepError(f"{where}.description", "must be a string")
        out.append((where, sweep_name, sweep))
    return out


def _expand_section(section: dict, where: str) -> tuple[list[dict], dict[str, str]]:
    """Validate one sweep's values and expand it: ([params, ...], {field: where it is given})."""
    prefix = f"{where}." if where else ""
    fixed = _mapping(section.get("fixed", {}), f"{prefix}fixed")
    grid = _mapping(section.get("grid", {}), f"{prefix}grid")
    zips = zip_groups(section.get("zip", []), f"{prefix}zip")
    excludes = section.get("exclude", [])
    if isinstance(excludes, dict):
        excludes = [excludes]
    if not isinstance(excludes, list) or not all(isinstance(e, dict) and e for e in excludes):
        raise SweepError(f"{prefix}exclude", "must be a list of mappings, e.g. "
                                             "[{impl: numpy, precision: bf16}]")

    origin = {}
    for key, value in fixed.items():
        _check_field(key, value, f"{prefix}fixed.{key}")
        origin[key] = f"{prefix}fixed.{key}"
    for key, spec in grid.items():
        _check_axis(key, spec, f"{prefix}grid.{key}")
        origin[key] = f"{prefix}grid.{key}"
    for i, group in enumerate(zips):
        for key, spec in group.items():
            _check_axis(key, spec, f"{prefix}zip[{i}].{key}")
            origin[key] = f"{prefix}zip[{i}].{key}"
    for i, pattern in enumerate(excludes):
        for key, value in pattern.items():
            for item in (value if isinstance(value, list) else [value]):
                _check_field(key, item, f"{prefix}exclude[{i}].{key}")
    return expand(fixed, grid, zips, excludes, where), origin


def _check_case(case: Case, provenance: dict[str, str]) -> None:
    problem = capabilities.check_fields(case)
    if problem is None:
        return
    field, reason = problem
    key = provenance.get(field, f"{field} (Case default)")
    hint = ""
    if field in ("impl", "precision", "mode", "device"):
        other = "block" if field == "impl" else field
        hint = f"; drop it with exclude: [{{impl: {case.impl}, {other}: {getattr(case, other)}}}]"
    raise SweepError(key, f"{reason} [case {case.label()}]{hint}")


# ---------------------------------------------------------------------------------------------
# Field, axis, measure and executor checks (each raises SweepError naming the key)

def _check_field(key: str, value: Any, where: str) -> None:
    """One value of Case field `key` (from defaults, fixed, a grid axis or an exclude)."""
    if key not in CASE_FIELDS:
        raise SweepError(where, f"unknown key; allowed: {', '.join(CASE_FIELDS)}")
    if key == "impl":
        if not isinstance(value, str):
            raise SweepError(where, f"must be a string naming an implementation, got {value!r}")
        try:
            impls.get(value)
        except impls.ImplError as exc:
            raise SweepError(where, str(exc)) from None
    elif key in FIELD_CHOICES:
        if value not in FIELD_CHOICES[key] or not isinstance(value, str):
            raise SweepError(where, f"must be one of {', '.join(FIELD_CHOICES[key])}; "
                                    f"got {value!r}")
    elif key in POSITIVE_INT_FIELDS:
        if not _is_int(value) or value <= 0:
            raise SweepError(where, f"must be a positive int, got {value!r}")
    elif key in NON_NEGATIVE_INT_FIELDS:
        if not _is_int(value) or value < 0:
            raise SweepError(where, f"must be a non-negative int, got {value!r}")
    elif key in BOOL_FIELDS:
        if not isinstance(value, bool):
            raise SweepError(where, f"must be true or false, got {value!r}")
    else:                                                   # a Case field nobody classified
        raise SweepError(where, f"field {key!r} has no validation rule (bench/config.py)")


def _check_axis(key: str, spec: Any, where: str) -> None:
    if key not in CASE_FIELDS:
        raise SweepError(where, f"unknown key; allowed: {', '.join(CASE_FIELDS)}")
    for value in expand_axis(spec, where):
        _check_field(key, value, where)


def _measure(section: Any, where: str) -> Measure:
    section = _mapping(section, where)
    _unknown_keys(section, MEASURE_KEYS, where)
    for key, value in section.items():
        _check_measure_value(key, value, f"{where}.{key}")
    values = {k: (float(v) if isinstance(Measure.__dataclass_fields__[k].default, float) else v)
              for k, v in section.items()}
    measure = Measure(**values)
    if measure.max_repeats < measure.min_repeats:
        raise SweepError(f"{where}.max_repeats", f"must be >= min_repeats "
                         f"({measure.min_repeats}), got {measure.max_repeats}")
    if measure.max_time_s < measure.min_time_s:
        raise SweepError(f"{where}.max_time_s", f"must be >= min_time_s "
                         f"({measure.min_time_s}), got {measure.max_time_s}")
    return measure


def _check_measure_value(key: str, value: Any, where: str) -> None:
    if key not in MEASURE_KEYS:
        raise SweepError(where, f"unknown key; allowed: {', '.join(MEASURE_KEYS)}")
    default = Measure.__dataclass_fields__[key].default
    if key == "warmup":
        if not _is_int(value) or value < 1:
            raise SweepError(where, f"must be an int >= 1 (the first calls pay one-off "
                                    f"costs), got {value!r}")
    elif key == "pass_min_repeats":
        if not _is_int(value) or value < 0:
            raise SweepError(where, f"must be an int >= 0 (0: min_repeats), got {value!r}")
    elif key == "isolation":
        if value not in ISOLATIONS:
            raise SweepError(where, f"must be one of {', '.join(ISOLATIONS)}; got {value!r}")
    elif key == "max_memory":
        if value is not None:
            try:
                size = parse_bytes(value)
            except ValueError as exc:
                raise SweepError(where, str(exc)) from None
            if size <= 0:
                raise SweepError(where, f"must be a positive size, got {value!r}")
    elif isinstance(default, bool):
        if not isinstance(value, bool):
            raise SweepError(where, f"must be true or false, got {value!r}")
    elif isinstance(default, int):
        if not _is_int(value) or value < 1:
            raise SweepError(where, f"must be a positive int, got {value!r}")
    elif isinstance(default, float):
        zero_ok = key in ("min_time_s", "pass_below_s", "pass_min_time_s")
        if not _is_number(value) or value < 0 or (value == 0 and not zero_ok):
            bound = ">= 0" if zero_ok else "> 0"
            raise SweepError(where, f"must be a number {bound} (seconds or a ratio), "
                                    f"got {value!r}")


def _executor(section: Any, where: str) -> ExecutorConfig:
    section = _mapping(section, where)
    _unknown_keys(section, EXECUTOR_KEYS, where)
    for key, value in section.items():
        _check_executor_value(key, value, f"{where}.{key}")
    executor = ExecutorConfig(**section)
    if executor.address is not None and executor.kind != "ray":
        raise SweepError(f"{where}.address", f"is used only with kind: ray "
                                             f"(kind is {executor.kind!r})")
    return executor


def _check_executor_value(key: str, value: Any, where: str) -> None:
    if key not in EXECUTOR_KEYS:
        raise SweepError(where, f"unknown key; allowed: {', '.join(EXECUTOR_KEYS)}")
    if key == "kind" and value not in EXECUTOR_KINDS:
        raise SweepError(where, f"must be one of {', '.join(EXECUTOR_KINDS)}; got {value!r}")
    if key == "exclusive" and value not in EXCLUSIVE:
        raise SweepError(where, f"must be one of {', '.join(EXCLUSIVE)}; got {value!r}")
    if key == "address" and value is not None and not isinstance(value, str):
        raise SweepError(where, f"must be a string such as auto or ray://host:10001, "
                                f"got {value!r}")
    if key == "retries" and (not _is_int(value) or value < 0):
        raise SweepError(where, f"must be a non-negative int, got {value!r}")


def _check_override(key: str, value: Any) -> None:
    section, _, sub = key.partition(".")
    if section == "measure" and sub:
        _check_measure_value(sub, value, key)
    elif section == "executor" and sub:
        _check_executor_value(sub, value, key)
    elif key in ("name", "description"):
        if not isinstance(value, str):
            raise SweepError(key, f"must be a string, got {value!r}")
    elif key in CASE_FIELDS:
        if isinstance(value, (list, dict)):
            _check_axis(key, value, key)
        else:
            _check_field(key, value, key)
    else:
        raise SweepError(key, "unknown key; allowed: a Case field ("
                         + ", ".join(CASE_FIELDS) + "), measure.<key>, executor.<key>, "
                         "name or description")


def _override_field(raw: dict, key: str, value: Any) -> None:
    is_axis = isinstance(value, (list, dict))
    sections = raw["sweeps"] if isinstance(raw.get("sweeps"), list) else [raw]
    for section in sections:
        if not isinstance(section, dict):
            continue                             # reported by validation later
        for name in ("fixed", "grid"):
            if isinstance(section.get(name), dict) and not (is_axis and name == "grid"):
                section[name].pop(key, None)     # an axis replaced in the grid keeps its place
        groups = section.get("zip")
        if isinstance(groups, (list, dict)):
            groups = [groups] if isinstance(groups, dict) else groups
            for group in groups:
                if isinstance(group, dict):
                    group.pop(key, None)
            kept = [g for g in groups if not isinstance(g, dict) or g]
            if kept:
                section["zip"] = kept
            else:
                section.pop("zip")
        if is_axis:
            if not isinstance(section.get("grid"), dict):
                section["grid"] = {}
            section["grid"][key] = copy.deepcopy(value)
    if not isinstance(raw.get("defaults"), dict):
        raw["defaults"] = {} if raw.get("defaults") is None else raw["defaults"]
    if isinstance(raw["defaults"], dict):
        if is_axis:
            raw["defaults"].pop(key, None)
        else:
            raw["defaults"][key] = value


# ---------------------------------------------------------------------------------------------
# Small helpers

def _mapping(value: Any, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SweepError(where, f"must be a mapping, got {type(value).__name__} {value!r}")
    return value


def _unknown_keys(section: dict, allowed: tuple[str, ...], where: str) -> None:
    prefix = f"{where}." if where else ""
    for key in section:
        if key not in allowed:
            raise SweepError(f"{prefix}{key}", f"unknown key; allowed: {', '.join(allowed)}")


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys and reads 1e-3 as a float (YAML 1.2 style)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))
