"""The real Greengrass Development Kit CLI builds the components (runs when gdk is found).

Set ``GDK_CLI`` to the gdk executable (or put ``gdk`` on PATH); gdk is never installed by the project.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from fanwatch import build

GDK = os.environ.get("GDK_CLI") or shutil.which("gdk")
pytestmark = [
    pytest.mark.gdk,
    pytest.mark.skipif(GDK is None, reason="the gdk CLI is not installed (set GDK_CLI or put gdk on PATH)"),
]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of what gdk needs (recipes, gdk projects, sources), with the project's venv beside it."""
    root = tmp_path / "repo"
    repo = build.REPO
    shutil.copytree(repo / "recipes", root / "recipes")
    shutil.copytree(repo / "components", root / "components", symlinks=True)
    shutil.copytree(
        repo / "src" / "fanwatch", root / "src" / "fanwatch", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(repo / "gdk-config.json", root)
    (root / "recipe.yaml").symlink_to("recipes/fanwatch.Tachometer.yaml")
    (root / ".venv").symlink_to(Path(sys.prefix))
    return root


def gdk(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert GDK is not None
    done = subprocess.run([GDK, *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.mark.parametrize("name", list(build.COMPONENTS))
def test_gdk_component_build_in_the_component_folder(checkout: Path, name: str) -> None:
    folder = checkout / "components" / name
    gdk("component", "build", cwd=folder)
    out = folder / "greengrass-build"
    component = build.COMPONENTS[name]
    with zipfile.ZipFile(out / "artifacts" / name / "NEXT_PATCH" / f"{component.zip_name}.zip") as z:
        assert z.namelist() == [arc for _, arc in component.entries()]
    text = (out / "recipes" / f"{name}.yaml").read_text()
    assert (
        build.check_recipe(yaml.safe_load(text), text) == []
    )  # includes gdk's schema (found through GDK_CLI)


def test_gdk_component_build_at_the_root_builds_every_component(checkout: Path) -> None:
    gdk("component", "build", cwd=checkout)
    recipes = sorted(p.name for p in (checkout / "greengrass-build" / "recipes").iterdir())
    assert recipes == sorted(f"{n}.yaml" for n in build.COMPONENTS)


def test_gdk_publish_reads_the_built_recipe_and_resolves_the_version(checkout: Path) -> None:
    """gdk publish's own recipe transformer: the file it reads, its s3 rewrite, its schema and size checks."""
    folder = checkout / "components" / "fanwatch.EdgeFilter"
    gdk("component", "build", cwd=folder)
    script = """
from gdk.common.config.GDKProject import GDKProject
from gdk.commands.component.transformer.PublishRecipeTransformer import PublishRecipeTransformer
p = GDKProject()
p.component_version, p.bucket = "1.0.4", "fanwatch-components-us-east-1-123456789012"
p.publish_recipe_file = p.gg_build_recipes_dir / "fanwatch.EdgeFilter-1.0.4.yaml"
PublishRecipeTransformer(p).transform()
print(p.recipe_file.name)
"""
    gdk_python = Path(GDK or "").resolve().parent / "python"
    done = subprocess.run(
        [str(gdk_python), "-c", script], cwd=folder, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "fanwatch.EdgeFilter.yaml"  # what the recipe.yaml symlink resolves to
    published = yaml.safe_load(
        (folder / "greengrass-build/recipes/fanwatch.EdgeFilter-1.0.4.yaml").read_text()
    )
    assert published["ComponentVersion"] == "1.0.4"
    uris = {a["URI"] for m in published["Manifests"] for a in m["Artifacts"]}
    assert uris == {
        "s3://fanwatch-components-us-east-1-123456789012/fanwatch.EdgeFilter/1.0.4/fanwatch_edgefilter.zip"
    }


def test_the_recipe_check_uses_gdks_schema_when_gdk_is_there() -> None:
    schema = build.gdk_schema()
    assert schema is not None and schema.name == "recipe_schema.json" and schema.is_file()
    data = yaml.safe_load(build.COMPONENTS["fanwatch.Tachometer"].recipe.read_text())
    data["ComponentColour"] = "blue"  # only the schema knows every allowed top-level key
    problems = build.check_recipe(data, build.dump_recipe(data))
    assert any(p.startswith("gdk recipe schema:") and "componentcolour" in p for p in problems), problems
