"""The package's import graph (every ``import`` in fer_edge, function-level ones included, ``TYPE_CHECKING``
blocks left out) has no cycles: a cycle is an order-of-import trap and ties modules that should stand alone."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parents[1] / "fer_edge"


def modules(root: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every .py under ``root`` (a package is its __init__.py)."""
    out = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for child in node.body for n in ast.walk(child))
    return skip


def imported_names(path: Path, module: str) -> set[str]:
    """Every dotted name ``path`` imports at any depth (``from a import b`` gives ``a.b``), relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_nodes(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            names.update(f"{base}.{a.name}" for a in node.names)
    return names


def import_graph(root: Path = PACKAGE) -> nx.DiGraph:
    """module -> the package's modules it imports (the longest existing prefix of each imported name)."""
    mods = modules(root)
    graph = nx.DiGraph()
    graph.add_nodes_from(mods)
    for module, path in mods.items():
        for name in imported_names(path, module):
            while name and name not in mods:
                name = name.rpartition(".")[0]
            if name and name != module:
                graph.add_edge(module, name)
    return graph


def test_the_graph_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from . import b\n")
    (pkg / "a.py").write_text("def f():\n    from pkg.sub.b import g\n")
    (pkg / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import c\nfrom ..a import f\n")
    (pkg / "c.py").write_text("import pkg.sub.b\n")
    graph = import_graph(pkg)
    assert set(graph.edges) == {("pkg.a", "pkg.sub.b"), ("pkg.sub", "pkg.sub.b"), ("pkg.sub.b", "pkg.a"),
                                ("pkg.c", "pkg.sub.b")}
    assert sorted(map(sorted, nx.simple_cycles(graph))) == [["pkg.a", "pkg.sub.b"]]


def test_fer_edge_has_no_import_cycles() -> None:
    graph = import_graph()
    assert graph.number_of_nodes() > 100
    cycles = [" -> ".join([*c, c[0]]) for c in nx.simple_cycles(graph)]
    assert not cycles, "import cycles:\n" + "\n".join(sorted(cycles))
