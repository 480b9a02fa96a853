"""Config checks: ConfigError, and each value of a Case field, an axis, `measure:` or
`executor:` checked against what is allowed (each raises SweepError naming the key; bench.config
turns it into a ConfigError naming the file). Tests: tests/test_config.py."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any

import yaml

from bench import blocks, impls, modes, precision
from bench.blocks import sparse
from bench.case import CASE_FIELDS, DEVICES, Measure
from bench.config.sweep import SweepError, expand_axis
from tfimpl.config import ACTIVATIONS

MEASURE_KEYS = tuple(f.name for f in fields(Measure))
EXECUTOR_KEYS = ("kind", "address", "exclusive", "retries")
EXECUTOR_KINDS = ("inline", "process", "ray")
EXCLUSIVE = ("node", "device")
ISOLATIONS = ("inline", "process")
OVERRIDE_FILE = "--set"

# How each Case field is checked. Every field of bench.case.Case appears exactly once.
# (impl is any built-in or plugin name bench.impls resolves; the rest come from declarations.)
FIELD_CHOICES = {"block": blocks.names(), "precision": precision.NAMES, "device": DEVICES,
                 "mode": modes.names(), "activation": ACTIVATIONS, "inputs": sparse.INPUTS}
PLUGIN_FIELDS = ("impl",)       # a built-in or plugin name, resolved by bench.impls.get
POSITIVE_INT_FIELDS = ("batch", "seq_len", "d_model", "n_heads", "d_ff", "layers", "threads",
                       "vocab_size")
NON_NEGATIVE_INT_FIELDS = ("seed", "new_tokens", "max_position", "window", "global_tokens")
BOOL_FIELDS = ("norm_first", "causal", "checkpoint", "compile")

BYTE_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
              "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}



@dataclass(frozen=True)
class ExecutorConfig:
    """The optional `executor:` section: where cases run (see bench/run/executors/)."""

    kind: str = "inline"            # inline | process | ray
    address: str | None = None      # ray only: cluster address ("auto", "ray://host:10001")
    exclusive: str = "node"         # one case at a time per node, or per device (GPU)
    retries: int = 0                # re-run a case whose worker died (not one that failed)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class ConfigError(Exception):
    """A config mistake: `file` (or "--set"), dotted `key`, and what is wrong / allowed."""

    def __init__(self, file: str, key: str, message: str):
        self.file, self.key, self.message = str(file), key, message
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [self.file] + ([self.key] if self.key else []) + [self.message]
        return ": ".join(parts).replace("\n", " ")


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
        zero_ok = key in ("min_time_s", "pass_below_s", "pass_min_time_s", "run_budget_s")
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



def parse_bytes(text: str) -> int:
    """'8GiB' -> 8589934592, '512MiB', '1.5GB', '4096' (bytes). ValueError when malformed."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", str(text))
    unit = match.group(2).upper() if match else ""
    if not match or (unit and unit not in BYTE_UNITS):
        raise ValueError(f"expected a size such as 8GiB, 512MiB or 2GB, got {text!r}")
    return int(float(match.group(1)) * BYTE_UNITS[unit or "B"])



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
