"""Structure rules for ``src/`` (issue 21), read from the source with ``ast`` (nothing is imported):

* no import cycle among the project's modules, counting imports inside functions and under
  ``if TYPE_CHECKING``;
* no function longer than 80 lines (``def`` line to the last line of the body);
* no ``from X import _private`` where ``X`` lies in another package or subpackage than the importer.

Run ``python tests/test_structure.py`` to print every finding.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
MAX_FUNCTION_LINES = 80


@dataclass(frozen=True)
class Module:
    """One source file: its dotted name, path and whether it is a package's ``__init__``."""

    name: str
    path: Path
    is_package: bool

    @property
    def package(self) -> str:
        """The package this module belongs to (itself for an ``__init__``)."""
        return self.name if self.is_package else self.name.rpartition(".")[0]


@dataclass(frozen=True)
class Import:
    """``from module import name`` (``name`` None for ``import module``) at ``line``."""

    module: str
    name: str | None
    line: int


def project_modules() -> dict[str, Module]:
    """Every ``src/**/*.py`` by dotted name."""
    mods = {}
    for p in sorted(SRC.rglob("*.py")):
        parts = list(p.relative_to(SRC).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        mods[name] = Module(name, p, is_package)
    return mods


def imports_of(mod: Module) -> list[Import]:
    """All imports anywhere in the file (top level, in functions, under ``if TYPE_CHECKING``),
    relative ones resolved to absolute module names."""
    out = []
    for node in ast.walk(ast.parse(mod.path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [Import(a.name, None, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = mod.package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out += [Import(target, a.name, node.lineno) for a in node.names]
    return out


def import_graph(mods: dict[str, Module]) -> dict[str, set[str]]:
    """Module → the project modules it imports (``from pkg import submodule`` points at the submodule)."""
    graph = {}
    for name, mod in mods.items():
        deps = set()
        for imp in imports_of(mod):
            if imp.name and f"{imp.module}.{imp.name}" in mods:
                deps.add(f"{imp.module}.{imp.name}")
            elif imp.module in mods:
                deps.add(imp.module)
        deps.discard(name)
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
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
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def long_functions(mods: dict[str, Module]) -> list[str]:
    """``path:line name (n lines)`` for every function over :data:`MAX_FUNCTION_LINES` lines."""
    out = []
    for mod in mods.values():
        for node in ast.walk(ast.parse(mod.path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    out.append(f"{mod.path.relative_to(SRC)}:{node.lineno} {node.name} ({n} lines)")
    return out


def private_imports(mods: dict[str, Module]) -> list[str]:
    """``from X import _name`` where X's package differs from the importer's."""
    out = []
    for mod in mods.values():
        for imp in imports_of(mod):
            if not imp.name or not imp.name.startswith("_") or imp.name.startswith("__"):
                continue
            target = mods.get(imp.module)
            if target is None or target.package == mod.package:
                continue
            out.append(f"{mod.path.relative_to(SRC)}:{imp.line} from {imp.module} import {imp.name}")
    return out


def test_no_import_cycles():
    assert cycles(import_graph(project_modules())) == []


def test_no_long_functions():
    assert long_functions(project_modules()) == []


def test_no_private_imports_across_packages():
    assert private_imports(project_modules()) == []


if __name__ == "__main__":
    mods = project_modules()
    print("cycles:", cycles(import_graph(mods)) or "none")
    print(f"functions over {MAX_FUNCTION_LINES} lines:", *long_functions(mods) or ["none"], sep="\n  ")
    print("private names imported across packages:", *private_imports(mods) or ["none"], sep="\n  ")
