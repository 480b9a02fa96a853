"""Sweep expansion: axes (lists, ranges, geometric ranges) -> the list of parameter dicts.

A sweep is `fixed` values, `grid` axes (their Cartesian product), `zip` groups (equal-length
axes that vary together, each group one more factor of the product) and `exclude` patterns (a
combination matching every key of a pattern is dropped). This module knows nothing about YAML
files or `Case`; it turns plain mappings into plain dicts and raises `SweepError(key, message)`
naming the offending key, which `bench.config` turns into a `ConfigError` with the file name.

Axis forms (every range is inclusive of `stop` when it lands on it):

    [64, 128, 256]                                   a plain list
    {range: {start: 64, stop: 512, step: 64}}        64, 128, ..., 512
    {geometric: {start: 32, stop: 2048}}             32, 64, ..., 2048        (factor 2)
    {geometric: {start: 32, stop: 2048, factor: 4}}  32, 128, 512, 2048
    {geometric: {start: 32, stop: 2048, points_per_octave: 2}}
        x_k = start · 2^(k/2), each rounded to the nearest multiple of `round_to` (default 8 here,
        so the sizes stay friendly to vector units): 32, 48, 64, 88, 128, 184, 256, 360, 512,
        728, 1024, 1448, 2048
    {geometric: {..., extra: [768, 1536]}}           extra points merged in (sorted, deduplicated)

Rounding: a plain geometric range with an integer factor is exact; a non-integer factor or
`points_per_octave` rounds each point to the nearest multiple of `round_to` (default 1 for a plain
factor, 8 with points_per_octave), drops points that round above `stop`, and deduplicates.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Iterable

MAX_AXIS_POINTS = 10_000          # a range longer than this is almost surely a typo
MAX_COMBINATIONS = 100_000        # a sweep bigger than this would never finish anyway


class SweepError(ValueError):
    """A malformed sweep; `key` is the dotted path of the offending entry (e.g. `grid.seq_len`)."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _positive_int(spec: dict, name: str, where: str, default: Any = None) -> int:
    value = spec.get(name, default)
    if not _is_int(value) or value <= 0:
        raise SweepError(f"{where}.{name}", f"must be a positive int, got {value!r}")
    return value


def _check_keys(spec: Any, allowed: Iterable[str], required: Iterable[str], where: str) -> None:
    allowed = tuple(allowed)
    if not isinstance(spec, dict):
        raise SweepError(where, f"must be a mapping with keys {', '.join(allowed)}; got {spec!r}")
    for key in spec:
        if key not in allowed:
            raise SweepError(f"{where}.{key}", f"unknown key; allowed: {', '.join(allowed)}")
    for key in required:
        if key not in spec:
            raise SweepError(f"{where}.{key}", "is required")


def int_range(spec: dict, where: str = "range") -> list[int]:
    """`{start, stop, step=1}` -> [start, start+step, ..., <= stop] (stop inclusive)."""
    _check_keys(spec, ("start", "stop", "step"), ("start", "stop"), where)
    start = _positive_int(spec, "start", where)
    stop = _positive_int(spec, "stop", where)
    step = _positive_int(spec, "step", where, default=1)
    if stop < start:
        raise SweepError(f"{where}.stop", f"must be >= start ({start}), got {stop}")
    if (stop - start) // step + 1 > MAX_AXIS_POINTS:
        raise SweepError(where, f"gives more than {MAX_AXIS_POINTS} points; use a larger step")
    return list(range(start, stop + 1, step))


def geometric(spec: dict, where: str = "geometric") -> list[int]:
    """`{start, stop, factor=2 | points_per_octave, round_to, extra}` -> sorted distinct ints.

    Points are x_k = start · r^k for k = 0, 1, ... while x_k <= stop, with r = factor or
    r = 2^(1/points_per_octave); see the module docstring for the rounding.
    """
    _check_keys(spec, ("start", "stop", "factor", "points_per_octave", "round_to", "extra"),
                ("start", "stop"), where)
    start = _positive_int(spec, "start", where)
    stop = _positive_int(spec, "stop", where)
    if stop < start:
        raise SweepError(f"{where}.stop", f"must be >= start ({start}), got {stop}")
    if "factor" in spec and "points_per_octave" in spec:
        raise SweepError(f"{where}.points_per_octave",
                         "give either factor or points_per_octave, not both")
    if "points_per_octave" in spec:
        ppo = _positive_int(spec, "points_per_octave", where)
        ratio = 2.0 ** (1.0 / ppo)
        round_to = _positive_int(spec, "round_to", where, default=8)
    else:
        ratio = spec.get("factor", 2)
        if not _is_number(ratio) or ratio <= 1:
            raise SweepError(f"{where}.factor", f"must be a number > 1, got {ratio!r}")
        round_to = _positive_int(spec, "round_to", where, default=1)
    extra = spec.get("extra", [])
    if not isinstance(extra, list) or not all(_is_int(e) and e > 0 for e in extra):
        raise SweepError(f"{where}.extra", f"must be a list of positive ints, got {extra!r}")

    n_points = int(math.floor(math.log(stop / start) / math.log(ratio) + 1e-9)) + 1
    if n_points > MAX_AXIS_POINTS:
        raise SweepError(where, f"gives more than {MAX_AXIS_POINTS} points")
    if _is_int(ratio) and round_to == 1:
        points = [start * ratio ** k for k in range(n_points)]          # exact integers
    else:
        points = [round_to * math.floor(start * ratio ** k / round_to + 0.5)    # half rounds up
                  for k in range(n_points)]
        points = [p for p in points if 0 < p <= stop]
    return sorted(set(points) | set(extra))


def expand_axis(spec: Any, where: str) -> list:
    """One grid/zip axis -> its list of values (a list, `{range: ...}` or `{geometric: ...}`)."""
    if isinstance(spec, list):
        if not spec:
            raise SweepError(where, "must not be an empty list")
        return list(spec)
    if isinstance(spec, dict) and len(spec) == 1 and "range" in spec:
        return int_range(spec["range"], f"{where}.range")
    if isinstance(spec, dict) and len(spec) == 1 and "geometric" in spec:
        return geometric(spec["geometric"], f"{where}.geometric")
    raise SweepError(where, "must be a list, {range: {start, stop, step}} or "
                            f"{{geometric: {{start, stop, factor}}}}; got {spec!r} "
                            "(put single values under fixed)")


def zip_groups(spec: Any, where: str = "zip") -> list[dict]:
    """`zip:` -> list of groups, each a mapping axis -> spec. A single mapping is one group."""
    if isinstance(spec, dict):
        return [spec]
    if not isinstance(spec, list) or not all(isinstance(g, dict) and g for g in spec):
        raise SweepError(where, "must be a list of mappings, e.g. "
                                "[{d_model: [256, 512], n_heads: [4, 8]}]")
    return spec


def expand(fixed: dict, grid: dict, zips: list[dict], excludes: list[dict],
           where: str = "") -> list[dict]:
    """The parameter dicts of one sweep, in stable order (the last grid axis varies fastest).

    Each result is `fixed` updated with one grid combination and one row of every zip group;
    combinations that match every key of any `excludes` pattern are dropped. A pattern value
    that is a list matches any of its items.
    """
    prefix = f"{where}." if where else ""
    seen: dict[str, str] = {key: f"{prefix}fixed.{key}" for key in fixed}
    factors: list[list[dict]] = []
    for key, spec in grid.items():
        _claim(seen, key, f"{prefix}grid.{key}")
        factors.append([{key: v} for v in expand_axis(spec, f"{prefix}grid.{key}")])
    for i, group in enumerate(zips):
        columns = {}
        for key, spec in group.items():
            _claim(seen, key, f"{prefix}zip[{i}].{key}")
            columns[key] = expand_axis(spec, f"{prefix}zip[{i}].{key}")
        lengths = {key: len(vals) for key, vals in columns.items()}
        if len(set(lengths.values())) > 1:
            raise SweepError(f"{prefix}zip[{i}]", "axes must have equal lengths, got "
                             + ", ".join(f"{k}: {n}" for k, n in lengths.items()))
        rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
        factors.append(rows)
    total = math.prod(len(f) for f in factors)
    if total > MAX_COMBINATIONS:
        raise SweepError(where or "grid", f"expands to {total} combinations "
                         f"(more than {MAX_COMBINATIONS}); narrow the axes")
    out = []
    for combo in itertools.product(*factors):
        params = dict(fixed)
        for part in combo:
            params.update(part)
        if not any(matches(params, pattern) for pattern in excludes):
            out.append(params)
    return out


def matches(params: dict, pattern: dict) -> bool:
    """True when every key of `pattern` equals (or, for a list, contains) the params' value."""
    for key, want in pattern.items():
        have = params.get(key)
        if isinstance(want, list) and have not in want:
            return False
        if not isinstance(want, list) and have != want:
            return False
    return True


def _claim(seen: dict[str, str], key: str, path: str) -> None:
    if key in seen:
        raise SweepError(path, f"{key!r} is already given at {seen[key]}; "
                               "a key may appear in only one of fixed, grid and zip")
    seen[key] = path
