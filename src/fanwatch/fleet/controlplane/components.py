"""Component versions as the Greengrass service keeps them: recipes checked, artifacts pinned by digest.

``CreateComponentVersion`` takes a recipe, refuses what the service refuses (more than 16 kB, not
YAML/JSON, no name or version, a version that exists: ``ConflictException``), and checks every
``s3://`` artifact in the S3 stand-in. An artifact that cannot be read is refused with the service's
own words ("Specified artifact resource cannot be accessed"). Each artifact's SHA-256 is computed
there and written into the stored recipe (``Digest``, ``Algorithm``), as the service does: a device
checks what it downloads against it, so an artifact overwritten after its version was created (what
``gdk component publish`` does when the version already exists) fails on every device.

Public components (``aws.greengrass.Nucleus``) are listed under the ``aws`` account, as in AWS.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import yaml

from fanwatch.core.deployment.recipe import RecipeError, parse_recipe
from fanwatch.core.deployment.versions import Version
from fanwatch.core.runtime.nucleus import NUCLEUS_VERSION
from fanwatch.fleet.arns import component_arn, component_version_arn
from fanwatch.fleet.controlplane.restjson import ApiError
from fanwatch.limits import MAX_RECIPE_BYTES, NUCLEUS_COMPONENT

__all__ = ["PUBLIC_ACCOUNT", "ArtifactReader", "ComponentRegistry", "ComponentVersion"]

PUBLIC_ACCOUNT: Final = "aws"
#: AWS-provided components the local control plane offers, as (name, version, type).
PUBLIC_COMPONENTS: Final = ((NUCLEUS_COMPONENT, NUCLEUS_VERSION, "aws.greengrass.nucleus"),)
_CANNOT_ACCESS: Final = "Specified artifact resource cannot be accessed"


class ArtifactReader(Protocol):
    """Reads an object of the S3 stand-in; None when it does not exist or cannot be read."""

    def read(self, bucket: str, key: str) -> bytes | None: ...


@dataclass(slots=True)
class ComponentVersion:
    """A component version as the control plane stores it for one account and region, as GetComponent
    returns it."""

    name: str
    version: str
    account: str
    region: str
    recipe: dict[str, Any]  # as stored: artifacts carry Digest and Algorithm
    created: dt.datetime
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def arn(self) -> str:
        return component_version_arn(self.region, self.account, self.name, self.version)

    @property
    def component_arn(self) -> str:
        return component_arn(self.region, self.account, self.name)

    def field(self, name: str) -> Any:
        return next((v for k, v in self.recipe.items() if str(k).lower() == name.lower()), None)

    @property
    def platforms(self) -> list[dict[str, Any]]:
        out = []
        for manifest in self.field("Manifests") or []:
            platform = next((v for k, v in manifest.items() if str(k).lower() == "platform"), None) or {}
            attributes = {str(k): str(v) for k, v in platform.items() if str(v)}
            entry: dict[str, Any] = {"attributes": attributes} if attributes else {}
            if "os" in attributes:
                entry["name"] = attributes["os"]
            out.append(entry)
        return out

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "arn": self.arn,
            "componentName": self.name,
            "componentVersion": self.version,
            "creationTimestamp": self.created,
            "publisher": str(self.field("ComponentPublisher") or ""),
            "description": str(self.field("ComponentDescription") or ""),
            "status": {"componentState": "DEPLOYABLE", "message": "NONE", "errors": {}},
            "platforms": self.platforms,
        }
        if self.tags:
            out["tags"] = dict(self.tags)
        return out

    def recipe_bytes(self, output_format: str) -> bytes:
        if output_format == "YAML":
            return yaml.safe_dump(self.recipe, sort_keys=False).encode()
        return json.dumps(self.recipe, indent=2).encode()


class ComponentRegistry:
    """Every component version of one account and region, and the public ones."""

    def __init__(self, *, region: str, account: str, artifacts: ArtifactReader, clock: Any = None) -> None:
        self.region = region
        self.account = account
        self._artifacts = artifacts
        self._now = clock or (lambda: dt.datetime.now(dt.UTC))
        self._lock = threading.Lock()
        self._versions: dict[tuple[str, str, str], ComponentVersion] = {}  # (account, name, version)
        for name, version, kind in PUBLIC_COMPONENTS:
            recipe = {
                "RecipeFormatVersion": "2020-01-25",
                "ComponentName": name,
                "ComponentVersion": version,
                "ComponentType": kind,
                "ComponentDescription": "The Greengrass nucleus (the local core stands in for it)",
                "ComponentPublisher": "AWS",
                "Manifests": [{"Platform": {"os": "linux"}}],
            }
            self._versions[(PUBLIC_ACCOUNT, name, version)] = ComponentVersion(
                name, version, PUBLIC_ACCOUNT, region, recipe, self._now()
            )

    # -- creating -----------------------------------------------------------------------------------

    def create(self, inline_recipe: bytes, tags: Mapping[str, str] | None = None) -> ComponentVersion:
        if len(inline_recipe) > MAX_RECIPE_BYTES:
            raise ApiError(
                "ValidationException",
                f"Invalid Input: the recipe is {len(inline_recipe)} bytes; "
                f"a recipe can be at most {MAX_RECIPE_BYTES} bytes",
                reason="FIELD_VALIDATION_FAILED",
            )
        document = _read_recipe(inline_recipe)
        try:
            recipe = parse_recipe(copy.deepcopy(document), source="inlineRecipe")
        except RecipeError as exc:
            raise ApiError("ValidationException", f"Invalid Input: {exc}", reason="OTHER") from None
        try:
            Version.parse(recipe.version)
        except ValueError as exc:
            raise ApiError("ValidationException", f"Invalid Input: ComponentVersion: {exc}") from None
        key = (self.account, recipe.name, recipe.version)
        with self._lock:
            if key in self._versions:
                raise ApiError(
                    "ConflictException",
                    f"Component {recipe.name} version {recipe.version} already exists in this account",
                    resourceId=self._versions[key].arn,
                    resourceType="COMPONENT_VERSION",
                )
        self._pin_artifacts(document)
        stored = ComponentVersion(
            recipe.name, recipe.version, self.account, self.region, document, self._now(), dict(tags or {})
        )
        with self._lock:
            if key in self._versions:  # created meanwhile by a concurrent request
                raise ApiError(
                    "ConflictException",
                    f"Component {recipe.name} version {recipe.version} already exists in this account",
                    resourceId=self._versions[key].arn,
                    resourceType="COMPONENT_VERSION",
                )
            self._versions[key] = stored
        return stored

    def _pin_artifacts(self, document: dict[str, Any]) -> None:
        """Check every s3:// artifact and write its digest into the recipe (in place)."""
        errors: dict[str, str] = {}
        seen: set[int] = set()
        for manifest in _field(document, "Manifests") or []:
            for artifact in _field(manifest, "Artifacts") or []:
                if id(artifact) in seen or not isinstance(artifact, dict):
                    continue  # YAML anchors share one artifact between manifests
                seen.add(id(artifact))
                uri = str(_field(artifact, "URI") or "")
                if not uri.startswith("s3://"):
                    continue
                bucket, _, key = uri[len("s3://") :].partition("/")
                data = self._artifacts.read(bucket, key) if bucket and key else None
                if data is None:
                    errors[uri] = _CANNOT_ACCESS
                    continue
                digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
                given = _field(artifact, "Digest")
                algorithm = str(_field(artifact, "Algorithm") or "SHA-256")
                if given is not None and (algorithm != "SHA-256" or given != digest):
                    errors[uri] = "Digest in the recipe does not match the artifact"
                    continue
                _set(artifact, "Digest", digest)
                _set(artifact, "Algorithm", "SHA-256")
        if errors:
            listed = ", ".join(f"{uri} = {why}" for uri, why in errors.items())
            raise ApiError(
                "ValidationException",
                f"Invalid Input: Encountered following errors in Artifacts: {{{listed}}}",
                reason="OTHER",
            )

    # -- reading ------------------------------------------------------------------------------------

    def get(self, account: str, name: str, version: str) -> ComponentVersion:
        with self._lock:
            found = self._versions.get((account, name, version))
        if found is None:
            arn = component_version_arn(self.region, account, name, version)
            raise ApiError(
                "ResourceNotFoundException",
                f"Component {name} version {version} does not exist",
                resourceId=arn,
                resourceType="COMPONENT_VERSION",
            )
        return found

    def versions(self, account: str, name: str) -> list[ComponentVersion]:
        """Newest first, as ListComponentVersions answers (gdk takes the first as the highest)."""
        with self._lock:
            found = [c for (a, n, _), c in self._versions.items() if a == account and n == name]
        return sorted(found, key=lambda c: Version.parse(c.version), reverse=True)

    def latest_by_name(self, account: str) -> Iterator[ComponentVersion]:
        with self._lock:
            names = sorted({n for (a, n, _) in self._versions if a == account})
        for name in names:
            yield self.versions(account, name)[0]


def _read_recipe(data: bytes) -> dict[str, Any]:
    try:
        document = yaml.safe_load(data.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ApiError(
            "ValidationException",
            f"Invalid Input: the recipe is not YAML or JSON: {exc}",
            reason="CANNOT_PARSE",
        ) from None
    if not isinstance(document, dict):
        raise ApiError(
            "ValidationException", "Invalid Input: a recipe is a YAML or JSON object", reason="CANNOT_PARSE"
        )
    return document


def _field(data: object, name: str) -> Any:
    if not isinstance(data, Mapping):
        return None
    return next((v for k, v in data.items() if str(k).lower() == name.lower()), None)


def _set(data: dict[str, Any], name: str, value: Any) -> None:
    key = next((k for k in data if str(k).lower() == name.lower()), name)
    data[key] = value
