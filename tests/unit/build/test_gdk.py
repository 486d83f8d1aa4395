"""The real Greengrass Development Kit CLI builds the components (runs when gdk is found).

CI installs the GDK CLI wheel from ``../shared/tools`` and sets ``GDK_CLI`` (see the ``gdk_cli``
fixture); the project itself never builds or installs gdk.
"""

from __future__ import annotations

import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from fanwatch import build

pytestmark = pytest.mark.gdk


@pytest.fixture
def gdk(gdk_cli: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([str(gdk_cli), *args], cwd=cwd, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    return run


@pytest.mark.parametrize("name", list(build.COMPONENTS))
def test_gdk_component_build_in_the_component_folder(gdk_checkout: Path, gdk, name: str) -> None:
    folder = gdk_checkout / "components" / name
    gdk("component", "build", cwd=folder)
    out = folder / "greengrass-build"
    component = build.COMPONENTS[name]
    with zipfile.ZipFile(out / "artifacts" / name / "NEXT_PATCH" / f"{component.zip_name}.zip") as z:
        assert z.namelist() == [arc for _, arc in component.entries()]
    text = (out / "recipes" / f"{name}.yaml").read_text()
    assert (
        build.check_recipe(yaml.safe_load(text), text) == []
    )  # includes gdk's schema (found through GDK_CLI)


def test_gdk_component_build_at_the_root_builds_every_component(gdk_checkout: Path, gdk) -> None:
    gdk("component", "build", cwd=gdk_checkout)
    recipes = sorted(p.name for p in (gdk_checkout / "greengrass-build" / "recipes").iterdir())
    assert recipes == sorted(f"{n}.yaml" for n in build.COMPONENTS)


def test_gdk_publish_reads_the_built_recipe_and_resolves_the_version(
    gdk_checkout: Path, gdk, gdk_cli: Path
) -> None:
    """gdk publish's own recipe transformer: the file it reads, its s3 rewrite, its schema and size checks."""
    folder = gdk_checkout / "components" / "fanwatch.EdgeFilter"
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
    gdk_python = gdk_cli.resolve().parent / "python"
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


def test_the_recipe_check_uses_gdks_schema_when_gdk_is_there(gdk_cli: Path) -> None:
    schema = build.gdk_schema()
    assert schema is not None and schema.name == "recipe_schema.json" and schema.is_file()
    data = yaml.safe_load(build.COMPONENTS["fanwatch.Tachometer"].recipe.read_text())
    data["ComponentColour"] = "blue"  # only the schema knows every allowed top-level key
    problems = build.check_recipe(data, build.dump_recipe(data))
    assert any(p.startswith("gdk recipe schema:") and "componentcolour" in p for p in problems), problems
