"""The implementations: built-ins registered by one line each, plus user plugins.

    get(name)   the Impl declaration for a config's `impl:` value:
                - a built-in name ("numpy", "torch", ...): a module in BUILTIN below;
                - "package.module:ATTRIBUTE": ATTRIBUTE of an importable module, an `Impl` (or a
                  function returning one), e.g. `impl: "examples.chunked_attention:IMPL"`;
                - a name published under the `tfbench.impls` entry-point group by an installed
                  package (pyproject: [project.entry-points."tfbench.impls"] name = "pkg.mod:IMPL").
    names()     the built-in names (what `--help` and errors list)
    ImplError   a name that resolves to nothing (bench.config turns it into a one-line error)

Built-in modules are imported on first use, so `import bench.impls` costs nothing.
"""

from __future__ import annotations

import functools
import importlib

from bench.impls.base import ATTENTION_PATHS, Impl, Prepared, Unsupported  # noqa: F401

# One line per built-in implementation: its name and the module that declares `IMPL`.
BUILTIN: dict[str, str] = {
    "numpy": "bench.impls.numpy_ours",
    "torch": "bench.impls.torch_ours",
    "torch-sdpa": "bench.impls.torch_sdpa",
    "torch-flex": "bench.impls.torch_flex",
    "torch-nn": "bench.impls.torch_nn",
    "hf-bert": "bench.impls.hf_bert",
    "hf-gpt2": "bench.impls.hf_gpt2",
    "keras": "bench.impls.keras",
    "keras-function": "bench.impls.keras_function",
    "keras-xla": "bench.impls.keras_xla",
    "onnxruntime": "bench.impls.ort",
}
ENTRY_POINT_GROUP = "tfbench.impls"


class ImplError(ValueError):
    """An `impl:` value that names no implementation."""


def names() -> tuple[str, ...]:
    return tuple(BUILTIN)


@functools.lru_cache(maxsize=None)
def get(name: str) -> Impl:
    """The declaration behind `name` (see the module docstring); ImplError if there is none."""
    if not isinstance(name, str) or not name:
        raise ImplError(f"impl must be a non-empty string; built-ins: {', '.join(BUILTIN)}")
    if name in BUILTIN:
        return _check(importlib.import_module(BUILTIN[name]).IMPL, name)
    if ":" in name:
        return _check(_load(name), name)
    target = _entry_point(name)
    if target is not None:
        return _check(_load(target), name)
    raise ImplError(f"unknown impl {name!r}; built-ins: {', '.join(BUILTIN)}; or a plugin "
                    f"as 'package.module:ATTRIBUTE' or a {ENTRY_POINT_GROUP!r} entry point")


def _load(target: str):
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImplError(f"plugin {target!r}: cannot import {module_name!r} ({exc})") from None
    try:
        obj = getattr(module, attribute)
    except AttributeError:
        raise ImplError(f"plugin {target!r}: module {module_name!r} has no "
                        f"{attribute!r}") from None
    return obj() if callable(obj) and not isinstance(obj, Impl) else obj


def _entry_point(name: str) -> str | None:
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            return ep.value
    return None


def _check(impl, name: str) -> Impl:
    if not isinstance(impl, Impl):
        raise ImplError(f"impl {name!r} is a {type(impl).__name__}, not a bench.impls.Impl")
    return impl
