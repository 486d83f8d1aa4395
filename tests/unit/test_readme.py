"""The README is the front door: its snippets are real code, its links and commands exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
EXAMPLES = sorted((REPO / "docs" / "examples").glob("*.py"))


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README, flags=re.M | re.S)


def test_every_python_line_of_the_readme_is_in_an_example_that_runs() -> None:
    example_lines = {line.strip() for path in EXAMPLES for line in path.read_text().splitlines()}
    blocks = _blocks("python")
    assert blocks, "the README shows code"
    missing = [
        line.strip()
        for block in blocks
        for line in block.splitlines()
        if line.strip() and line.strip() not in example_lines
    ]
    assert missing == [], "README lines that no file under docs/examples/ contains"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_example_is_run_by_a_test(example: Path) -> None:
    tests = [p for p in (REPO / "tests").rglob("test_*.py") if p.name != "test_readme.py"]
    assert any(example.name in p.read_text() or example.stem in p.read_text() for p in tests), example


def test_local_links_and_pictures_resolve() -> None:
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README)
    local = [t for t in targets if "://" not in t]
    assert local, "the README links to its long-form docs"
    assert [t for t in local if not (REPO / t).exists()] == []


def test_make_targets_and_example_scripts_named_exist() -> None:
    makefile = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z]+):", makefile, flags=re.M))
    named = set(re.findall(r"`make ([a-z]+)`", README)) | set(re.findall(r"^make ([a-z]+)", README, re.M))
    assert {"demo", "test"} <= named
    assert named - targets == set()
    scripts = set(re.findall(r"docs/examples/[a-z_]+\.py", README))
    assert scripts and all((REPO / s).exists() for s in scripts)
