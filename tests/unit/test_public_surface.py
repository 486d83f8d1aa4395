"""Each module of fanwatch says what it offers: an ``__all__`` that names only what is there.

A reader (and ``from module import *``, and the docs) can then tell a module's surface from its helpers
without reading it through. ``__main__`` runs the CLI when imported, so it is left out.

Each module, and each public class and function at its top level, also says in a docstring what it is
for: read from the source (``__main__`` included), so nothing is imported.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / "fanwatch").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__main__":
            continue
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()
SOURCES = {**MODULES, "fanwatch.__main__": SRC / "fanwatch" / "__main__.py"}


def _declares_all(path: Path) -> bool:
    for node in ast.parse(path.read_text(), str(path)).body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            return True
    return False


def _undocumented(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    missing = [] if ast.get_docstring(tree) else ["the module"]
    return missing + [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and not node.name.startswith("_")
        and not ast.get_docstring(node)
    ]


def test_the_walk_finds_the_modules() -> None:
    assert {"fanwatch.limits", "fanwatch.core.runtime.local_core", "fanwatch.edge.install"} <= set(MODULES)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_names_what_it_offers(name: str) -> None:
    assert _declares_all(MODULES[name]), f"{name} has no __all__"
    module = importlib.import_module(name)
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it does not define: {missing}"


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_every_public_name_says_what_it_is_for(name: str) -> None:
    missing = _undocumented(SOURCES[name])
    assert not missing, f"{name}: no docstring for {', '.join(missing)}"
