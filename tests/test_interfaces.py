"""docs/INTERFACES.md names only what exists: its paths, its dotted names, each entry's API.

Mechanical and strict, read from the source with `ast` (nothing is imported, so tfimpl.keras,
which needs TensorFlow, is checked like every other module):

(a) every repository path the doc writes, `bench/...`, `tfimpl/...`, `tests/...`,
    `examples/...`, `configs/...`, `docs/...` (up to a placeholder such as `<name>`), exists:
    a file where it has a suffix, a folder where it ends in `/`;
(b) every dotted name `bench.x.y[.Z[.m]]` / `tfimpl.x.y[...]` resolves: the longest prefix that
    is a module, then its top-level names (definitions, assignments, imports, followed to the
    module they come from), then a class's members (its own and its bases');
(c) in the fenced code blocks, a line that starts with a module path (`bench/run/runner.py`,
    or a package folder `bench/run/executors/`) is an entry and owns the indented lines after
    it, up to the next unindented line. Every identifier immediately followed by `(` there
    (not after a `.`, not a builtin or keyword) is a name of that module; `Class.member(` and
    `module.name(` with a class or module of that module are checked through it;
(d) every module under bench/ is named by the doc (its path, or its package's folder for an
    `__init__.py`), so a new module cannot go undocumented.

All missing names come in one failure message per check. The checkers are also run on a made-up
text, so the test cannot silently pass by checking nothing.
"""

from __future__ import annotations

import ast
import builtins
import functools
import keyword
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "INTERFACES.md"
PACKAGES = ("bench", "tfimpl")

PATH_RE = re.compile(r"(?<![\w./-])((?:bench|tfimpl|tests|examples|configs|docs)/[\w./-]*)")
DOTTED_RE = re.compile(r"(?<![\w./-])((?:bench|tfimpl)(?:\.[A-Za-z_]\w*)+)")
ENTRY_RE = re.compile(r"^((?:bench|tfimpl)/[\w/]*?(?:\.py|/))(?=\s|$)")
CALL_RE = re.compile(r"(?<![\w.])([A-Za-z_]\w*)\(")
MEMBER_CALL_RE = re.compile(r"(?<![\w.])([A-Za-z_]\w*)\.([A-Za-z_]\w*)\(")
FILE_SUFFIXES = (".py", ".md", ".yaml", ".yml", ".json", ".toml", ".txt")
SKIP = set(dir(builtins)) | set(keyword.kwlist) | set(keyword.softkwlist)


# ---- the source, as ASTs -------------------------------------------------------------------

def module_file(module: str) -> Path | None:
    """bench/x/y.py or bench/x/y/__init__.py for `bench.x.y`, or None."""
    if module.split(".")[0] not in PACKAGES:
        return None
    base = ROOT.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def is_package(module: str) -> bool:
    path = module_file(module)
    return path is not None and path.name == "__init__.py"


@functools.lru_cache(maxsize=None)
def names_of(module: str) -> dict:
    """Top-level names of `module`: name -> ("def"|"class"|"assign", node) | ("from", module,
    attribute) | ("import", module)."""
    path = module_file(module)
    out: dict = {}

    def add(node):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out[node.name] = ("def", node)
        elif isinstance(node, ast.ClassDef):
            out[node.name] = ("class", node)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        out.setdefault(name.id, ("assign", node))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                out[alias.asname or alias.name] = ("from", base, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    out[alias.asname] = ("import", alias.name)
                else:
                    out[alias.name.split(".")[0]] = ("import", alias.name.split(".")[0])
        for field in ("body", "orelse", "finalbody", "handlers"):   # if / try / with / for
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                for child in getattr(node, field, []) or []:
                    add(child)

    for node in ast.parse(path.read_text()).body:
        add(node)
    return out


def find(module: str, name: str, depth: int = 0):
    """What `name` is in `module`: ("module", dotted) | ("class", module, node) | ("other",) |
    ("external",) | None when the module has no such name. Imports are followed."""
    if depth > 20:
        return ("external",)
    entry = names_of(module).get(name)
    if entry is None:
        sub = f"{module}.{name}"
        return ("module", sub) if is_package(module) and module_file(sub) else None
    if entry[0] == "class":
        return ("class", module, entry[1])
    if entry[0] in ("def", "assign"):
        return ("other",)
    if entry[0] == "import":
        return ("module", entry[1]) if module_file(entry[1]) else ("external",)
    origin, attribute = entry[1], entry[2]
    if module_file(f"{origin}.{attribute}"):
        return ("module", f"{origin}.{attribute}")
    if module_file(origin):
        return find(origin, attribute, depth + 1)
    return ("external",)


def class_members(module: str, node: ast.ClassDef, depth: int = 0) -> set | None:
    """Names defined in a class body and its bases' (None: a base is outside the packages)."""
    members = set()
    for child in node.body:
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            members.add(child.name)
        elif isinstance(child, ast.Assign):
            members |= {t.id for t in child.targets if isinstance(t, ast.Name)}
        elif isinstance(child, ast.AnnAssign) and isinstance(child.target, ast.Name):
            members.add(child.target.id)
    for base in node.bases:
        found = find(module, base.id) if isinstance(base, ast.Name) else None
        if isinstance(base, ast.Name) and base.id == "object":
            continue
        if not found or found[0] != "class" or depth > 10:
            return None                       # a library's class: anything may be inherited
        inherited = class_members(found[1], found[2], depth + 1)
        if inherited is None:
            return None
        members |= inherited
    return members


def resolve(module: str, names: list[str]) -> str | None:
    """None when `module`.names[0].names[1]... exists, else what is missing."""
    found = find(module, names[0])
    if found is None:
        return f"{module} has no {names[0]!r}"
    rest = names[1:]
    if not rest or found[0] == "external":
        return None
    if found[0] == "module":
        return resolve(found[1], rest)
    if found[0] == "class":
        members = class_members(found[1], found[2])
        if members is not None and rest[0] not in members:
            return f"{module}.{names[0]} (class in {found[1]}) has no member {rest[0]!r}"
        return None
    return f"{module}.{names[0]} is neither a module nor a class: no .{rest[0]}"


# ---- the checks, on any text ---------------------------------------------------------------

def missing_paths(text: str) -> list[str]:
    out = []
    for match in PATH_RE.finditer(text):
        raw = match.group(1).rstrip(".,;:")
        path = ROOT / raw
        if raw.endswith("/"):
            ok = path.is_dir()
        elif raw.endswith(FILE_SUFFIXES):
            ok = path.is_file()
        else:
            ok = path.exists()
        if not ok:
            out.append(raw)
    return sorted(set(out))


def unresolved_dotted(text: str) -> list[str]:
    out = []
    for name in sorted(set(DOTTED_RE.findall(text))):
        parts = name.split(".")
        cut = next((i for i in range(len(parts), 0, -1) if module_file(".".join(parts[:i]))),
                   None)
        if cut is None:
            out.append(f"{name}: no such module")
            continue
        problem = resolve(".".join(parts[:cut]), parts[cut:]) if parts[cut:] else None
        if problem:
            out.append(f"{name}: {problem}")
    return out


def entries(text: str) -> list[tuple[str, str, int]]:
    """(path, text, line number) of every entry of the fenced code blocks."""
    out, current, fenced = [], None, False
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            current = None
            continue
        if not fenced:
            continue
        match = ENTRY_RE.match(line)
        if match:
            current = [match.group(1), line[match.end():], number]
            out.append(current)
        elif current is not None and (not line.strip() or line[0].isspace()):
            current[1] += "\n" + line
        else:
            current = None
    return [tuple(e) for e in out]


def entry_module(path: str) -> str | None:
    dotted = path.rstrip("/").removesuffix(".py").replace("/", ".").removesuffix(".__init__")
    return dotted if module_file(dotted) else None


def missing_in_entries(text: str) -> list[str]:
    out = []
    for path, body, line in entries(text):
        module = entry_module(path)
        if module is None:
            out.append(f"line {line}: {path}: no such module")
            continue
        for name in sorted(set(CALL_RE.findall(body)) - SKIP):
            problem = resolve(module, [name])
            if problem:
                out.append(f"line {line}: {path}: {name}(: {problem}")
        for owner, member in sorted(set(MEMBER_CALL_RE.findall(body))):
            if owner in SKIP:
                continue
            found = find(module, owner)
            camel = owner[0].isupper() and any(c.islower() for c in owner)
            if (found and found[0] in ("class", "module")) or (found is None and camel):
                problem = resolve(module, [owner, member])
                if problem:
                    out.append(f"line {line}: {path}: {owner}.{member}(: {problem}")
    return out


def undocumented_modules(text: str) -> list[str]:
    named = {m.group(1).rstrip(".,;:") for m in PATH_RE.finditer(text)}
    out = []
    for path in sorted((ROOT / "bench").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if path.name == "__init__.py":
            folder = rel.removesuffix("__init__.py")
            if folder not in named and rel not in named:
                out.append(folder)
        elif rel not in named:
            out.append(rel)
    return out


# ---- the tests ------------------------------------------------------------------------------

TEXT = DOC.read_text()


def test_every_path_exists():
    missing = missing_paths(TEXT)
    assert not missing, "docs/INTERFACES.md names paths that do not exist:\n" + "\n".join(missing)


def test_every_dotted_name_resolves():
    missing = unresolved_dotted(TEXT)
    assert not missing, "docs/INTERFACES.md names what does not exist:\n" + "\n".join(missing)


def test_every_entry_names_what_its_module_has():
    assert len(entries(TEXT)) > 100          # the entries are found at all
    missing = missing_in_entries(TEXT)
    assert not missing, ("docs/INTERFACES.md entries call names their module lacks:\n"
                         + "\n".join(missing))


def test_every_bench_module_is_documented():
    missing = undocumented_modules(TEXT)
    assert not missing, "modules docs/INTERFACES.md does not name:\n" + "\n".join(missing)


def test_the_checks_catch_what_does_not_exist():
    fake = "\n".join([
        "see bench/run/no_such.py, tests/nowhere/ and docs/NOPE.md; bench/run/runner.py is real",
        "bench.run.runner.no_such_function and bench.nothing.here; bench.run.runner.run_case",
        "bench.run.writer.RunWriter.no_method; bench.run.writer.RunWriter.append",
        "```",
        "bench/run/runner.py  run_case(case, measure) made_up_call(x) len(x)",
        "                     RunWriter.append(r) Case.no_field(x) Unknown.thing(y)",
        "bench/run/writer.py  RunWriter.create(run_dir) RunWriter.invented(x)",
        "bench/run/nothing.py  f(x)",
        "```",
    ])
    assert missing_paths(fake) == ["bench/run/no_such.py", "bench/run/nothing.py", "docs/NOPE.md",
                                  "tests/nowhere/"]
    dotted = unresolved_dotted(fake)
    assert [d.split(":")[0] for d in dotted] == [
        "bench.nothing.here", "bench.run.runner.no_such_function",
        "bench.run.writer.RunWriter.no_method"], dotted
    found = missing_in_entries(fake)
    assert [f.split(": ")[2] for f in found] == [
        "made_up_call(", "Case.no_field(", "RunWriter.append(", "Unknown.thing(",
        "RunWriter.invented(", "no such module"], found
