"""Deployments on one core: plan, apply, and roll back when a component goes BROKEN.

A deployment is planned in full before anything changes (an invalid document or plan fails with
FAILED_NO_STATE_CHANGE). If applying it fails, ``failureHandlingPolicy`` decides: ROLLBACK applies the
components and configurations that ran before (FAILED_ROLLBACK_COMPLETE, or FAILED_UNABLE_TO_ROLLBACK
when that fails too), DO_NOTHING leaves things as they are (FAILED_ROLLBACK_NOT_REQUESTED). What a
successful deployment leaves running is saved, and a restarted core brings it back.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

from fanwatch.core.config import ConfigStore
from fanwatch.core.deployment.artifacts import ArtifactError
from fanwatch.core.deployment.document import (
    DeploymentDocument,
    DeploymentError,
    DeploymentResult,
    DetailedDeploymentStatus,
    FailurePolicy,
)
from fanwatch.core.deployment.plan import Plan, PlannedComponent, plan_deployment
from fanwatch.core.deployment.recipe import RecipeError
from fanwatch.core.deployment.store import ComponentStore
from fanwatch.core.layout import CoreLayout
from fanwatch.core.runtime.core_log import CoreLog
from fanwatch.core.runtime.nucleus import NUCLEUS_VERSION, nucleus_defaults
from fanwatch.core.runtime.persistence import CoreFiles
from fanwatch.core.runtime.supervisor import Supervisor
from fanwatch.limits import NUCLEUS_COMPONENT

__all__ = ["Deployer"]


class Deployer:
    """Applies one deployment at a time (``busy``) to a core's :class:`Supervisor`."""

    def __init__(
        self,
        supervisor: Supervisor,
        *,
        store: ComponentStore,
        config: ConfigStore,
        layout: CoreLayout,
        files: CoreFiles,
        core_log: CoreLog,
        log: logging.Logger,
        platform: Mapping[str, str],
        region: str,
    ) -> None:
        self._supervisor = supervisor
        self._store = store
        self._config = config
        self._layout = layout
        self._files = files
        self._core_log = core_log
        self._log = log
        self._platform = platform
        self._region = region
        self.document: DeploymentDocument | None = None  # the last deployment that succeeded
        self.last_result: DeploymentResult | None = None
        self.busy = asyncio.Lock()

    async def deploy(self, document: object) -> DeploymentResult:
        """Apply a deployment (a :class:`DeploymentDocument` or its JSON form) and wait until it
        succeeded, failed or rolled back."""
        async with self.busy:
            if not isinstance(document, DeploymentDocument):
                try:
                    document = DeploymentDocument.parse(document)
                except DeploymentError as exc:
                    return self._finish(
                        DeploymentResult("unknown", DetailedDeploymentStatus.FAILED_NO_STATE_CHANGE, str(exc))
                    )
            self._core_log.claim_current_task()  # the components it starts log into this core's log
            self._log.info("deployment %s: %s", document.deployment_id, json.dumps(document.to_dict()))
            supervisor = self._supervisor
            try:
                # the build folders as they are now: a rebuild wins, as a local deployment's copy does
                self._store.refresh()
                plan = self._plan(document)
                launches = supervisor.launches(plan)
                for planned in plan.components.values():  # nothing is stopped before all of it checks out
                    supervisor.check_install(planned)
            except (DeploymentError, RecipeError, ArtifactError, OSError) as exc:
                return self._finish(
                    DeploymentResult(
                        document.deployment_id, DetailedDeploymentStatus.FAILED_NO_STATE_CHANGE, str(exc)
                    )
                )
            previous = supervisor.snapshot(self.document)
            problem = await supervisor.apply(plan, launches)
            if problem is None:
                self.document = document
                self.save()
                return self._finish(
                    DeploymentResult(
                        document.deployment_id,
                        DetailedDeploymentStatus.SUCCESSFUL,
                        states=supervisor.states(),
                    )
                )
            self._log.error("deployment %s failed: %s", document.deployment_id, problem)
            if document.failure_handling == FailurePolicy.DO_NOTHING:
                status = DetailedDeploymentStatus.FAILED_ROLLBACK_NOT_REQUESTED
                return self._finish(
                    DeploymentResult(document.deployment_id, status, problem, supervisor.states())
                )
            self._log.info("deployment %s: rolling back", document.deployment_id)
            rollback_problem = await supervisor.apply(previous, supervisor.launches(previous))
            if rollback_problem is None:
                self.save()
                status = DetailedDeploymentStatus.FAILED_ROLLBACK_COMPLETE
            else:
                status = DetailedDeploymentStatus.FAILED_UNABLE_TO_ROLLBACK
                problem = f"{problem}; rollback: {rollback_problem}"
            return self._finish(
                DeploymentResult(document.deployment_id, status, problem, supervisor.states())
            )

    def _finish(self, result: DeploymentResult) -> DeploymentResult:
        self.last_result = result
        self._log.info("deployment %s: %s %s", result.deployment_id, result.status, result.detail)
        return result

    def _plan(self, document: DeploymentDocument) -> Plan:
        supervisor = self._supervisor
        configurations = {
            name: supervisor.configuration(name) for name in [*supervisor.running, NUCLEUS_COMPONENT]
        }
        plan = plan_deployment(
            document,
            self._store,
            running={name: r.planned.stored for name, r in supervisor.running.items()},
            configurations=configurations,
            platform=self._platform,
            nucleus_version=NUCLEUS_VERSION,
            nucleus_defaults=nucleus_defaults(self._region),
        )
        if not plan.nucleus_configuration.get("interpolateComponentConfiguration"):
            return plan
        # the nucleus puts system values ({iot:thingName}, paths) into configurations when asked to
        interpolator = supervisor.interpolator(plan)
        components = {
            name: PlannedComponent(
                p.stored,
                p.manifest,
                interpolator.interpolate(p.configuration, name, set(p.dependencies), system_only=True),
                p.root,
            )
            for name, p in plan.components.items()
        }
        return Plan(plan.document, components, plan.nucleus_configuration)

    # -- what survives a restart ------------------------------------------------------------------------

    def save(self) -> None:
        supervisor = self._supervisor
        self._files.save_deployment(
            {
                "document": None if self.document is None else self.document.to_dict(),
                "components": {
                    name: {
                        "version": r.planned.version,
                        "root": r.planned.root,
                        "configuration": supervisor.configuration(name),
                    }
                    for name, r in supervisor.running.items()
                },
                "nucleus": self._config.get(NUCLEUS_COMPONENT),
                "installed": supervisor.installed,
            }
        )

    async def restore(self, saved: Mapping[str, Any]) -> None:
        """Start again what ran when the core stopped, with the configuration it had and the artifacts
        it installed: a build folder rebuilt meanwhile waits for the next deployment."""
        supervisor = self._supervisor
        try:
            self._store.add_installed(self._layout.recipes, self._layout.artifacts)
            supervisor.installed = {str(k): str(v) for k, v in (saved.get("installed") or {}).items()}
            components: dict[str, PlannedComponent] = {}
            for name, entry in saved["components"].items():
                stored = self._store.get_installed(name, entry["version"])
                components[name] = PlannedComponent(
                    stored,
                    stored.recipe.manifest_for(self._platform),
                    entry.get("configuration") or {},
                    entry.get("root", True),
                )
            if saved.get("document"):
                self.document = DeploymentDocument.parse(saved["document"])
            plan = Plan(
                self.document or DeploymentDocument("restored", {}),
                components,
                self._config.get(NUCLEUS_COMPONENT),
            )
            launches = supervisor.launches(plan)
        except (LookupError, RecipeError, DeploymentError, TypeError, ValueError) as exc:
            self._log.error("cannot restore the last deployment: %s", exc)
            return
        async with self.busy:
            problem = await supervisor.apply(plan, launches)
        self._log.log(
            logging.ERROR if problem else logging.INFO,
            "restored %d components%s",
            len(components),
            f": {problem}" if problem else "",
        )
