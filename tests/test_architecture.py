"""The house's walls (ARCHITECTURE.md), read from the source with `ast`.

Every import of an instructrec module counts, at module level or inside a function (a
function-level import is still a dependency, only a later one); imports under
``if TYPE_CHECKING:`` do not (they are never run). The walls:

- no file-level import circle (no strongly connected component of more than one file);
- no module whose body is only imports and ``__all__`` (a re-export shim; a package's
  ``__init__`` may gather its room's public names);
- no name imported through a module that only imports it (import it from where it lives:
  src, tests, benchmarks and the Python blocks of the docs), and no module's ``__all__``
  naming what it imports;
- rooms import only rooms below them in `FLOORS` (nothing reaches back up).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "instructrec"

# bottom to top: a module may import its own room and rooms on lower floors only
FLOORS = [
    ["data", "stats", "np_ops"],  # np_ops: NumPy kernels of the torch-free inference
    ["instructions"],
    ["retrieval"],
    ["models"],
    ["rerank"],
    ["training"],
    ["config"],  # the run's typed configuration: one section per room below
    ["recommender", "recommender_files"],  # recommender_files: the saved Recommender folder
    ["legacy"],  # converts old runs into Recommender folders
    ["evaluation"],
    ["runs"],  # run folders: config + model + evaluation report
    ["feedback", "scale"],
    ["serving"],
    ["cli", "__main__"],  # __main__: `python -m instructrec` runs the CLI
    ["testing"],  # the shared contract suites and fixtures (drive the CLI too)
]


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _walk(node: ast.AST):
    """`ast.walk`, minus ``if TYPE_CHECKING:`` blocks (read by type checkers, never run)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            yield from (n for s in child.orelse for n in [s, *_walk(s)])
            continue
        yield child
        yield from _walk(child)


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The instructrec modules (files) ``name`` imports anywhere in its body."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in _walk(ast.parse(path.read_text(), str(path))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package[: len(package) - (node.level - 1)]
                base = ".".join(up + ([node.module] if node.module else []))
            targets = [f"{base}.{a.name}" for a in node.names]  # a submodule or a name in base
        for t in targets:
            while t and t not in modules:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


MODULES = _modules()
GRAPH = {name: _imports(name, path, MODULES) for name, path in MODULES.items()}


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                out.append(sorted(comp))
    return out


def test_the_graph_sees_both_kinds_of_import():
    # module level (rerank.explain -> rerank.candidates) and inside a function
    # (recommender -> training.fit_reranker)
    assert "instructrec.rerank.candidates" in GRAPH["instructrec.rerank.explain"]
    assert "instructrec.training.fit_reranker" in GRAPH["instructrec.recommender"]
    assert _components({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [
        ["a", "b", "c"],
        ["d"],
    ]


def test_no_import_circle_between_files():
    circles = [c for c in _components(GRAPH) if len(c) > 1]
    assert not circles, f"files that import each other (directly or round a circle): {circles}"


def _only_imports(path: Path) -> bool:
    body = ast.parse(path.read_text()).body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    names = {"__all__"}
    return bool(body) and all(
        isinstance(s, ast.Import | ast.ImportFrom)
        or (
            isinstance(s, ast.Assign | ast.AnnAssign | ast.AugAssign)
            and {
                getattr(t, "id", None) for t in getattr(s, "targets", [getattr(s, "target", None)])
            }
            <= names
        )
        for s in body
    )


def test_no_module_only_re_exports():
    # a package's __init__ may gather its room's public names (the front door the docs use:
    # ``from instructrec.data import make_split``); any other module that only imports is a
    # shim left behind by a move
    shims = [n for n, p in sorted(MODULES.items()) if p.name != "__init__.py" and _only_imports(p)]
    assert not shims, f"modules whose body is only imports/__all__: {shims}"


@pytest.mark.parametrize(
    "source, shim",
    [("from .a import b\n__all__ = ['b']\n", True), ('"""Doc."""\n', False)]
    + [('"""Doc."""\nfrom .a import b\n\n\ndef f():\n    return b\n', False)],
)
def test_the_shim_check_tells_them_apart(tmp_path, source, shim):
    path = tmp_path / "m.py"
    path.write_text(source)
    assert _only_imports(path) is shim


def test_rooms_import_only_downwards():
    floor = {room: i for i, rooms in enumerate(FLOORS) for room in rooms}
    unknown = sorted({_room(m) for m in MODULES if _room(m) and _room(m) not in floor})
    assert not unknown, f"rooms without a floor in FLOORS (add them): {unknown}"
    upward = sorted(
        (a, b)
        for a, targets in GRAPH.items()
        for b in targets
        if _room(a) and _room(b) and _room(a) != _room(b) and floor[_room(b)] > floor[_room(a)]
    )
    assert not upward, f"imports that reach up a floor: {upward}"


def _imported_only(tree: ast.Module) -> set[str]:
    """Top-level names a module binds only by importing them (or as an alias of an imported
    name, ``old = new``): what another module could import through it. Names the module
    also defines (a fallback in ``except ImportError:``) are its own."""
    imported: set[str] = set()
    defined: set[str] = set()

    def visit(stmts) -> None:
        for s in stmts:
            if isinstance(s, ast.Import | ast.ImportFrom):
                imported.update(a.asname or a.name.split(".")[0] for a in s.names)
            elif isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                defined.add(s.name)
            elif isinstance(s, ast.Assign | ast.AnnAssign | ast.AugAssign):
                alias = isinstance(s.value, ast.Name) and s.value.id in imported - defined
                for t in getattr(s, "targets", None) or [s.target]:
                    names = {n.id for n in ast.walk(t) if isinstance(n, ast.Name)}
                    (imported if alias else defined).update(names)
            elif isinstance(s, ast.If) and "TYPE_CHECKING" not in ast.unparse(s.test):
                visit(s.body)
                visit(s.orelse)
            elif isinstance(s, ast.Try):
                for block in (s.body, *(h.body for h in s.handlers), s.orelse, s.finalbody):
                    visit(block)
            elif isinstance(s, ast.With | ast.For):
                visit(s.body)

    visit(tree.body)
    return imported - defined


def _through_re_exports(tree: ast.Module, package: list[str], modules: dict, reexp: dict):
    """(line, module, name) of each ``from module import name`` in ``tree`` where ``module``
    is not a package and only imports ``name`` (``package``: for relative imports)."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        base = node.module or ""
        if node.level:
            up = package[: len(package) - (node.level - 1)]
            base = ".".join(up + ([node.module] if node.module else []))
        for a in node.names if base in reexp else []:
            if f"{base}.{a.name}" not in modules and a.name in reexp[base]:
                yield node.lineno, base, a.name


def _python_blocks(markdown: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", markdown, re.S)
    out = []
    for b in blocks:
        try:
            ast.parse(b)
        except SyntaxError:  # a fragment (``...``): not code to check
            continue
        out.append(b)
    return "\n".join(out)


def _importers() -> list[tuple[Path, ast.Module, list[str]]]:
    """Every file that imports instructrec: (path, its tree, its package for relative
    imports)."""
    out = []
    for path, name in [(p, n) for n, p in MODULES.items()]:
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        out.append((path, ast.parse(path.read_text()), package))
    for folder in ("tests", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            out.append((path, ast.parse(path.read_text()), []))
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        out.append((path, ast.parse(_python_blocks(path.read_text())), []))
    return out


RE_EXPORTABLE = {
    name: _imported_only(ast.parse(path.read_text()))
    for name, path in MODULES.items()
    if path.name != "__init__.py"
}


def test_names_are_imported_from_where_they_live():
    found = [
        f"{path.relative_to(ROOT)}{'' if path.suffix == '.md' else f':{line}'}: {name} from {module}"
        for path, tree, package in _importers()
        for line, module, name in _through_re_exports(tree, package, MODULES, RE_EXPORTABLE)
    ]
    assert not found, f"names imported through a module that only imports them: {found}"


def test_no_module_lists_what_it_imports_in_all():
    listed = []
    for name, path in sorted(MODULES.items()):
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text())
        for s in tree.body:
            targets = [getattr(t, "id", None) for t in getattr(s, "targets", [])]
            if "__all__" in targets:
                names = {e.value for e in getattr(s.value, "elts", [])}
                listed += [f"{name}.{n}" for n in sorted(names & RE_EXPORTABLE[name])]
    assert not listed, f"__all__ re-exports imported names: {listed}"


@pytest.mark.parametrize(
    "lives, through",
    [
        ("from .a import b\n\n\ndef f():\n    return b\n", True),  # used, still imported
        ("from .a import b\n\nold = b  # an older name\n", True),
        ("try:\n    from .a import b\nexcept ImportError:\n    b = None\n", False),
        ("from .a import c\n\n\ndef b():\n    return c\n", False),
        ("import numpy as b\n", True),
        ("if TYPE_CHECKING:\n    from .a import b\n", False),
    ],
)
def test_the_re_export_check_tells_them_apart(lives, through):
    reexp = {"pkg.m": _imported_only(ast.parse(lives))}
    importer = ast.parse("from pkg.m import b, old\nfrom .m import b\n")
    modules = {"pkg.m": Path("m.py")}
    found = {n for _, _, n in _through_re_exports(importer, ["pkg"], modules, reexp)}
    assert ("b" in found) is through
