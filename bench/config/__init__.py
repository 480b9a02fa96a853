"""Config loading: a YAML sweep file (+ `--set key=value` overrides) -> a frozen `SweepConfig`.

Every mistake becomes a `ConfigError(file, key, message)` whose `str` is one line, e.g.

    configs/x.yaml: sweeps[0].grid.seq_len: must be a positive int, got -4

and is raised before anything is measured or written (the CLI turns it into exit status 2).
The file format is documented in docs/INTERFACES.md ("Config format") and in the comments of
configs/*.yaml; axis expansion lives in `bench.config.sweep`, the table of what can run in
`bench.capabilities`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import yaml

from bench import blocks, capabilities
from bench.case import Case, Measure
from bench.config.checks import (  # noqa: F401  (the config's checks and constants, re-exported)
    BOOL_FIELDS, BYTE_UNITS, EXCLUSIVE, EXECUTOR_KEYS, EXECUTOR_KINDS, FIELD_CHOICES, ISOLATIONS,
    MEASURE_KEYS, NON_NEGATIVE_INT_FIELDS, OVERRIDE_FILE, PLUGIN_FIELDS, POSITIVE_INT_FIELDS,
    ConfigError, ExecutorConfig, _StrictLoader, _check_axis, _check_field, _executor, _mapping, _measure,
    _unknown_keys, parse_bytes)
from bench.config.overrides import apply_overrides, parse_overrides  # noqa: F401
from bench.config.sweep import SweepError, expand, zip_groups

TOP_KEYS = ("name", "description", "plugins", "measure", "defaults", "executor",
            "sweeps", "fixed", "grid", "zip", "exclude")
SECTION_KEYS = ("fixed", "grid", "zip", "exclude")
SWEEP_KEYS = ("name", "description") + SECTION_KEYS
NAME_PATTERN = re.compile(r"^[A-Za-z0-9._-]+$")
MODULE_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


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
    plugins: tuple[str, ...] = ()    # modules imported before validation (their register() calls)


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


def build_config(raw: dict, file: str, overridden: Iterable[str] = ()) -> SweepConfig:
    """Validate `raw` (a parsed config) and expand it into a SweepConfig.

    `overridden` names the Case fields set by --set, so an error about one says so.
    """
    try:
        return _build(raw, file, tuple(overridden))
    except SweepError as exc:
        raise ConfigError(file, exc.key, exc.message) from None


def config_hash(raw: dict) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces) of a config."""
    blob = json.dumps(raw, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()


# ---------------------------------------------------------------------------------------------
# Building

def _build(raw: dict, file: str, overridden: tuple[str, ...]) -> SweepConfig:
    _unknown_keys(raw, TOP_KEYS, "")
    plugins = load_plugins(raw.get("plugins", []), "plugins")
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
                       raw=raw, config_hash=config_hash(raw), plugins=plugins)


def load_plugins(names, where: str = "plugins") -> tuple[str, ...]:
    """Import each module named in a config's `plugins:` list, so that what it registers (a
    metric, a block, a mode: bench.metrics.register, ...) exists before the cases are checked.
    A name that does not import is a SweepError naming the item. docs/PLUGINS.md."""
    import importlib

    if names is None:
        return ()
    if not isinstance(names, list):
        raise SweepError(where, f"must be a list of module names, got {names!r}")
    for i, name in enumerate(names):
        if not isinstance(name, str) or not MODULE_PATTERN.match(name):
            raise SweepError(f"{where}[{i}]", f"must be a module name such as "
                                              f"examples.bytes_moved, got {name!r}")
        try:
            importlib.import_module(name)
        except Exception as exc:          # noqa: BLE001  (any import failure is the user's to see)
            raise SweepError(f"{where}[{i}]", f"cannot import {name!r}: "
                                              f"{type(exc).__name__}: {exc}") from None
    return tuple(names)


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
    decl = blocks.BLOCKS.get(case.block)
    if "n_heads" in provenance and decl is not None and not decl.heads:
        raise SweepError(provenance["n_heads"], f"block {case.block!r} has no attention heads: "
                         f"do not set n_heads for it (set it in the attention sweeps only) "
                         f"[case {case.label()}]")
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
