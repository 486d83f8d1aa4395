"""The recipes and artifacts a core can deploy: what ``gdk component build`` wrote.

A source is a recipe folder and an artifact folder laid out as gdk and ``greengrass-cli deployment
create --recipeDir --artifactDir`` expect: any ``*.yaml``/``*.yml``/``*.json`` recipe in the first,
``<component>/<version>/<file>`` in the second. ``gdk component build`` writes exactly that under
``greengrass-build/recipes`` and ``greengrass-build/artifacts``. Each stored version carries a
fingerprint of its recipe and artifacts, so a rebuild under the same version number is still noticed.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fanwatch.core.recipe import Recipe, RecipeError, load_recipe
from fanwatch.core.versions import Requirement, Version

__all__ = ["ComponentStore", "StoredComponent"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoredComponent:
    recipe: Recipe
    artifacts: Path | None  # the folder holding this version's artifacts
    fingerprint: str

    @property
    def name(self) -> str:
        return self.recipe.name

    @property
    def version(self) -> str:
        return self.recipe.version


def _fingerprint(recipe_file: Path, artifacts: Path | None) -> str:
    hasher = hashlib.sha256(recipe_file.read_bytes())
    if artifacts is not None and artifacts.is_dir():
        for file in sorted(p for p in artifacts.rglob("*") if p.is_file()):
            hasher.update(str(file.relative_to(artifacts)).encode())
            hasher.update(file.read_bytes())
    return hasher.hexdigest()


class ComponentStore:
    """Component versions by name, from one or more recipe/artifact folder pairs."""

    def __init__(self) -> None:
        self._sources: list[tuple[Path, Path | None]] = []
        self._components: dict[tuple[str, str], StoredComponent] = {}

    def add(self, recipes: Path, artifacts: Path | None = None) -> list[StoredComponent]:
        """Index a recipe folder (and its artifact folder); a later source wins for the same version.

        Raises RecipeError for a recipe that cannot be read: a broken recipe must not hide silently.
        """
        if not recipes.is_dir():
            raise FileNotFoundError(f"recipe folder {recipes} does not exist")
        found: list[StoredComponent] = []
        for file in sorted(recipes.iterdir()):
            if file.suffix.lower() not in {".yaml", ".yml", ".json"} or not file.is_file():
                continue
            recipe = load_recipe(file)
            folder = None if artifacts is None else artifacts / recipe.name / recipe.version
            stored = StoredComponent(recipe, folder, _fingerprint(file, folder))
            self._components[(recipe.name, recipe.version)] = stored
            found.append(stored)
        if (recipes, artifacts) not in self._sources:
            self._sources.append((recipes, artifacts))
        return found

    def add_build(self, folder: Path) -> list[StoredComponent]:
        """Index a gdk build output folder (``greengrass-build``: ``recipes/`` and ``artifacts/``)."""
        return self.add(folder / "recipes", folder / "artifacts")

    def refresh(self) -> None:
        """Read every source again (a rebuild may have replaced recipes or artifacts)."""
        self._components.clear()
        for recipes, artifacts in list(self._sources):
            try:
                self.add(recipes, artifacts)
            except (OSError, RecipeError) as exc:
                log.error("component store: cannot read %s: %s", recipes, exc)

    def get(self, name: str, version: str) -> StoredComponent:
        try:
            return self._components[(name, version)]
        except KeyError:
            have = sorted(v for n, v in self._components if n == name)
            known = f"versions here: {', '.join(have)}" if have else "no version of it is in the store"
            raise LookupError(f"{name} {version} is not in the component store ({known})") from None

    def best(self, name: str, requirement: Requirement) -> StoredComponent | None:
        """The highest stored version of ``name`` that ``requirement`` allows."""
        candidates = [
            c for (n, _), c in self._components.items() if n == name and requirement.allows(c.version)
        ]
        return max(candidates, key=lambda c: Version.parse(c.version), default=None)

    def __iter__(self) -> Iterator[StoredComponent]:
        return iter(sorted(self._components.values(), key=lambda c: (c.name, Version.parse(c.version))))
