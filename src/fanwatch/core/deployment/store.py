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

A core's own packages (what it installed) are a second, lower layer: a build folder's version always
wins over the installed copy of the same version, as a ``greengrass-cli`` local deployment replaces
it on a device, while a restarting core restores from the installed copy (:meth:`get_installed`).
Installed versions count as published for NEXT_PATCH, so a rebuild never takes a number already used.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fanwatch.core.deployment.recipe import (
    NEXT_PATCH,
    Recipe,
    component_identity,
    parse_recipe,
    read_recipe_document,
    with_version,
)
from fanwatch.core.deployment.versions import Requirement, Version

__all__ = ["NEXT_PATCH", "ComponentStore", "StoredComponent"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoredComponent:
    """A component version in the store: its recipe, where its artifacts are, and a fingerprint that tells
    a rebuilt version from the one installed."""

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
        self._components: dict[tuple[str, str], StoredComponent] = {}  # from the sources
        self._numbered: set[tuple[str, str]] = set()  # source versions given to a NEXT_PATCH build
        self._installed: dict[tuple[str, str], StoredComponent] = {}  # a core's own packages

    def add(self, recipes: Path, artifacts: Path | None = None) -> list[StoredComponent]:
        """Index a recipe folder (and its artifact folder); a later source wins for the same version.

        Raises RecipeError for a recipe that cannot be read: a broken recipe must not hide silently.
        """
        found: list[StoredComponent] = []
        unversioned: list[_Read] = []
        for read in _read(recipes, artifacts):
            if read.literal == NEXT_PATCH:
                unversioned.append(read)
                continue
            stored = self._register(self._components, read, read.document)
            self._numbered.discard((stored.name, stored.version))
            found.append(stored)
        found += [self._number(read) for read in unversioned]
        if (recipes, artifacts) not in self._sources:
            self._sources.append((recipes, artifacts))
        return found

    def add_build(self, folder: Path) -> list[StoredComponent]:
        """Index a gdk build output folder (``greengrass-build``: ``recipes/`` and ``artifacts/``)."""
        return self.add(folder / "recipes", folder / "artifacts")

    def refresh(self) -> list[StoredComponent]:
        """Read every source again: a rebuild shows up (a changed NEXT_PATCH build as the next version).

        A source whose folder is gone (a build folder moved away) is skipped with a warning, and what
        it offered is forgotten until it comes back: installed copies serve meanwhile, and deployments
        that need none of it go on.
        """
        found: list[StoredComponent] = []
        for recipes, artifacts in list(self._sources):
            if not recipes.is_dir():
                gone = [key for key, c in self._components.items() if Path(c.recipe.source).parent == recipes]
                for key in gone:
                    del self._components[key]
                    self._numbered.discard(key)
                log.warning("component source %s is missing: skipped until it comes back", recipes)
                continue
            found += self.add(recipes, artifacts)
        return found

    def add_installed(self, recipes: Path, artifacts: Path) -> list[StoredComponent]:
        """Index a core's own packages (recipes and artifacts it installed), below every source.

        A NEXT_PATCH build already given a version that turns out to be installed with other content
        is numbered again, so that it becomes the next version instead of hiding behind the old one.
        """
        found = [self._register(self._installed, read, read.document) for read in _read(recipes, artifacts)]
        taken = sorted(
            key
            for key in self._numbered
            if key in self._installed
            and self._installed[key].fingerprint != self._components[key].fingerprint
        )
        for key in taken:
            build = self._components.pop(key)
            self._numbered.discard(key)
            file = Path(build.recipe.source)
            self._number(
                _Read(file, dict(build.document), build.name, NEXT_PATCH, build.artifacts, build.fingerprint)
            )
        return found

    def _number(self, read: _Read) -> StoredComponent:
        """A NEXT_PATCH build under the version ``gdk component publish`` would give it."""
        version = self._next_patch(read.name, read.fingerprint)
        log.info("component store: %s %s from %s is version %s", read.name, NEXT_PATCH, read.file, version)
        for key in [k for k in self._numbered if k[0] == read.name and k[1] != version]:
            if self._components[key].recipe.source == str(read.file):
                # its artifacts folder now holds this build: only a core's installed copy can still be it
                del self._components[key]
                self._numbered.discard(key)
        stored = self._register(self._components, read, with_version(read.document, version))
        self._numbered.add((stored.name, stored.version))
        return stored

    def _register(
        self, layer: dict[tuple[str, str], StoredComponent], read: _Read, document: dict[str, Any]
    ) -> StoredComponent:
        recipe = parse_recipe(document, source=str(read.file))
        stored = StoredComponent(recipe, read.folder, read.fingerprint, document)
        layer[(stored.name, stored.version)] = stored
        return stored

    def _every(self) -> dict[tuple[str, str], StoredComponent]:
        """Every version, a source's copy over the installed one."""
        return {**self._installed, **self._components}

    def _next_patch(self, name: str, fingerprint: str) -> str:
        versions = [c for (n, _), c in self._every().items() if n == name]
        same = next((c.version for c in versions if c.fingerprint == fingerprint), None)
        if same is not None:
            return same
        if not versions:
            return "1.0.0"
        top = max(Version.parse(c.version) for c in versions)
        return f"{top.major}.{top.minor}.{top.patch + 1}"

    def get(self, name: str, version: str) -> StoredComponent:
        """What a deployment of ``name`` ``version`` installs: the build's copy, else the installed one."""
        return _lookup(
            self._every(), name, version, "the component store", "no version of it is in the store"
        )

    def get_installed(self, name: str, version: str) -> StoredComponent:
        """The copy a core installed (see :meth:`add_installed`): what a restart brings back."""
        return _lookup(self._installed, name, version, "this core's installed packages", "none is installed")

    def latest(self, name: str) -> StoredComponent | None:
        return self.best(name, Requirement("*"))

    def best(self, name: str, requirement: Requirement) -> StoredComponent | None:
        """The highest stored version of ``name`` that ``requirement`` allows."""
        candidates = [c for (n, _), c in self._every().items() if n == name and requirement.allows(c.version)]
        return max(candidates, key=lambda c: Version.parse(c.version), default=None)

    def __iter__(self) -> Iterator[StoredComponent]:
        return iter(sorted(self._every().values(), key=lambda c: (c.name, Version.parse(c.version))))


@dataclass(frozen=True, slots=True)
class _Read:
    """One recipe file as read, before its version is settled."""

    file: Path
    document: dict[str, Any]
    name: str
    literal: str  # ComponentVersion as written: a version or NEXT_PATCH
    folder: Path | None
    fingerprint: str


def _read(recipes: Path, artifacts: Path | None) -> Iterator[_Read]:
    """Every recipe in ``recipes`` with its artifact folder (RecipeError for one that cannot be read)."""
    if not recipes.is_dir():
        raise FileNotFoundError(f"recipe folder {recipes} does not exist")
    for file in sorted(recipes.iterdir()):
        if file.suffix.lower() not in {".yaml", ".yml", ".json"} or not file.is_file():
            continue
        document = read_recipe_document(file)
        name, literal = component_identity(document, str(file))  # before either becomes a path
        folder = None if artifacts is None else artifacts / name / literal
        yield _Read(file, document, name, literal, folder, _fingerprint(document, folder))


def _lookup(
    layer: Mapping[tuple[str, str], StoredComponent], name: str, version: str, where: str, none: str
) -> StoredComponent:
    try:
        return layer[(name, version)]
    except KeyError:
        have = sorted((v for n, v in layer if n == name), key=Version.parse)
        known = f"versions here: {', '.join(have)}" if have else none
        raise LookupError(f"{name} {version} is not in {where} ({known})") from None
