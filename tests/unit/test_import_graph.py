"""The package boundaries, read from the source: no import cycle anywhere in ``src/``, and each part
imports only what its README says it may.

The graph is built with :mod:`ast` from every ``import`` in every module of ``src/fanwatch``, including
imports inside functions and under ``if TYPE_CHECKING:``: a cycle that only the type checker sees is
still two modules that cannot be read one without the other. ``from package import name`` counts as an
import of ``package.name`` when that is a module, else of ``package`` (whose ``__init__`` then runs).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


def module_files(src: Path = SRC) -> dict[str, Path]:
    """Dotted module name -> file, for every module under ``src/fanwatch``."""
    modules: dict[str, Path] = {}
    for path in sorted((src / "fanwatch").rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imports_of(name: str, path: Path, modules: Mapping[str, Path]) -> set[str]:
    """The modules of ``modules`` that ``name`` imports, anywhere in its file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                if f"{base}.{alias.name}" in modules:
                    found.add(f"{base}.{alias.name}")
                elif base in modules:
                    found.add(base)
    found.discard(name)
    return found


def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    modules = module_files(src)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each as a readable loop."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_src_has_no_import_cycle() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles in src/: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_cycle_finder_finds_a_cycle_and_its_members(tmp_path: Path) -> None:
    """The check above can fail: a package with a loop through a TYPE_CHECKING import and a relative
    import inside a function is reported, and a module outside the loop is not."""
    package = tmp_path / "fanwatch" / "loop"
    package.mkdir(parents=True)
    (tmp_path / "fanwatch" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from fanwatch.loop.b import B\n"
    )
    (package / "b.py").write_text("def f():\n    from . import c\n")
    (package / "c.py").write_text("import fanwatch.loop.a\n")
    (package / "d.py").write_text("from fanwatch.loop import a\n")
    graph = import_graph(tmp_path)
    assert graph["fanwatch.loop.d"] == {"fanwatch.loop.a"}
    assert cycles(graph) == [["fanwatch.loop.a", "fanwatch.loop.b", "fanwatch.loop.c"]]


# -- what each part may import (each core subpackage's README says the same) -------------------------

#: core's subpackages and modules, and the parts of core each may import (besides itself and the
#: shared modules below). Anything in core not listed here may import any part of core.
CORE_MAY_IMPORT: dict[str, set[str]] = {
    "fanwatch.core.ports": {"fanwatch.core.config", "fanwatch.core.deployment"},
    "fanwatch.core.config": set(),
    "fanwatch.core.layout": set(),
    "fanwatch.core.unixsocket": set(),
    "fanwatch.core.deployment": {"fanwatch.core.layout", "fanwatch.core.config"},
    "fanwatch.core.lifecycle": {"fanwatch.core.ports", "fanwatch.core.deployment"},
    "fanwatch.core.ipc": {"fanwatch.core.ports", "fanwatch.core.config", "fanwatch.core.unixsocket"},
    "fanwatch.core.mqtt": {"fanwatch.core.ports"},
    "fanwatch.core.control": {"fanwatch.core.ports", "fanwatch.core.unixsocket"},
    "fanwatch.core.runtime": {
        "fanwatch.core.ports",
        "fanwatch.core.config",
        "fanwatch.core.layout",
        "fanwatch.core.deployment",
        "fanwatch.core.lifecycle",
        "fanwatch.core.ipc",
        "fanwatch.core.mqtt",
        "fanwatch.core.control",
    },
}

#: Top-level packages and the fanwatch packages they must never import (docs/architecture.md): the
#: edge runs on a Pi without the local core, the cloud in Lambda without either, the forest and the
#: telemetry contract under all of them, the build under a bare python3; and none of these libraries
#: imports the applications built on them (the stand-in, the fleet tools, the demo).
_APPLICATIONS = {"fanwatch.standin", "fanwatch.fleet", "fanwatch.stack", "fanwatch.demo"}
MUST_NOT_IMPORT: dict[str, set[str]] = {
    "fanwatch.core": {"fanwatch.edge", "fanwatch.cloud", "fanwatch.rcf", "fanwatch.build", *_APPLICATIONS},
    "fanwatch.edge": {"fanwatch.core", "fanwatch.cloud", "fanwatch.rcf", "fanwatch.build", *_APPLICATIONS},
    "fanwatch.cloud": {"fanwatch.core", "fanwatch.edge", "fanwatch.build", *_APPLICATIONS},
    "fanwatch.rcf": {
        "fanwatch.core",
        "fanwatch.edge",
        "fanwatch.cloud",
        "fanwatch.telemetry",
        *_APPLICATIONS,
    },
    "fanwatch.telemetry": {
        "fanwatch.core",
        "fanwatch.edge",
        "fanwatch.cloud",
        "fanwatch.rcf",
        *_APPLICATIONS,
    },
    "fanwatch.build": {
        "fanwatch.core",
        "fanwatch.edge",
        "fanwatch.cloud",
        "fanwatch.rcf",
        "fanwatch.telemetry",
        *_APPLICATIONS,
    },
}


def _part(module: str, parts: Iterable[str]) -> str | None:
    """The longest listed part that ``module`` is or lies in."""
    matches = [p for p in parts if module == p or module.startswith(p + ".")]
    return max(matches, key=len) if matches else None


def test_core_parts_import_only_what_their_readme_allows() -> None:
    graph = import_graph()
    wrong = []
    for module, targets in graph.items():
        part = _part(module, CORE_MAY_IMPORT)
        if part is None:
            continue
        allowed = CORE_MAY_IMPORT[part] | {part}
        for target in targets:
            if target.startswith("fanwatch.core") and _part(target, allowed) is None:
                wrong.append(f"{module} -> {target}")
    assert not wrong, "core parts importing what they may not: " + ", ".join(sorted(wrong))


def test_packages_keep_their_boundaries() -> None:
    graph = import_graph()
    wrong = [
        f"{module} -> {target}"
        for module, targets in graph.items()
        if (part := _part(module, MUST_NOT_IMPORT)) is not None
        for target in targets
        if _part(target, MUST_NOT_IMPORT[part]) is not None
    ]
    assert not wrong, "imports across a boundary: " + ", ".join(sorted(wrong))


#: Modules every package may import, so they import nothing of fanwatch themselves.
SHARED_LEAVES = ("fanwatch.environment", "fanwatch.errors", "fanwatch.limits")


@pytest.mark.parametrize("leaf", SHARED_LEAVES)
def test_shared_modules_import_nothing_of_fanwatch(leaf: str) -> None:
    assert import_graph()[leaf] == set()


@pytest.mark.parametrize("part", sorted(p for p in CORE_MAY_IMPORT if (SRC / p.replace(".", "/")).is_dir()))
def test_each_core_subpackage_has_a_readme(part: str) -> None:
    readme = SRC / part.replace(".", "/") / "README.md"
    assert readme.is_file(), f"{part} has no README.md saying what lives there and what it may import"
