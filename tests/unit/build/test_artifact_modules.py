"""Each component's zip holds every fanwatch module its entry point imports, directly or not.

The device runs the component from its artifact alone, so a module the edge starts importing (a new
shared leaf, say) that the zip leaves out is an ImportError on every Pi; locally, PYTHONPATH hides it
until the slower test that runs the built artifacts on the local core.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from fanwatch.build import COMPONENTS

_GRAPH_TEST = Path(__file__).resolve().parents[1] / "test_import_graph.py"
_spec = importlib.util.spec_from_file_location("import_graph_helpers", _GRAPH_TEST)
assert _spec is not None and _spec.loader is not None
graph_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(graph_helpers)


def _module(source: str) -> str:
    parts = list(Path(source).relative_to("src").with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_the_artifact_holds_every_module_its_entry_point_imports(name: str) -> None:
    component = COMPONENTS[name]
    packed = {_module(s) for s in component.sources if s.endswith(".py")}
    (entry,) = [m for m in packed if m.rpartition(".")[2].startswith("run_")]
    graph = graph_helpers.import_graph()
    needed, todo = set(), [entry]
    while todo:
        module = todo.pop()
        if module not in needed:
            needed.add(module)
            todo += graph[module]
    assert not needed - packed, f"{name}'s zip lacks {sorted(needed - packed)}"
