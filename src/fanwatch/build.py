"""Build the fanwatch Greengrass components: the artifact zip and the built recipe, as gdk expects.

This is the command behind gdk's ``custom`` build system (``gdk component build`` at the repository
root or in ``components/<name>/``), ``make build`` and ``fanwatch build``. For each component it
writes, under ``greengrass-build/`` in the current directory:

* ``artifacts/<name>/<version>/<zip>``: exactly the files listed in :data:`COMPONENTS` (no tests,
  caches or venvs), zipped reproducibly;
* ``recipes/<name>.yaml``: the recipe from ``recipes/`` with ComponentName, ComponentVersion and
  ComponentPublisher taken from the component's ``gdk-config.json`` and artifact URIs in gdk's
  ``s3://BUCKET_NAME/COMPONENT_NAME/COMPONENT_VERSION/<file>`` form, which ``gdk component publish``
  resolves (``NEXT_PATCH`` stays literal until then). The file name is the name the ``recipe.yaml``
  symlink resolves to, which is the name publish reads back.

The recipe is checked before it is written (structure, least privilege, the venv's Python in Run,
size under the 16,000-byte limit) and, when gdk or ``GDK_SCHEMA`` provides it, against gdk's recipe
schema. gdk runs the command with whatever ``python3`` is on PATH: run as a script, this module
re-runs itself with the project's ``.venv`` Python when there is one, and otherwise needs PyYAML.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":  # run by path: import from src/, not src/fanwatch/ (which would shadow the stdlib)
    sys.path[0] = os.path.dirname(os.path.abspath(sys.path[0]))

import argparse
import json
import re
import shutil
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fanwatch.errors import FanwatchError
from fanwatch.limits import IPC_OPERATIONS, recipe_size_problem

__all__ = [
    "COMPONENTS",
    "BuildError",
    "Component",
    "add_arguments",
    "build",
    "check_recipe",
    "main",
    "run",
]

REPO = Path(__file__).resolve().parents[2]
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same sources give the same zip, byte for byte
_S3 = re.compile(r"s3://BUCKET_NAME/COMPONENT_NAME/COMPONENT_VERSION/([A-Za-z0-9_.-]+)")
_RUN = re.compile(r"^exec \{work:path\}/venv/bin/python ")

_EDGE_COMMON = (
    "src/fanwatch/__init__.py",
    "src/fanwatch/environment.py",
    "src/fanwatch/errors.py",
    "src/fanwatch/limits.py",
    "src/fanwatch/telemetry.py",
    "src/fanwatch/edge/__init__.py",
    "src/fanwatch/edge/clock.py",
    "src/fanwatch/edge/component.py",
    "src/fanwatch/edge/config.py",
    "src/fanwatch/edge/install.py",
    "src/fanwatch/edge/ipc.py",
    "src/fanwatch/edge/logs.py",
    "src/fanwatch/edge/topics.py",
    "src/fanwatch/edge/tach/__init__.py",
    "src/fanwatch/edge/tach/estimator.py",
    "src/fanwatch/edge/tach/gpio.py",
    "src/fanwatch/edge/tach/replay.py",
    "src/fanwatch/edge/tach/simfan.py",
    "src/fanwatch/edge/tach/source.py",
    "src/fanwatch/edge/tach/tachometer.py",
)


class BuildError(FanwatchError):
    """The component cannot be built; the message says what to fix."""


@dataclass(frozen=True)
class Component:
    """One component: its recipe, its gdk project folder and the explicit contents of its zip."""

    name: str
    zip_name: str  # unpacked on the device into {artifacts:decompressedPath}/<zip_name>/
    sources: tuple[str, ...]  # repository paths; files under src/ keep their path below src/

    @property
    def folder(self) -> Path:
        return REPO / "components" / self.name

    @property
    def recipe(self) -> Path:
        return REPO / "recipes" / f"{self.name}.yaml"

    def entries(self) -> list[tuple[Path, str]]:
        """(file, name in the zip) for everything the artifact holds, requirements included."""
        out = [(REPO / s, s.removeprefix("src/")) for s in self.sources]
        out.append((self.folder / "requirements.txt", "requirements.txt"))
        return sorted(out, key=lambda e: e[1])


COMPONENTS: dict[str, Component] = {
    c.name: c
    for c in (
        Component(
            "fanwatch.Tachometer",
            "fanwatch_tachometer",
            (*_EDGE_COMMON, "src/fanwatch/edge/run_tachometer.py"),
        ),
        Component(
            "fanwatch.EdgeFilter",
            "fanwatch_edgefilter",
            (
                *_EDGE_COMMON,
                "src/fanwatch/edge/alerts.py",
                "src/fanwatch/edge/batching.py",
                "src/fanwatch/edge/prefilter.py",
                "src/fanwatch/edge/run_filter.py",
                "src/fanwatch/edge/spikes.py",
            ),
        ),
    )
}


# --- gdk-config.json ----------------------------------------------------------------------------


def gdk_settings(component: Component) -> dict[str, str]:
    """The component's author and version from its ``components/<name>/gdk-config.json``."""
    path = component.folder / "gdk-config.json"
    try:
        config = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise BuildError(f"{path}: cannot read the gdk project configuration ({exc})") from None
    entries = config.get("component")
    if not isinstance(entries, dict) or list(entries) != [component.name]:
        raise BuildError(f"{path}: 'component' must hold exactly {component.name!r} (gdk: one per file)")
    entry = entries[component.name]
    missing = [k for k in ("author", "version", "build", "publish") if k not in entry]
    if missing:
        raise BuildError(f"{path}: component {component.name!r} lacks {', '.join(missing)}")
    return {"author": str(entry["author"]), "version": str(entry["version"])}


# --- the artifact -------------------------------------------------------------------------------


def build_zip(component: Component, into: Path) -> Path:
    """Write the component's zip into ``into`` from exactly :meth:`Component.entries`."""
    target = into / f"{component.zip_name}.zip"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for source, name in component.entries():
            if not source.is_file():
                raise BuildError(f"{component.name}: {source.relative_to(REPO)} is listed but missing")
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)  # the nucleus adds the <zip name>/ folder
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, source.read_bytes())
    return target


# --- the recipe ---------------------------------------------------------------------------------


def _yaml() -> Any:
    try:
        import yaml
    except ImportError:
        raise BuildError(
            "PyYAML is needed to read the recipes: run `make build` (it creates .venv) or pip install PyYAML"
        ) from None
    return yaml


def _key(mapping: Mapping[str, Any], name: str) -> str:
    """The key of ``mapping`` that matches ``name`` case-insensitively (recipes are case-insensitive)."""
    return next((k for k in mapping if k.lower() == name.lower()), name)


def _get(mapping: Mapping[str, Any], name: str, default: Any = None) -> Any:
    return mapping.get(_key(mapping, name), default)


def built_recipe(
    component: Component, settings: Mapping[str, str], artifacts: Sequence[str]
) -> dict[str, Any]:
    """The recipe with gdk's substitutions applied (raises BuildError if an artifact is not built)."""
    recipe = _yaml().safe_load(component.recipe.read_text())
    if not isinstance(recipe, dict):
        raise BuildError(f"{component.recipe}: not a recipe (expected a mapping)")
    recipe[_key(recipe, "ComponentName")] = component.name
    recipe[_key(recipe, "ComponentVersion")] = settings["version"]
    recipe[_key(recipe, "ComponentPublisher")] = settings["author"]
    for i, manifest in enumerate(_get(recipe, "Manifests", [])):
        for artifact in _get(manifest, "Artifacts", []):
            uri = str(_get(artifact, "URI", ""))
            name = uri.rsplit("/", 1)[-1]
            if uri.startswith("s3://"):
                if name not in artifacts:
                    raise BuildError(
                        f"{component.recipe}: Manifests[{i}] names {uri}, which the build does not make"
                    )
                artifact[_key(artifact, "URI")] = f"s3://BUCKET_NAME/COMPONENT_NAME/COMPONENT_VERSION/{name}"
    return recipe


def dump_recipe(recipe: Mapping[str, Any]) -> str:
    """YAML without anchors or aliases (each manifest spelled out), keys in recipe order."""
    yaml = _yaml()

    class _Plain(yaml.SafeDumper):  # type: ignore[name-defined]
        def ignore_aliases(self, data: Any) -> bool:
            return True

    return str(yaml.dump(dict(recipe), Dumper=_Plain, sort_keys=False, width=120))


def check_recipe(recipe: Mapping[str, Any], text: str) -> list[str]:
    """What is wrong with a built recipe (empty: nothing). ``text`` is the file as written."""
    problems = []
    too_large = recipe_size_problem(len(text.encode()))
    if too_large:
        problems.append(too_large)
    if _get(recipe, "RecipeFormatVersion") != "2020-01-25":
        problems.append("RecipeFormatVersion must be '2020-01-25'")
    for key in ("ComponentName", "ComponentVersion", "ComponentPublisher", "ComponentDescription"):
        if not _get(recipe, key):
            problems.append(f"{key} is missing")
    defaults = _get(_get(recipe, "ComponentConfiguration", {}), "DefaultConfiguration", {})
    for service, policies in (_get(defaults, "accessControl") or {}).items():
        allowed = IPC_OPERATIONS.get(service)
        if allowed is None:
            problems.append(f"accessControl names an unexpected IPC service {service!r}")
            continue
        for policy_id, policy in policies.items():
            where = f"accessControl.{service}.{policy_id}"
            operations = set(_get(policy, "operations", []))
            resources = list(_get(policy, "resources", []))
            if not operations or not operations <= allowed or "*" in operations:
                problems.append(f"{where}: operations must be a non-empty subset of {sorted(allowed)}")
            if not resources or any(r.strip() in {"*", "#", "+"} for r in resources):
                problems.append(f"{where}: resources must name topics, not everything")
            if not _get(policy, "policyDescription"):
                problems.append(f"{where}: policyDescription is missing")
    manifests = _get(recipe, "Manifests", [])
    architectures = set()
    for i, manifest in enumerate(manifests):
        platform = _get(manifest, "Platform", {})
        architectures.add(_get(platform, "architecture"))
        lifecycle = _get(manifest, "Lifecycle", {})
        run_step = _get(lifecycle, "Run", {})
        script = run_step if isinstance(run_step, str) else str(_get(run_step, "Script", ""))
        if not _RUN.match(script):
            problems.append(
                f"Manifests[{i}].Lifecycle.Run must exec the venv's Python ({{work:path}}/venv/bin/python)"
            )
        if isinstance(run_step, dict) and str(_get(run_step, "RequiresPrivilege", "false")).lower() == "true":
            problems.append(f"Manifests[{i}].Lifecycle.Run must not require privilege (use the gpio group)")
        install = _get(lifecycle, "Install", {})
        if not isinstance(install, dict) or int(_get(install, "Timeout", 0)) < 600:
            problems.append(
                f"Manifests[{i}].Lifecycle.Install needs a Timeout of at least 600 s to build wheels"
            )
        for artifact in _get(manifest, "Artifacts", []):
            if not _S3.fullmatch(str(_get(artifact, "URI", ""))):
                problems.append(
                    f"Manifests[{i}]: artifact URI {_get(artifact, 'URI')!r} is not in gdk's form"
                )
    if not {"aarch64", "arm", "amd64"} <= architectures:
        problems.append("Manifests must cover linux aarch64, arm and amd64")
    problems += _schema_problems(recipe)
    return problems


def gdk_schema() -> Path | None:
    """gdk's recipe schema: ``GDK_SCHEMA``, or next to the gdk CLI found through ``GDK_CLI`` or PATH."""
    if os.environ.get("GDK_SCHEMA"):
        return Path(os.environ["GDK_SCHEMA"])
    cli = os.environ.get("GDK_CLI") or shutil.which("gdk")
    if not cli:
        return None
    venv = Path(cli).resolve().parent.parent
    return next(iter(sorted(venv.glob("lib/python*/site-packages/gdk/static/recipe_schema.json"))), None)


def _schema_problems(recipe: Mapping[str, Any]) -> list[str]:
    schema_path = gdk_schema()
    if schema_path is None:
        return []
    try:
        import jsonschema
    except ImportError:
        return [f"jsonschema is needed to check the recipe against {schema_path}"]

    def lower(obj: Any) -> Any:  # gdk validates lower-cased keys
        if isinstance(obj, dict):
            return {str(k).lower(): lower(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [lower(v) for v in obj]
        return obj

    schema = json.loads(schema_path.read_text())
    validator = jsonschema.Draft7Validator(schema)
    return [f"gdk recipe schema: {e.message}" for e in validator.iter_errors(lower(dict(recipe)))]


# --- the build ----------------------------------------------------------------------------------


def build(name: str, out: Path, *, version: str | None = None) -> tuple[Path, Path]:
    """Build component ``name`` into ``out`` (a ``greengrass-build`` folder): (zip, recipe)."""
    component = COMPONENTS.get(name)
    if component is None:
        raise BuildError(f"unknown component {name!r} (known: {', '.join(COMPONENTS)})")
    settings = gdk_settings(component)
    if version:
        settings["version"] = version
    artifacts_dir = out / "artifacts" / name / settings["version"]
    shutil.rmtree(out / "artifacts" / name, ignore_errors=True)
    artifacts_dir.mkdir(parents=True)
    archive = build_zip(component, artifacts_dir)
    recipe = built_recipe(component, settings, [archive.name])
    text = dump_recipe(recipe)
    problems = check_recipe(recipe, text)
    if problems:
        raise BuildError(f"{name}: the built recipe is not fit to publish:\n- " + "\n- ".join(problems))
    (out / "recipes").mkdir(parents=True, exist_ok=True)
    recipe_path = out / "recipes" / component.recipe.name
    recipe_path.write_text(text)
    return archive, recipe_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``fanwatch build`` and of gdk's custom build: which components (or ``--all``), where
    to, and a version to stamp instead of gdk-config.json's (for a local core)."""
    parser.add_argument("components", nargs="*", metavar="COMPONENT", help=f"one of {', '.join(COMPONENTS)}")
    parser.add_argument("--all", action="store_true", help="build every component")
    parser.add_argument(
        "--out", type=Path, default=Path("greengrass-build"), help="default: ./greengrass-build"
    )
    parser.add_argument("--version", help="override the version from gdk-config.json (e.g. for a local core)")


def run(args: argparse.Namespace) -> int:
    """``fanwatch build``: build each named component and say where its zip and recipe went; 2 when none is
    named, 1 when one cannot be built (the message says why)."""
    names = list(COMPONENTS) if args.all else args.components
    if not names:
        print("fanwatch build: name a component or use --all", file=sys.stderr)
        return 2
    try:
        for name in names:
            archive, recipe = build(name, args.out, version=args.version)
            sizes = f"{archive.stat().st_size} and {recipe.stat().st_size} bytes"
            print(f"built {name}: {archive} and {recipe} ({sizes})")
    except BuildError as exc:
        print(f"fanwatch build: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The build as a command of its own: what gdk's ``custom_build_command`` runs
    (``python3 src/fanwatch/build.py --all``)."""
    parser = argparse.ArgumentParser(prog="fanwatch.build", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


def _project_python() -> Path | None:
    """The project's .venv Python when this process is not already running it."""
    candidate = REPO / ".venv" / "bin" / "python"
    if candidate.exists() and Path(sys.prefix).resolve() != (REPO / ".venv").resolve():
        return candidate
    return None


if __name__ == "__main__":
    python = _project_python()
    if python is not None:
        os.execv(python, [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])
    sys.exit(main())
