"""``fanwatch fleet publish``: what ``gdk component publish`` does, minus its trap.

gdk uploads a version's artifacts first and asks the service for the version afterwards; when the
version exists, the upload has already replaced the artifact the service pinned by digest, and every
device that installs that version from then on refuses it. Here every check comes first, for every
component of the build: the recipe reads, is at most 16 kB once published, names only artifacts the
build has, and its version does not exist in the account (``NEXT_PATCH`` becomes the account's
highest version plus one patch, as gdk computes it). Only then are artifacts uploaded, to
``s3://<bucket>/<name>/<version>/<file>`` (gdk's layout), and the versions created.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml
from botocore.exceptions import BotoCoreError, ClientError

from fanwatch.core.deployment.store import NEXT_PATCH
from fanwatch.core.deployment.versions import Version
from fanwatch.errors import FanwatchError
from fanwatch.fleet.arns import component_arn
from fanwatch.fleet.target import PublishTarget
from fanwatch.limits import MAX_RECIPE_BYTES

__all__ = ["BuiltComponent", "PublishError", "PublishPlan", "Publisher", "read_build"]

#: The placeholders gdk's build writes into artifact URIs and its publish fills in.
_PLACEHOLDERS: Final = ("BUCKET_NAME", "COMPONENT_NAME", "COMPONENT_VERSION")


class PublishError(FanwatchError):
    """Nothing was uploaded or created; the message lists every problem found."""


@dataclass(frozen=True, slots=True)
class BuiltComponent:
    """One component as ``gdk component build`` left it."""

    name: str
    version: str  # as built: a version, or NEXT_PATCH
    recipe_file: Path
    document: Mapping[str, Any]
    artifacts: Path  # greengrass-build/artifacts/<name>/<version as built>/


@dataclass(frozen=True, slots=True)
class PublishPlan:
    """What publishing one built component sends: the recipe as published (its version and its
    artifacts' S3 URIs filled in) and the files to upload."""

    component: BuiltComponent
    version: str
    recipe: bytes  # exactly what CreateComponentVersion receives
    uploads: tuple[tuple[Path, str], ...]  # (file, key) in the bucket

    @property
    def name(self) -> str:
        return self.component.name


def _field(data: Mapping[str, Any], name: str) -> Any:
    return next((v for k, v in data.items() if str(k).lower() == name.lower()), None)


def read_build(folder: Path) -> list[BuiltComponent]:
    """Every component of a gdk build folder (``greengrass-build``); PublishError if there is none."""
    recipes = folder / "recipes"
    if not recipes.is_dir():
        raise PublishError(
            f"no gdk build in {folder} (no recipes/): run 'gdk component build' (or 'make build') first"
        )
    built = []
    for file in sorted(recipes.iterdir()):
        if file.suffix.lower() not in {".yaml", ".yml", ".json"}:
            continue
        try:
            document = yaml.safe_load(file.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise PublishError(f"{file}: cannot read the recipe ({exc})") from None
        if not isinstance(document, dict) or not _field(document, "ComponentName"):
            raise PublishError(f"{file}: not a component recipe (no ComponentName)")
        name, version = str(_field(document, "ComponentName")), str(_field(document, "ComponentVersion"))
        built.append(BuiltComponent(name, version, file, document, folder / "artifacts" / name / version))
    if not built:
        raise PublishError(f"no recipe in {recipes}: run 'gdk component build' (or 'make build') first")
    return built


class Publisher:
    """Publishes built components to ``target`` with boto3 clients of one session."""

    def __init__(self, session: Any, target: PublishTarget) -> None:
        self.target = target
        self._greengrass = session.client("greengrassv2", region_name=target.region)
        self._s3 = session.client("s3", region_name=target.region)

    def versions(self, name: str) -> list[str]:
        """The component's versions in the account, newest first."""
        arn = component_arn(self.target.region, self.target.account, name)
        found: list[str] = []
        for page in self._greengrass.get_paginator("list_component_versions").paginate(arn=arn):
            found += [v["componentVersion"] for v in page.get("componentVersions", [])]
        return sorted(found, key=Version.parse, reverse=True)

    def plan(self, built: Sequence[BuiltComponent]) -> list[PublishPlan]:
        plans, problems = [], []
        for component in built:
            try:
                plans.append(self._plan_one(component))
            except PublishError as exc:
                problems.append(str(exc))
            except (ClientError, BotoCoreError) as exc:
                problems.append(f"{component.name}: cannot list its versions in the account: {exc}")
        if problems:
            raise PublishError("nothing was published:\n  " + "\n  ".join(problems))
        return plans

    def _plan_one(self, component: BuiltComponent) -> PublishPlan:
        existing = self.versions(component.name)
        if component.version == NEXT_PATCH:
            top = Version.parse(existing[0]) if existing else None
            version = f"{top.major}.{top.minor}.{top.patch + 1}" if top else "1.0.0"
        else:
            version = component.version
            try:
                Version.parse(version)
            except ValueError as exc:
                raise PublishError(f"{component.name}: {exc}") from None
            if version in existing:
                raise PublishError(
                    f"{component.name} {version} already exists in account {self.target.account} "
                    f"({self.target.region}): a version is immutable and devices check its artifacts' "
                    "digests; build a new version (or use NEXT_PATCH)"
                )
        document = copy.deepcopy(dict(component.document))
        uploads: dict[str, tuple[Path, str]] = {}
        for manifest in _field(document, "Manifests") or []:
            for artifact in _field(manifest, "Artifacts") or []:
                uri = str(_field(artifact, "URI") or "")
                if not uri.startswith("s3://BUCKET_NAME/"):
                    continue
                file_name = uri.rsplit("/", 1)[-1]
                local = component.artifacts / file_name
                if not local.is_file():
                    raise PublishError(
                        f"{component.name}: the recipe names {file_name}, which the build lacks ({local})"
                    )
                key = f"{component.name}/{version}/{file_name}"
                uploads[key] = (local, key)
                for item, value in (
                    ("BUCKET_NAME", self.target.bucket),
                    ("COMPONENT_NAME", component.name),
                    ("COMPONENT_VERSION", version),
                ):
                    uri = uri.replace(item, value, 1) if item in uri else uri
                artifact[next(k for k in artifact if str(k).lower() == "uri")] = uri
        for key in list(document):
            if str(key).lower() == "componentversion":
                document[key] = version
        recipe = yaml.safe_dump(document, sort_keys=False).encode()
        if len(recipe) > MAX_RECIPE_BYTES:
            raise PublishError(
                f"{component.name} {version}: the recipe is {len(recipe)} bytes once published; "
                f"Greengrass takes at most {MAX_RECIPE_BYTES}"
            )
        return PublishPlan(component, version, recipe, tuple(uploads.values()))

    def publish(
        self, plans: Sequence[PublishPlan], progress: Callable[[str], None] = print
    ) -> list[dict[str, Any]]:
        created = []
        for plan in plans:
            for local, key in plan.uploads:
                progress(
                    f"{plan.name} {plan.version}: uploading {local.name} to s3://{self.target.bucket}/{key}"
                )
                self._s3.upload_file(str(local), self.target.bucket, key)
            answer = self._greengrass.create_component_version(inlineRecipe=plan.recipe)
            state = answer["status"]["componentState"]
            progress(f"{plan.name} {plan.version}: {state} ({answer['arn']})")
            created.append(dict(answer))
        return created
