"""No import circles between the library's modules.

Function-level (lazy) imports count: two modules that reach into each other are one module in
two files, whichever of them imports at call time. Not counted: imports under
``if TYPE_CHECKING:`` (annotations only) and package ``__init__`` modules (lazy re-exports of
the public names, :mod:`sr_domains._lazy`).
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _modules(root: Path) -> dict[str, Path]:
    mods = {}
    for p in root.rglob("*.py"):
        parts = list(p.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = p
    return mods


def _imported(name: str, path: Path, node: ast.ImportFrom | ast.Import) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    pkg = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    base = pkg[: len(pkg) - node.level + 1] if node.level else []
    target = ".".join(base + ([node.module] if node.module else []))
    return [target, *(f"{target}.{a.name}" for a in node.names)]


def import_graph(root: Path) -> dict[str, set[str]]:
    """``module -> modules it imports`` within the package at ``root`` (module docs)."""
    mods = _modules(root)
    plain = {m for m, p in mods.items() if p.name != "__init__.py"}
    graph: dict[str, set[str]] = {m: set() for m in plain}
    for m in plain:
        tree = ast.parse(mods[m].read_text(encoding="utf-8"))
        typing_only = {  # the body of `if TYPE_CHECKING:` only (not its else branch)
            id(n)
            for block in ast.walk(tree)
            if isinstance(block, ast.If)
            and ast.unparse(block.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
            for stmt in block.body
            for n in ast.walk(stmt)
        }
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in typing_only:
                graph[m].update(t for t in _imported(m, mods[m], node) if t in plain and t != m)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_detector_finds_a_lazy_circle_and_ignores_typing_imports(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .a import f\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .sub.b import g\n\ndef f():\n    return g\n")
    (pkg / "sub" / "b.py").write_text("def g():\n    from ..a import f\n    return f\n")
    (pkg / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .d import x\n"
    )
    (pkg / "d.py").write_text("from .c import TYPE_CHECKING\n")
    (pkg / "e.py").write_text(  # a runtime import in the else branch still counts
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    pass\nelse:\n"
        "    from .f import y\n"
    )
    (pkg / "f.py").write_text("from .e import TYPE_CHECKING\n")
    assert cycles(import_graph(pkg)) == [["pkg.a", "pkg.sub.b"], ["pkg.e", "pkg.f"]]


def test_library_modules_import_each_other_without_circles():
    graph = import_graph(REPO / "sr_domains")
    assert len(graph) > 100  # every module was parsed
    assert "sr_domains.medical.dicom_derive" in graph["sr_domains.medical.dicom_write"]
    assert cycles(graph) == []
