"""Which record fields identify a series: ONE definition, derived from bench.case's fields.

Two records belong to the same series (one sweep, one precision comparison, one pairing of
attention with ffn) when every case field agrees except the ones the grouping varies on
purpose. `seed` is not identity (a repeat of the same case). Every field a case gains (e.g.
new_tokens, max_position, checkpoint, compile) separates series without a hand list to update.

    GROUP_FIELDS        CASE_FIELDS less the non-identity fields
    CO_VARYING          the fields that move together when a variable is swept
    group_keys(cols, exclude)   GROUP_FIELDS present in a frame's columns, less `exclude`

Grouping on these keys must keep rows whose key is missing (None/NaN: a field an older record
lacks): callers group on `as_strings(frame, keys)` or with dropna=False.

Tests: tests/analysis/test_grouping.py
"""

from __future__ import annotations

from bench.case import CASE_FIELDS

NOT_IDENTITY = ("seed",)
GROUP_FIELDS = tuple(f for f in CASE_FIELDS if f not in NOT_IDENTITY)
# Case fields that are not held fixed when sweeping a variable (co-varying by design).
CO_VARYING = {"seq_len": ("seq_len",), "d_model": ("d_model", "n_heads", "d_ff"),
              "window": ("window",)}


def group_keys(columns, exclude=()) -> list[str]:
    """The identity fields present in `columns`, in CASE_FIELDS order, less `exclude`."""
    columns = set(columns)
    return [f for f in GROUP_FIELDS if f not in exclude and f in columns]


def as_strings(frame, keys):
    """`frame` with the key columns as strings: None/NaN become a group of their own."""
    return frame.assign(**{k: frame[k].astype(str) for k in keys})
