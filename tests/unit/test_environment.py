"""Each environment variable that one part of fanwatch sets and another reads is named once, in
:mod:`fanwatch.environment`: none of those names is typed out anywhere else in ``src/`` or the CDK
stack (the synthesized template is held against the module in ``tests/unit/stack``)."""

from __future__ import annotations

import ast
from pathlib import Path

from fanwatch import environment

ROOT = Path(__file__).resolve().parents[2]
SOURCES = (ROOT / "src" / "fanwatch", ROOT / "cloud-stack" / "fanwatch_stack")
HOME = ROOT / "src" / "fanwatch" / "environment.py"
NAMES = {
    value: constant
    for constant, value in vars(environment).items()
    if constant.endswith("_VARIABLE") and isinstance(value, str)
}


def typed_out(names: dict[str, str], sources: tuple[Path, ...] = SOURCES, root: Path = ROOT) -> list[str]:
    """``file:line name`` for each string literal in ``sources`` that is exactly one of ``names``."""
    found = []
    for source in sources:
        for path in sorted(source.rglob("*.py")):
            if path == HOME:
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
                    found.append(f"{path.relative_to(root)}:{node.lineno} {node.value}")
    return found


def test_the_module_names_the_variables_both_sides_use() -> None:
    assert {"MODEL_BUCKET", "SCORE_FLOOR", "AWS_IOT_THING_NAME", "FANWATCH_STACK"} <= set(NAMES)
    assert len(NAMES) == len(set(NAMES.values())), "two constants name the same variable"


def test_no_variable_name_is_typed_out_elsewhere() -> None:
    found = typed_out(NAMES)
    assert not found, "use fanwatch.environment instead of typing the name: " + ", ".join(found)


def test_the_search_finds_a_name_typed_out(tmp_path: Path) -> None:
    (tmp_path / "handler.py").write_text('import os\nbucket = os.environ["MODEL_BUCKET"]\n')
    assert typed_out(NAMES, (tmp_path,), tmp_path) == ["handler.py:2 MODEL_BUCKET"]
