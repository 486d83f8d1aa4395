"""The component build: what gdk's custom build runs, checked without gdk (it always runs here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from fanwatch import build
from fanwatch.limits import MAX_RECIPE_BYTES

REPO = Path(__file__).resolve().parents[3]
NAMES = ["fanwatch.Tachometer", "fanwatch.EdgeFilter"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gg") / "greengrass-build"
    for name in NAMES:
        build.build(name, out)
    return out


def recipe(out: Path, name: str) -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((out / "recipes" / f"{name}.yaml").read_text())


def test_the_layout_is_what_gdk_publish_reads(built: Path) -> None:
    files = sorted(str(p.relative_to(built)) for p in built.rglob("*") if p.is_file())
    assert files == [
        "artifacts/fanwatch.EdgeFilter/NEXT_PATCH/fanwatch_edgefilter.zip",
        "artifacts/fanwatch.Tachometer/NEXT_PATCH/fanwatch_tachometer.zip",
        "recipes/fanwatch.EdgeFilter.yaml",
        "recipes/fanwatch.Tachometer.yaml",
    ]


@pytest.mark.parametrize("name", NAMES)
def test_the_zip_holds_exactly_the_listed_files_and_nothing_else(built: Path, name: str) -> None:
    component = build.COMPONENTS[name]
    path = built / "artifacts" / name / "NEXT_PATCH" / f"{component.zip_name}.zip"
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    assert names == [arc for _, arc in component.entries()]
    assert "requirements.txt" in names and "fanwatch/edge/install.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or "test" in n or ".venv" in n]
    assert not [n for n in names if n.startswith(component.zip_name)]  # the nucleus adds that folder


def test_the_tachometer_zip_has_no_filter_code_and_the_filter_zip_no_runner_of_the_tachometer() -> None:
    tach = {arc for _, arc in build.COMPONENTS["fanwatch.Tachometer"].entries()}
    filt = {arc for _, arc in build.COMPONENTS["fanwatch.EdgeFilter"].entries()}
    assert "fanwatch/edge/prefilter.py" not in tach and "fanwatch/edge/run_tachometer.py" not in filt
    assert not any(name.startswith("fanwatch/demo") for name in tach | filt)
    assert "fanwatch/edge/inprocess.py" not in tach | filt


def test_builds_are_reproducible_byte_for_byte(tmp_path: Path, built: Path) -> None:
    zip_path, _ = build.build("fanwatch.Tachometer", tmp_path)
    assert (
        zip_path.read_bytes()
        == (built / "artifacts/fanwatch.Tachometer/NEXT_PATCH" / zip_path.name).read_bytes()
    )


@pytest.mark.parametrize("name", NAMES)
def test_the_built_recipe_is_fit_to_publish(built: Path, name: str) -> None:
    text = (built / "recipes" / f"{name}.yaml").read_text()
    data = yaml.safe_load(text)
    assert build.check_recipe(data, text) == []
    assert len(text.encode()) <= MAX_RECIPE_BYTES
    assert "&" not in text and "*lifecycle" not in text  # no YAML anchors: every manifest spelled out
    assert (data["ComponentName"], data["ComponentVersion"], data["ComponentPublisher"]) == (
        name,
        "NEXT_PATCH",
        "fanwatch",
    )
    zip_name = build.COMPONENTS[name].zip_name
    for manifest in data["Manifests"]:
        assert manifest["Artifacts"] == [
            {
                "URI": f"s3://BUCKET_NAME/COMPONENT_NAME/COMPONENT_VERSION/{zip_name}.zip",
                "Unarchive": "ZIP",
                "Permission": {"Read": "OWNER"},
            }
        ]
        run = manifest["Lifecycle"]["Run"]
        assert run["Script"].startswith("exec {work:path}/venv/bin/python -u -m fanwatch.edge.run_")
        assert run["Setenv"]["PYTHONPATH"] == f"{{artifacts:decompressedPath}}/{zip_name}"
        assert "RequiresPrivilege" not in run
        install = manifest["Lifecycle"]["Install"]
        assert install["Script"].startswith(
            f"python3 -u {{artifacts:decompressedPath}}/{zip_name}/fanwatch/edge/install.py"
        )
        assert install["Timeout"] >= 1800
    assert {m["Platform"]["architecture"] for m in data["Manifests"]} == {"aarch64", "arm", "amd64"}


def policies(data: dict) -> dict[str, set[str]]:  # type: ignore[type-arg]
    """'<service> <operation>' -> the resources every policy of the recipe allows it on."""
    acl = data["ComponentConfiguration"]["DefaultConfiguration"]["accessControl"]
    out: dict[str, set[str]] = {}
    for service, entries in acl.items():
        for policy in entries.values():
            for op in policy["operations"]:
                out.setdefault(f"{service} {op}", set()).update(policy["resources"])
    return out


def test_least_privilege_each_component_gets_only_its_operations_and_topics(built: Path) -> None:
    assert policies(recipe(built, "fanwatch.Tachometer")) == {
        "aws.greengrass.ipc.pubsub aws.greengrass#PublishToTopic": {
            "fanwatch/raw/*",
            "fanwatch/local/status",
        },
    }
    assert policies(recipe(built, "fanwatch.EdgeFilter")) == {
        "aws.greengrass.ipc.pubsub aws.greengrass#SubscribeToTopic": {
            "fanwatch/raw/+",
            "fanwatch/local/status",
        },
        "aws.greengrass.ipc.pubsub aws.greengrass#PublishToTopic": {"fanwatch/{iot:thingName}/alerts"},
        "aws.greengrass.ipc.mqttproxy aws.greengrass#PublishToIoTCore": {
            *(f"fanwatch/{{iot:thingName}}/{kind}" for kind in ("telemetry", "alerts", "status")),
            "$aws/rules/fanwatch_telemetry/fanwatch/{iot:thingName}/telemetry",  # Basic Ingest, its rule only
        },
    }


def test_the_topics_in_the_code_are_the_ones_the_recipes_allow() -> None:
    from fanwatch.edge import topics
    from fanwatch.telemetry import topic_for

    tach = policies(yaml.safe_load(build.COMPONENTS["fanwatch.Tachometer"].recipe.read_text()))
    filt = policies(yaml.safe_load(build.COMPONENTS["fanwatch.EdgeFilter"].recipe.read_text()))
    assert {topics.raw_topic("*"), topics.STATUS_TOPIC} == tach[
        "aws.greengrass.ipc.pubsub aws.greengrass#PublishToTopic"
    ]
    assert {topics.RAW_TOPICS, topics.STATUS_TOPIC} == filt[
        "aws.greengrass.ipc.pubsub aws.greengrass#SubscribeToTopic"
    ]
    iot = filt["aws.greengrass.ipc.mqttproxy aws.greengrass#PublishToIoTCore"]
    thing = "THING"
    assert {
        *(topic_for(k, thing) for k in ("telemetry", "alerts", "status")),
        topic_for("telemetry", thing, rule="fanwatch_telemetry"),  # the stack's telemetry rule
    } == {topic.replace("{iot:thingName}", thing) for topic in iot}


def test_a_version_override_an_unknown_component_and_an_artifact_the_build_does_not_make(
    tmp_path: Path,
) -> None:
    zip_path, recipe_path = build.build("fanwatch.EdgeFilter", tmp_path, version="1.4.2")
    assert (
        zip_path.parent.name == "1.4.2"
        and yaml.safe_load(recipe_path.read_text())["ComponentVersion"] == "1.4.2"
    )
    with pytest.raises(build.BuildError, match=r"unknown component 'fanwatch\.Nope'"):
        build.build("fanwatch.Nope", tmp_path)
    with pytest.raises(
        build.BuildError,
        match=r"names s3://BUCKET_NAME/COMPONENT_NAME/COMPONENT_VERSION/fanwatch_edgefilter\.zip, which",
    ):
        build.built_recipe(
            build.COMPONENTS["fanwatch.EdgeFilter"], {"author": "a", "version": "1.0.0"}, ["other-name.zip"]
        )


def _good() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load(
        build.dump_recipe(
            build.built_recipe(
                build.COMPONENTS["fanwatch.EdgeFilter"],
                {"author": "a", "version": "1.0.0"},
                ["fanwatch_edgefilter.zip"],
            )
        )
    )


@pytest.mark.parametrize(
    ("breakage", "problem"),
    [
        (
            lambda r: r["Manifests"][0]["Lifecycle"]["Run"].update(
                Script="python3 -m fanwatch.edge.run_filter"
            ),
            "must exec the venv's Python",
        ),
        (
            lambda r: r["Manifests"][1]["Lifecycle"]["Run"].update(RequiresPrivilege=True),
            "must not require privilege",
        ),
        (lambda r: r["Manifests"][2]["Lifecycle"]["Install"].update(Timeout=60), "Timeout of at least 600"),
        (lambda r: r["Manifests"].pop(), "must cover linux aarch64, arm and amd64"),
        (lambda r: r["Manifests"][0]["Artifacts"][0].update(URI="s3://my-bucket/x.zip"), "not in gdk's form"),
        (lambda r: r.update(RecipeFormatVersion="2019-01-01"), "RecipeFormatVersion"),
        (
            lambda r: r["ComponentConfiguration"]["DefaultConfiguration"]["accessControl"][
                "aws.greengrass.ipc.mqttproxy"
            ]["fanwatch.EdgeFilter:mqttproxy:1"].update(resources=["*"]),
            "resources must name topics",
        ),
        (
            lambda r: r["ComponentConfiguration"]["DefaultConfiguration"]["accessControl"][
                "aws.greengrass.ipc.pubsub"
            ]["fanwatch.EdgeFilter:pubsub:1"].update(operations=["*"]),
            "operations must be a non-empty subset",
        ),
        (
            lambda r: r["ComponentConfiguration"]["DefaultConfiguration"]["accessControl"].update(
                {"aws.greengrass.SecretManager": {}}
            ),
            "unexpected IPC service",
        ),
        (lambda r: r.update(ComponentDescription="x" * 16_000), "Greengrass accepts at most 16,000"),
    ],
)
def test_check_recipe_catches_what_users_trip_over(breakage: object, problem: str) -> None:
    data = _good()
    breakage(data)  # type: ignore[operator]
    problems = build.check_recipe(data, build.dump_recipe(data))
    assert any(problem in p for p in problems), problems


def test_the_gdk_projects_agree_with_the_build_and_the_recipes() -> None:
    root = json.loads((REPO / "gdk-config.json").read_text())
    assert list(root["component"]) == ["fanwatch.Tachometer"] and root["gdk_version"] == "1.6.0"
    assert root["component"]["fanwatch.Tachometer"]["build"]["custom_build_command"] == [
        "python3",
        "src/fanwatch/build.py",
        "--all",
    ]
    assert (REPO / "recipe.yaml").resolve() == build.COMPONENTS["fanwatch.Tachometer"].recipe
    for name, component in build.COMPONENTS.items():
        config = json.loads((component.folder / "gdk-config.json").read_text())
        entry = config["component"][name]
        assert entry["build"] == {
            "build_system": "custom",
            "custom_build_command": ["python3", "../../src/fanwatch/build.py", name],
        }
        assert entry["version"] == "NEXT_PATCH" and entry["publish"]["bucket"]
        assert {k: v for k, v in entry.items() if k != "build"} == {
            k: v for k, v in root["component"].get(name, entry).items() if k != "build"
        }
        assert (component.folder / "recipe.yaml").is_symlink()
        assert (component.folder / "recipe.yaml").resolve() == component.recipe
        for line in (component.folder / "requirements.txt").read_text().split():
            assert "==" in line  # pinned


def test_gdk_runs_it_by_path_with_any_python3_from_the_component_folder(tmp_path: Path) -> None:
    folder = build.COMPONENTS["fanwatch.EdgeFilter"].folder
    command = json.loads((folder / "gdk-config.json").read_text())["component"]["fanwatch.EdgeFilter"][
        "build"
    ]
    done = subprocess.run(
        [*command["custom_build_command"], "--out", str(tmp_path)],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"},
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "recipes/fanwatch.EdgeFilter.yaml").is_file()
    assert "built fanwatch.EdgeFilter" in done.stdout


@pytest.mark.parametrize("name", NAMES)
def test_the_artifact_alone_runs_its_entry_point(built: Path, tmp_path: Path, name: str) -> None:
    """``python -S`` skips site-packages (and this checkout's editable install): only the zip is there."""
    component = build.COMPONENTS[name]
    with zipfile.ZipFile(built / "artifacts" / name / "NEXT_PATCH" / f"{component.zip_name}.zip") as z:
        z.extractall(tmp_path / component.zip_name)
    module = "run_tachometer" if name.endswith("Tachometer") else "run_filter"
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(tmp_path / component.zip_name)}
    done = subprocess.run(
        [sys.executable, "-S", "-m", f"fanwatch.edge.{module}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, (
        done.stderr
    )  # it started, read its environment and refused to run outside Greengrass
    assert "AWS_IOT_THING_NAME is not set" in done.stdout
    installer = subprocess.run(
        [sys.executable, "-S", str(tmp_path / component.zip_name / "fanwatch/edge/install.py"), "--help"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert installer.returncode == 0 and "--requirements" in installer.stdout
