"""Deployment files: what a fleet runs, versioned in the repository, checked before anything is sent.

A deployment file is the part of a ``CreateDeployment`` request that describes *what* to run
(``components`` with their versions and ``configurationUpdate``, optionally ``deploymentName`` and
``tags``), so the same file also works with ``aws greengrassv2 create-deployment --cli-input-json``.
As in the API, ``configurationUpdate.merge`` is a JSON *string*. *How* to roll it out is added by
``fanwatch fleet deploy`` (:data:`DEFAULT_POLICIES`, :data:`DEFAULT_JOB`); a file may override either
with its own ``deploymentPolicies`` or ``iotJobConfiguration``.

Files are checked against botocore's model of CreateDeployment, with the constraints the service
applies (enums, patterns, lengths), and every ``merge`` must be a JSON object: a mistake is a clear
error on the user's machine, not a failed deployment on a thousand devices.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from fanwatch.errors import FanwatchError
from fanwatch.fleet.controlplane.restjson import load_service_model
from fanwatch.fleet.controlplane.shapes import check

__all__ = ["DEFAULT_JOB", "DEFAULT_POLICIES", "DeploymentFile", "DeploymentFileError"]

#: Roll back a device whose deployment fails; give components a minute to defer an update and
#: 30 s to validate a configuration change.
DEFAULT_POLICIES: Final[dict[str, Any]] = {
    "failureHandlingPolicy": "ROLLBACK",
    "componentUpdatePolicy": {"action": "NOTIFY_COMPONENTS", "timeoutInSeconds": 60},
    "configurationValidationPolicy": {"timeoutInSeconds": 30},
}
#: Start with 5 devices a minute, double after each 5 successes (up to 100 a minute); cancel the job
#: when more than 10 % of at least 5 finished devices failed or timed out; a device has 30 minutes.
DEFAULT_JOB: Final[dict[str, Any]] = {
    "jobExecutionsRolloutConfig": {
        "exponentialRate": {
            "baseRatePerMinute": 5,
            "incrementFactor": 2.0,
            "rateIncreaseCriteria": {"numberOfSucceededThings": 5},
        },
        "maximumPerMinute": 100,
    },
    "abortConfig": {
        "criteriaList": [
            {
                "failureType": "FAILED",
                "action": "CANCEL",
                "thresholdPercentage": 10,
                "minNumberOfExecutedThings": 5,
            },
            {
                "failureType": "TIMED_OUT",
                "action": "CANCEL",
                "thresholdPercentage": 10,
                "minNumberOfExecutedThings": 5,
            },
        ]
    },
    "timeoutConfig": {"inProgressTimeoutInMinutes": 30},
}
_KEYS: Final = {"deploymentName", "components", "deploymentPolicies", "iotJobConfiguration", "tags"}
_PLACEHOLDER_TARGET: Final = "arn:aws:iot:us-east-1:000000000000:thinggroup/placeholder"


class DeploymentFileError(FanwatchError, ValueError):
    """The file is not a deployment AWS would accept; the message names the file and each problem."""


@dataclass(frozen=True, slots=True)
class DeploymentFile:
    """A deployment file (see the module docstring): :meth:`load` reads one from disk, :meth:`parse`
    checks it, and either refuses a bad one with every problem it found."""

    path: Path
    content: Mapping[str, Any]

    @classmethod
    def load(cls, path: str | Path) -> DeploymentFile:
        file = Path(path)
        try:
            content = json.loads(file.read_text())
        except FileNotFoundError:
            raise DeploymentFileError(f"{file}: no such deployment file") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DeploymentFileError(f"{file}: not a JSON deployment file ({exc})") from None
        return cls.parse(content, file)

    @classmethod
    def parse(cls, content: object, path: Path = Path("<deployment>")) -> DeploymentFile:
        if not isinstance(content, dict):
            raise DeploymentFileError(f"{path}: a deployment file is a JSON object")
        problems = [
            f"unknown key {k!r} (expected some of {', '.join(sorted(_KEYS))})"
            for k in content
            if k not in _KEYS
        ]
        if not content.get("components"):
            problems.append("components: the deployment names no component")
        shape = load_service_model("greengrassv2").operation_model("CreateDeployment").input_shape
        request = {"targetArn": _PLACEHOLDER_TARGET, **{k: v for k, v in content.items() if k in _KEYS}}
        problems += [p.message for p in check(shape, request)]
        for name, spec in (content.get("components") or {}).items():
            merge = (spec.get("configurationUpdate") or {}).get("merge") if isinstance(spec, dict) else None
            if isinstance(merge, str):
                try:
                    parsed = json.loads(merge)
                except json.JSONDecodeError as exc:
                    problems.append(f"components.{name}.configurationUpdate.merge is not valid JSON: {exc}")
                    continue
                if not isinstance(parsed, dict):
                    problems.append(f"components.{name}.configurationUpdate.merge must be a JSON object")
        if problems:
            raise DeploymentFileError(f"{path}:\n  " + "\n  ".join(problems))
        return cls(path, copy.deepcopy(content))

    @property
    def components(self) -> dict[str, dict[str, Any]]:
        return copy.deepcopy(dict(self.content["components"]))

    @property
    def digest(self) -> str:
        """What the file asks for, independent of key order and spacing (tags deployments with it)."""
        return hashlib.sha256(json.dumps(self.content, sort_keys=True).encode()).hexdigest()[:16]

    def request(
        self, target_arn: str, *, parent_arn: str | None = None, name: str | None = None
    ) -> dict[str, Any]:
        """The CreateDeployment request: the file's components and the rollout settings."""
        tags = {
            **dict(self.content.get("tags") or {}),
            "fanwatch:file": self.path.name[:256],
            "fanwatch:digest": self.digest,
        }
        request: dict[str, Any] = {
            "targetArn": target_arn,
            "deploymentName": name or str(self.content.get("deploymentName") or self.path.stem),
            "components": self.components,
            "deploymentPolicies": _merged(DEFAULT_POLICIES, self.content.get("deploymentPolicies")),
            "iotJobConfiguration": _merged(DEFAULT_JOB, self.content.get("iotJobConfiguration")),
            "tags": tags,
        }
        if parent_arn:
            request["parentTargetArn"] = parent_arn
        return request


def _merged(defaults: Mapping[str, Any], override: object) -> dict[str, Any]:
    out = copy.deepcopy(dict(defaults))
    for key, value in (override or {}).items() if isinstance(override, Mapping) else ():
        out[key] = copy.deepcopy(value)
    return out
