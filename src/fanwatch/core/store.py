"""The recipes and artifacts a core can deploy: what ``gdk component build`` wrote.

A source is a recipe folder and an artifact folder laid out as gdk and ``greengrass-cli deployment
create --recipeDir --artifactDir`` expect: any ``*.yaml``/``*.yml``/``*.json`` recipe in the first,
``<component>/<version>/<file>`` in the second. ``gdk component build`` writes exactly that under
``greengrass-build/recipes`` and ``greengrass-build/artifacts``.

gdk leaves ``ComponentVersion: NEXT_PATCH`` literal at build time (artifacts under ``.../NEXT_PATCH/``);
``gdk component publish`` turns it into the highest published version plus one patch, or 1.0.0. The
store does the same when it indexes such a recipe, except that content identical to a version it
already holds keeps that version, so re-reading an unchanged build does not invent a new one. Every
stored version carries a fingerprint of its recipe and artifacts, so a rebuild under the same version
number is still noticed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from fanwatch.core.recipe import Recipe, parse_recipe, read_recipe_document, recipe_field, with_version
from fanwatch.core.versions import Requirement, Version

__all__ = ["NEXT_PATCH", "ComponentStore", "StoredComponent"]

log = logging.getLogger(__name__)

NEXT_PATCH: Final = "NEXT_PATCH"


@dataclass(frozen=True, slots=True)
class StoredComponent:
    recipe: Recipe
    artifacts: Path | None  # the folder holding this version's artifacts
    fingerprint: str
    document: Mapping[str, Any] = field(default_factory=dict, compare=False)  # the recipe as written

    @property
    def name(self) -> str:
        return self.recipe.name

    @property
    def version(self) -> str:
        return self.recipe.version


def _fingerprint(document: Mapping[str, Any], artifacts: Path | None) -> str:
    """Recipe content (whatever its version says) and artifact bytes."""
    unversioned = {k: v for k, v in document.items() if str(k).lower() != "componentversion"}
    hasher = hashlib.sha256(json.dumps(unversioned, sort_keys=True, default=str).encode())
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
        unversioned: list[tuple[Path, dict[str, Any], Path | None, str]] = []
        for file in sorted(recipes.iterdir()):
            if file.suffix.lower() not in {".yaml", ".yml", ".json"} or not file.is_file():
                continue
            document = read_recipe_document(file)
            name = str(recipe_field(document, "ComponentName"))
            literal = str(recipe_field(document, "ComponentVersion"))
            folder = None if artifacts is None else artifacts / name / literal
            fingerprint = _fingerprint(document, folder)
            if literal == NEXT_PATCH:
                unversioned.append((file, document, folder, fingerprint))
                continue
            found.append(self._register(file, document, folder, fingerprint))
        for file, document, folder, fingerprint in unversioned:
            name = str(recipe_field(document, "ComponentName"))
            version = self._next_patch(name, fingerprint)
            log.info("component store: %s %s from %s is version %s", name, NEXT_PATCH, file, version)
            found.append(self._register(file, with_version(document, version), folder, fingerprint))
        if (recipes, artifacts) not in self._sources:
            self._sources.append((recipes, artifacts))
        return found

    def add_build(self, folder: Path) -> list[StoredComponent]:
        """Index a gdk build output folder (``greengrass-build``: ``recipes/`` and ``artifacts/``)."""
        return self.add(folder / "recipes", folder / "artifacts")

    def refresh(self) -> list[StoredComponent]:
        """Read every source again: a rebuild shows up (a changed NEXT_PATCH build as the next version)."""
        return [c for recipes, artifacts in list(self._sources) for c in self.add(recipes, artifacts)]

    def _register(
        self, file: Path, document: dict[str, Any], folder: Path | None, fingerprint: str
    ) -> StoredComponent:
        stored = StoredComponent(parse_recipe(document, source=str(file)), folder, fingerprint, document)
        self._components[(stored.name, stored.version)] = stored
        return stored

    def _next_patch(self, name: str, fingerprint: str) -> str:
        versions = [c for (n, _), c in self._components.items() if n == name]
        same = next((c.version for c in versions if c.fingerprint == fingerprint), None)
        if same is not None:
            return same
        if not versions:
            return "1.0.0"
        top = max(Version.parse(c.version) for c in versions)
        return f"{top.major}.{top.minor}.{top.patch + 1}"

    def get(self, name: str, version: str) -> StoredComponent:
        try:
            return self._components[(name, version)]
        except KeyError:
            have = sorted((v for n, v in self._components if n == name), key=Version.parse)
            known = f"versions here: {', '.join(have)}" if have else "no version of it is in the store"
            raise LookupError(f"{name} {version} is not in the component store ({known})") from None

    def latest(self, name: str) -> StoredComponent | None:
        return self.best(name, Requirement("*"))

    def best(self, name: str, requirement: Requirement) -> StoredComponent | None:
        """The highest stored version of ``name`` that ``requirement`` allows."""
        candidates = [
            c for (n, _), c in self._components.items() if n == name and requirement.allows(c.version)
        ]
        return max(candidates, key=lambda c: Version.parse(c.version), default=None)

    def __iter__(self) -> Iterator[StoredComponent]:
        return iter(sorted(self._components.values(), key=lambda c: (c.name, Version.parse(c.version))))
