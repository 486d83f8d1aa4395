"""Greengrass component recipes: loading, key case, and the manifest picked for this platform.

Recipes are YAML or JSON (JSON is read as YAML, as the nucleus does). Their keys match
case-insensitively, as GDK validates them and the nucleus reads them: ``componentName`` and
``ComponentName`` are the same key. The keys *inside* ``DefaultConfiguration`` and ``Setenv`` are data,
not recipe structure, and keep their spelling.

A recipe holds several manifests; the nucleus takes the first whose ``Platform`` the device satisfies
(``PlatformHelper.findBestMatch``): ``*``, ``all``/``any`` (os and architecture only) and a missing
value match anything, ``/regex/`` must match the whole label, anything else must equal it.
"""

from __future__ import annotations

import copy
import os
import platform as platform_module
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

import yaml

from fanwatch.core.config import ConfigurationTooLarge, check_bounds
from fanwatch.core.deployment.versions import Version
from fanwatch.errors import FanwatchError
from fanwatch.limits import MAX_RECIPE_BYTES, recipe_size_problem

__all__ = [
    "LIFECYCLE_STEPS",
    "NEXT_PATCH",
    "Artifact",
    "Dependency",
    "DependencyType",
    "Lifecycle",
    "Manifest",
    "Permission",
    "Recipe",
    "RecipeError",
    "Step",
    "Unarchive",
    "component_identity",
    "current_platform",
    "load_recipe",
    "parse_recipe",
    "read_recipe_document",
    "recipe_field",
    "with_version",
]

#: Lifecycle steps the local core runs, in the nucleus' lower-case spelling.
LIFECYCLE_STEPS: Final = ("bootstrap", "install", "startup", "run", "shutdown", "recover")
#: The ComponentVersion that gdk leaves for ``gdk component publish`` to number.
NEXT_PATCH: Final = "NEXT_PATCH"

_ARM_DETAILS: Final = frozenset({"armv6l", "armv7l", "armv8l", "armv6b", "armv7b", "armv8b"})
_SIMPLE_LABEL: Final = re.compile(r"^[A-Za-z0-9]")
_COMPONENT_NAME: Final = re.compile(r"[A-Za-z0-9._-]{1,128}")  # and not "." or ".."


class RecipeError(FanwatchError, ValueError):
    """A recipe that the nucleus would refuse; the message names the file and the field."""


# -- canonical key spelling ----------------------------------------------------------------------

_RECIPE_KEYS: Final = {
    k.lower(): k
    for k in (
        "RecipeFormatVersion",
        "ComponentName",
        "ComponentVersion",
        "ComponentDescription",
        "ComponentPublisher",
        "ComponentSource",
        "ComponentType",
        "ComponentConfiguration",
        "ComponentDependencies",
        "Manifests",
        "Lifecycle",
    )
}
_MANIFEST_KEYS: Final = {k.lower(): k for k in ("Platform", "Name", "Lifecycle", "Artifacts", "Selections")}
_ARTIFACT_KEYS: Final = {k.lower(): k for k in ("URI", "Unarchive", "Permission", "Digest", "Algorithm")}
_DEPENDENCY_KEYS: Final = {k.lower(): k for k in ("VersionRequirement", "DependencyType")}


def _canonical(data: object, keys: Mapping[str, str], where: str) -> dict[str, Any]:
    """Spell the keys of a recipe section the canonical way; unknown keys keep theirs (ignored later)."""
    if not isinstance(data, Mapping):
        raise RecipeError(f"{where}: expected a mapping, got {type(data).__name__}")
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = keys.get(str(key).lower(), str(key))
        if name in out:
            raise RecipeError(f"{where}: key {key!r} appears twice (keys are case-insensitive)")
        out[name] = value
    return out


def _lower_keys(data: Mapping[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).lower()
        if name in out:
            raise RecipeError(f"{where}: key {key!r} appears twice (keys are case-insensitive)")
        out[name] = value
    return out


# -- the model -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """One lifecycle step, after interpolation."""

    script: str
    timeout: float | None = None
    skipif: str | None = None
    setenv: Mapping[str, str] = field(default_factory=dict)
    requires_privilege: bool = False


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """The steps of the selected manifest, keyed by their lower-case name, plus the shared Setenv."""

    steps: Mapping[str, Step] = field(default_factory=dict)
    setenv: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str = "Lifecycle") -> Lifecycle:
        """Build from a (lower-cased, interpolated) lifecycle mapping; unknown steps are ignored,
        as the nucleus ignores them."""
        steps: dict[str, Step] = {}
        for name in LIFECYCLE_STEPS:
            raw = data.get(name)
            if raw is None:
                continue
            steps[name] = _parse_step(raw, f"{where}.{name}")
        return cls(steps=steps, setenv=_parse_env(data.get("setenv"), f"{where}.Setenv"))


def _parse_env(raw: object, where: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise RecipeError(f"{where}: expected a mapping of variable names to values")
    return {str(k): _scalar_text(v) for k, v in raw.items()}


def _scalar_text(value: object) -> str:
    """Setenv values as the nucleus' ``Coerce.toString`` writes them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _parse_step(raw: object, where: str) -> Step:
    if isinstance(raw, str):
        return Step(script=raw)
    if not isinstance(raw, Mapping):
        raise RecipeError(f"{where}: expected a script or a mapping with Script, got {type(raw).__name__}")
    fields = _lower_keys(raw, where)
    script = fields.get("script")
    if not isinstance(script, str) or not script.strip():
        raise RecipeError(f"{where}.Script: missing (a step given as a mapping needs a Script)")
    timeout = fields.get("timeout")
    if timeout is not None:
        try:
            timeout = float(timeout)
        except (TypeError, ValueError):
            raise RecipeError(f"{where}.Timeout: expected seconds, got {timeout!r}") from None
        if timeout <= 0:
            raise RecipeError(f"{where}.Timeout: must be positive, got {timeout:g}")
    skipif = fields.get("skipif")
    privilege = fields.get("requiresprivilege", False)
    return Step(
        script=script,
        timeout=timeout,
        skipif=None if skipif is None else str(skipif),
        setenv=_parse_env(fields.get("setenv"), f"{where}.Setenv"),
        requires_privilege=privilege is True or str(privilege).lower() == "true",
    )


class Unarchive(StrEnum):
    """What the nucleus does with an artifact after download."""

    NONE = "NONE"
    ZIP = "ZIP"  # unpack into {artifacts:decompressedPath}/<zip name without .zip>/


class Permission(StrEnum):
    """Who may read (or execute) an artifact's files: nobody but the owner, the component's user, anyone."""

    NONE = "NONE"
    OWNER = "OWNER"
    ALL = "ALL"


class DependencyType(StrEnum):
    """How a dependency binds the component that declares it (the recipe's ``DependencyType``, HARD when
    not given)."""

    HARD = "HARD"  # the depender restarts when the dependency stops, and waits for it to run
    SOFT = "SOFT"  # only the start order


@dataclass(frozen=True, slots=True)
class Artifact:
    """A file a manifest installs, and how: unpacked or not, who may read and run it, its published digest."""

    uri: str
    unarchive: Unarchive = Unarchive.NONE
    read: Permission = Permission.OWNER
    execute: Permission = Permission.NONE
    digest: str | None = None  # base64 of the file's hash, set by ``gdk component publish``
    algorithm: str = "SHA-256"

    @property
    def file_name(self) -> str:
        """The file's name in the artifact folder (the last segment of its URI)."""
        return self.uri.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class Dependency:
    """A recipe's need of another component: the versions that satisfy it, and whether it is HARD or SOFT."""

    version_requirement: str
    dependency_type: DependencyType = DependencyType.HARD


@dataclass(frozen=True, slots=True)
class Manifest:
    """The platform-specific part of a recipe: the platforms it serves, its lifecycle steps and its
    artifacts."""

    platform: Mapping[str, Any]
    lifecycle: Mapping[str, Any]  # lower-case step keys, not yet interpolated
    artifacts: tuple[Artifact, ...] = ()
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Recipe:
    """A component version as its recipe describes it: the parts of a Greengrass recipe the local core
    uses."""

    name: str
    version: str
    manifests: tuple[Manifest, ...]
    default_configuration: Mapping[str, Any] = field(default_factory=dict)
    dependencies: Mapping[str, Dependency] = field(default_factory=dict)
    publisher: str = ""
    description: str = ""
    component_type: str = "aws.greengrass.generic"
    source: str = ""  # the file it came from, for messages

    def manifest_for(self, platform: Mapping[str, str]) -> Manifest:
        """The first manifest whose Platform this device satisfies (RecipeError if none does)."""
        for manifest in self.manifests:
            if _platform_matches(manifest.platform, platform):
                return manifest
        wanted = ", ".join(f"{k}={v}" for k, v in sorted(platform.items()))
        raise RecipeError(f"{self.name} {self.version}: no manifest matches this platform ({wanted})")

    def defaults(self) -> dict[str, Any]:
        """A private copy of DefaultConfiguration."""
        return copy.deepcopy(dict(self.default_configuration))


# -- platform ------------------------------------------------------------------------------------


def current_platform(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """This machine's platform labels as the nucleus detects them, with ``overrides`` applied
    (the nucleus' ``platformOverride``: how to test a Raspberry Pi manifest on a laptop)."""
    system = platform_module.system().lower()
    if system.startswith("win"):
        os_name = "windows"
    elif system == "darwin":
        os_name = "darwin"
    else:
        os_name = "linux" if os.path.exists("/proc") else "unknown"
    machine = platform_module.machine().lower()
    if machine in {"x86_64", "amd64"}:
        arch = "amd64"
    elif machine in {"i386", "i686", "x86"}:
        arch = "x86"
    elif machine in {"aarch64", "arm64"}:
        arch = "aarch64"
    elif "arm" in machine:
        arch = "arm"
    else:
        arch = "unknown"
    labels = {"os": os_name, "architecture": arch}
    if arch in {"arm", "aarch64"} and machine in _ARM_DETAILS:
        labels["architecture.detail"] = machine
    labels.update(overrides or {})
    return labels


def _platform_matches(requirement: Mapping[str, Any], platform: Mapping[str, str]) -> bool:
    return all(_label_matches(str(k), platform.get(str(k)), v) for k, v in requirement.items())


def _label_matches(name: str, label: str | None, template: object) -> bool:
    if template is None or template == "*":
        return True
    if not label:
        return False
    text = str(template)
    if len(text) >= 2 and text.startswith("/") and text.endswith("/"):
        return re.fullmatch(text[1:-1], label) is not None
    if name in {"os", "architecture"} and text in {"all", "any"}:
        return True
    if not _SIMPLE_LABEL.match(text):
        return False  # reserved for future syntax, as the nucleus treats it
    return text == label


# -- loading -------------------------------------------------------------------------------------


#: libyaml's loader where PyYAML has it (ten times faster), else the pure-Python one: both safe.
_SAFE_LOADER: Final[type[Any]] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _refuse_aliases(raw: bytes, file: Path) -> None:
    """No aliases: a 668-byte "billion laughs" of nested aliases once expanded to gigabytes when the
    core hashed and saved the recipe. Anchors alone are harmless; no recipe needs an alias. Checked
    on the event stream, before anything is built."""
    for event in yaml.parse(raw, Loader=_SAFE_LOADER):
        if isinstance(event, yaml.AliasEvent):
            raise RecipeError(f"{file}: aliases (*{event.anchor}) are not allowed in a recipe")


def read_recipe_document(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A recipe file (YAML or JSON) as a plain mapping, bounded before anything else reads it: size
    (before parsing), no aliases, and depth (:func:`~fanwatch.core.config.check_bounds`)."""
    file = Path(path)
    with file.open("rb") as handle:  # never more than the limit, however large the file
        raw = handle.read(MAX_RECIPE_BYTES + 1)
    too_large = recipe_size_problem(len(raw))
    if too_large:
        raise RecipeError(f"{file}: {too_large}")
    try:
        _refuse_aliases(raw, file)  # a RecipeError of its own
        data = yaml.load(raw, Loader=_SAFE_LOADER)  # a safe loader; aliases were refused above
    except yaml.YAMLError as exc:
        raise RecipeError(f"{file}: not valid YAML or JSON ({exc})") from None
    except RecursionError:
        raise RecipeError(f"{file}: nested too deeply") from None
    except RecipeError:
        raise
    except ValueError as exc:  # an integer past Python's int-to-str limit
        raise RecipeError(f"{file}: not a readable recipe ({str(exc)[:80]})") from None
    if not isinstance(data, Mapping):
        raise RecipeError(f"{file}: expected a mapping at the top, got {type(data).__name__}")
    try:
        check_bounds(data, where=str(file))
    except ConfigurationTooLarge as exc:
        raise RecipeError(str(exc)) from None
    return dict(data)


def _shown(value: object) -> str:
    """A value for an error message: a string's first 60 characters, else only its type."""
    if isinstance(value, str):
        return repr(value[:60]) + ("…" if len(value) > 60 else "")
    return type(value).__name__


def component_identity(document: Mapping[str, Any], source: str) -> tuple[str, str]:
    """The recipe's component name and version as written (a semantic version or ``NEXT_PATCH``),
    checked before either becomes part of a path: a version like ``/`` once made the core hash the
    whole file system, a name like ``..`` ran in the core's root."""
    name = recipe_field(document, "ComponentName")
    if not isinstance(name, str) or not _COMPONENT_NAME.fullmatch(name) or not name.strip("."):
        raise RecipeError(f"{source}: ComponentName: expected a component name, got {_shown(name)}")
    version = recipe_field(document, "ComponentVersion")
    if version != NEXT_PATCH:
        try:
            Version.parse(version if isinstance(version, str) else str(type(version)))
        except ValueError:
            raise RecipeError(
                f"{source}: ComponentVersion: {_shown(version)} is not a semantic version"
            ) from None
    return name, str(version)


def load_recipe(path: str | os.PathLike[str]) -> Recipe:
    """Read and validate a recipe file."""
    return parse_recipe(read_recipe_document(path), source=str(path))


def recipe_field(document: Mapping[str, Any], name: str) -> Any:
    """A top-level recipe field, whatever the case of its key."""
    return next((v for k, v in document.items() if str(k).lower() == name.lower()), None)


def with_version(document: Mapping[str, Any], version: str) -> dict[str, Any]:
    """The recipe document with ComponentVersion set (what ``gdk component publish`` does to NEXT_PATCH)."""
    out = {k: v for k, v in document.items() if str(k).lower() != "componentversion"}
    out["ComponentVersion"] = version
    return out


def parse_recipe(data: object, *, source: str = "recipe") -> Recipe:
    """Validate a recipe document and keep what the local core needs."""
    top = _canonical(data, _RECIPE_KEYS, source)
    name, version = component_identity(top, source)
    if version == NEXT_PATCH:
        raise RecipeError(f"{source}: ComponentVersion: {version!r} is not a semantic version")
    where = f"{source} ({name} {version})"
    configuration = top.get("ComponentConfiguration") or {}
    if not isinstance(configuration, Mapping):
        raise RecipeError(f"{where}: ComponentConfiguration: expected a mapping")
    defaults: Any = next(
        (v for k, v in configuration.items() if str(k).lower() == "defaultconfiguration"), None
    )
    defaults = {} if defaults is None else defaults
    if not isinstance(defaults, Mapping):
        raise RecipeError(f"{where}: DefaultConfiguration: expected a mapping")
    manifests_raw = top.get("Manifests")
    if not isinstance(manifests_raw, list) or not manifests_raw:
        raise RecipeError(f"{where}: Manifests: a recipe needs at least one manifest")
    shared_lifecycle = top.get("Lifecycle") or {}
    if not isinstance(shared_lifecycle, Mapping):
        raise RecipeError(f"{where}: Lifecycle: expected a mapping")
    selectors = {"all"}
    for entry in manifests_raw:
        if isinstance(entry, Mapping):
            selections = _canonical(entry, _MANIFEST_KEYS, where).get("Selections") or []
            selectors.update(str(s) for s in selections)
    manifests = tuple(
        _parse_manifest(entry, f"{where}: Manifests[{i}]", shared_lifecycle, selectors)
        for i, entry in enumerate(manifests_raw)
    )
    return Recipe(
        name=name,
        version=version,
        manifests=manifests,
        default_configuration=copy.deepcopy(dict(defaults)),
        dependencies=_parse_dependencies(top.get("ComponentDependencies"), where),
        publisher=str(top.get("ComponentPublisher") or ""),
        description=str(top.get("ComponentDescription") or ""),
        component_type=str(top.get("ComponentType") or "aws.greengrass.generic"),
        source=source,
    )


def _parse_dependencies(raw: object, where: str) -> dict[str, Dependency]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise RecipeError(f"{where}: ComponentDependencies: expected a mapping of component names")
    out: dict[str, Dependency] = {}
    for dep_name, props in raw.items():
        here = f"{where}: ComponentDependencies.{dep_name}"
        fields = _canonical(props or {}, _DEPENDENCY_KEYS, here)
        requirement = fields.get("VersionRequirement")
        if requirement is None:
            raise RecipeError(f"{here}.VersionRequirement: missing")
        kind = str(fields.get("DependencyType") or "HARD").upper()
        if kind not in DependencyType.__members__:
            raise RecipeError(f"{here}.DependencyType: expected HARD or SOFT, got {kind!r}")
        out[str(dep_name)] = Dependency(str(requirement), DependencyType(kind))
    return out


def _parse_manifest(
    raw: object, where: str, shared_lifecycle: Mapping[str, Any], selectors: set[str]
) -> Manifest:
    fields = _canonical(raw, _MANIFEST_KEYS, where)
    platform = fields.get("Platform") or {}
    if not isinstance(platform, Mapping):
        raise RecipeError(f"{where}.Platform: expected a mapping")
    lifecycle = fields.get("Lifecycle")
    if lifecycle is None or lifecycle == {}:
        # the older form: a recipe-level Lifecycle filtered by this manifest's Selections
        chosen = fields.get("Selections") or []
        lifecycle = _select(shared_lifecycle, selectors, [str(s) for s in chosen]) or {}
    if not isinstance(lifecycle, Mapping):
        raise RecipeError(f"{where}.Lifecycle: expected a mapping")
    artifacts_raw = fields.get("Artifacts") or []
    if not isinstance(artifacts_raw, list):
        raise RecipeError(f"{where}.Artifacts: expected a list")
    return Manifest(
        platform={str(k): v for k, v in platform.items()},
        lifecycle=_lower_keys(lifecycle, f"{where}.Lifecycle"),
        artifacts=tuple(_parse_artifact(a, f"{where}.Artifacts[{i}]") for i, a in enumerate(artifacts_raw)),
        name=None if fields.get("Name") is None else str(fields["Name"]),
    )


def _select(section: object, keywords: set[str], selections: Sequence[str]) -> Any:
    """The nucleus' ``filterPlatform``: at a level keyed by selectors keep the first selected one
    (or ``all``); recurse into plain mappings."""
    if not isinstance(section, Mapping):
        return section
    if any(str(k) in keywords for k in section):
        for key in [*selections, "all"]:
            if section.get(key) is not None:
                return _select(section[key], keywords, selections)
        return None
    out = {}
    for key, value in section.items():
        chosen = _select(value, keywords, selections)
        if chosen is not None:
            out[str(key)] = chosen
    return out


def _parse_artifact(raw: object, where: str) -> Artifact:
    fields = _canonical(raw, _ARTIFACT_KEYS, where)
    uri = fields.get("URI")
    if not isinstance(uri, str) or not uri.strip():
        raise RecipeError(f"{where}.URI: missing")
    unarchive = str(fields.get("Unarchive") or "NONE").upper()
    if unarchive not in Unarchive.__members__:
        raise RecipeError(f"{where}.Unarchive: expected NONE or ZIP, got {unarchive!r}")
    permission = fields.get("Permission") or {}
    if not isinstance(permission, Mapping):
        raise RecipeError(f"{where}.Permission: expected a mapping with Read and Execute")
    perms = _lower_keys(permission, f"{where}.Permission")
    read = str(perms.get("read") or "OWNER").upper()
    execute = str(perms.get("execute") or "NONE").upper()
    for label, value in (("Read", read), ("Execute", execute)):
        if value not in Permission.__members__:
            raise RecipeError(f"{where}.Permission.{label}: expected NONE, OWNER or ALL, got {value!r}")
    digest = fields.get("Digest")
    return Artifact(
        uri=uri,
        unarchive=Unarchive(unarchive),
        read=Permission(read),
        execute=Permission(execute),
        digest=None if digest is None else str(digest),
        algorithm=str(fields.get("Algorithm") or "SHA-256").upper(),
    )
