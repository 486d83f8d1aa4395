"""Deployment documents (both shapes) and the plan made of one before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fanwatch.core.deployment.document import DeploymentDocument, DeploymentError
from fanwatch.core.deployment.plan import plan_deployment
from fanwatch.core.deployment.store import ComponentStore

PLATFORM = {"os": "linux", "architecture": "amd64"}


def recipe(name: str, version: str, defaults: dict | None = None, deps: dict | None = None) -> dict:
    doc = {
        "ComponentName": name,
        "ComponentVersion": version,
        "ComponentConfiguration": {"DefaultConfiguration": defaults or {}},
        "Manifests": [{"Platform": {"os": "linux"}, "Lifecycle": {"Run": "true"}}],
    }
    if deps:
        doc["ComponentDependencies"] = {n: {"VersionRequirement": r} for n, r in deps.items()}
    return doc


@pytest.fixture
def store(tmp_path: Path) -> ComponentStore:
    folder = tmp_path / "recipes"
    folder.mkdir()
    for doc in (
        recipe("app", "1.0.0", {"interval": 5, "old": True}, {"lib": "^1.0.0"}),
        recipe("app", "2.0.0", {"interval": 5}, {"lib": "^1.0.0"}),
        recipe("lib", "1.0.0", {"port": 1}),
        recipe("lib", "1.3.0", {"port": 1}),
        recipe("lib", "2.0.0", {"port": 2}),
        recipe("pi-only", "1.0.0") | {"Manifests": [{"Platform": {"os": "linux", "architecture": "arm"}}]},
    ):
        (folder / f"{doc['ComponentName']}-{doc['ComponentVersion']}.yaml").write_text(yaml.safe_dump(doc))
    store = ComponentStore()
    store.add(folder)
    return store


def plan(
    store: ComponentStore, document: dict, *, running: dict | None = None, configurations: dict | None = None
):
    return plan_deployment(
        DeploymentDocument.parse(document),
        store,
        running=running or {},
        configurations=configurations or {},
        platform=PLATFORM,
        nucleus_version="2.15.0",
        nucleus_defaults={"interpolateComponentConfiguration": False},
    )


def test_both_document_shapes_read_the_same() -> None:
    api = DeploymentDocument.parse(
        {
            "deploymentName": "d1",
            "components": {
                "app": {"componentVersion": "1.0.0", "configurationUpdate": {"merge": '{"a": 1}'}}
            },
            "deploymentPolicies": {"failureHandlingPolicy": "DO_NOTHING"},
        }
    )
    device = DeploymentDocument.parse(
        {
            "deploymentId": "d1",
            "components": {"app": {"version": "1.0.0", "configurationUpdate": {"merge": {"a": 1}}}},
            "failureHandlingPolicy": "DO_NOTHING",
        }
    )
    assert (api.deployment_id, api.components, api.failure_handling) == (
        device.deployment_id,
        device.components,
        device.failure_handling,
    )
    assert DeploymentDocument.parse(api.to_dict()).components == api.components
    assert DeploymentDocument.parse({"components": {}}).failure_handling == "ROLLBACK"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("components", "a deployment document is a JSON object"),
        (
            {"components": {"app": {"componentVersion": "1.0"}}},
            r"components\.app\.componentVersion: '1\.0' is not",
        ),
        ({"components": {"app": "1.0.0"}}, r"components\.app: expected an object"),
        ({"components": {}, "deploymentPolicies": []}, "deploymentPolicies: expected an object"),
    ],
)
def test_bad_documents(document: object, message: str) -> None:
    with pytest.raises(DeploymentError, match=message):
        DeploymentDocument.parse(document)


def test_dependencies_resolve_to_the_highest_allowed_and_start_first(store: ComponentStore) -> None:
    result = plan(store, {"components": {"app": {"componentVersion": "1.0.0"}}})
    assert list(result.components) == ["lib", "app"]
    assert result.components["lib"].version == "1.3.0"
    assert result.components["lib"].root is False and result.components["app"].root is True


def test_a_running_dependency_that_still_fits_is_kept(store: ComponentStore) -> None:
    running = {"lib": store.get("lib", "1.0.0")}
    result = plan(store, {"components": {"app": {"componentVersion": "2.0.0"}}}, running=running)
    assert result.components["lib"].version == "1.0.0"


def test_the_deployment_may_pin_a_dependency_but_not_against_its_requirement(store: ComponentStore) -> None:
    pinned = plan(
        store, {"components": {"app": {"componentVersion": "1.0.0"}, "lib": {"componentVersion": "1.0.0"}}}
    )
    assert pinned.components["lib"].version == "1.0.0" and pinned.components["lib"].root
    with pytest.raises(
        DeploymentError, match=r"lib \(\^1\.0\.0, a HARD dependency of app\): the deployment asks"
    ):
        plan(
            store,
            {"components": {"app": {"componentVersion": "1.0.0"}, "lib": {"componentVersion": "2.0.0"}}},
        )


def test_configuration_starts_from_the_running_one_and_updates_apply_to_roots_only(
    store: ComponentStore,
) -> None:
    running = {"app": store.get("app", "1.0.0"), "lib": store.get("lib", "1.3.0")}
    configurations = {"app": {"interval": 9, "old": True}, "lib": {"port": 7}}
    document = {
        "components": {"app": {"componentVersion": "2.0.0", "configurationUpdate": {"merge": {"x": 1}}}}
    }
    result = plan(store, document, running=running, configurations=configurations)
    assert result.components["app"].configuration == {"interval": 9, "old": True, "x": 1}
    assert result.components["lib"].configuration == {"port": 7}


def test_nucleus_configuration_is_planned_too(store: ComponentStore) -> None:
    document = {
        "components": {
            "aws.greengrass.Nucleus": {
                "componentVersion": "2.12.0",
                "configurationUpdate": {"merge": {"interpolateComponentConfiguration": True}},
            }
        }
    }
    result = plan(store, document)
    assert result.components == {}
    assert result.nucleus_configuration == {"interpolateComponentConfiguration": True}


def test_no_manifest_for_this_platform(store: ComponentStore) -> None:
    with pytest.raises(DeploymentError, match=r"pi-only 1\.0\.0: no manifest matches this platform"):
        plan(store, {"components": {"pi-only": {"componentVersion": "1.0.0"}}})
