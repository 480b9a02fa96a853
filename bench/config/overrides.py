"""`--set key=value` overrides: parsed and checked against "--set", then applied to the raw
config before it is validated (a Case field everywhere, or one key of measure:/executor:).
Tests: tests/test_config.py (the --set cases)."""

from __future__ import annotations

import copy
from typing import Any, Iterable

import yaml

from bench.config.checks import OVERRIDE_FILE, ConfigError, _check_override, _StrictLoader
from bench.config.sweep import SweepError


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
