"""``LocalControlPlane``: the Greengrass control plane on 127.0.0.1, mounted on the AWS stand-in's server.

One endpoint serves every client, so an unchanged tool (the GDK CLI, the AWS CLI, boto3) works with
``AWS_ENDPOINT_URL`` alone: requests signed for ``greengrass``, ``iot-jobs-data`` and ``iotdata`` are
ours, everything else (S3, STS, the IoT registry) goes to moto, which the stand-in's
:class:`~fanwatch.standin.server.MotoServer` runs in this process. Credentials, region and clients
come from the stand-in's :class:`~fanwatch.standin.endpoint.AwsEndpoint`, as for everything local::

    with LocalControlPlane() as plane:
        os.environ.update(plane.environment())     # then: gdk component publish, fanwatch fleet ...

State lives in memory. moto keeps its state per process, so one control plane (or one stand-in) at a
time per process; each starts from nothing.
"""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Mapping
from typing import Any

from fanwatch.fleet.controlplane.components import ComponentRegistry
from fanwatch.fleet.controlplane.deployments import DeploymentBook
from fanwatch.fleet.controlplane.devices import DeviceBook
from fanwatch.fleet.controlplane.registry import IotRegistry, S3Artifacts
from fanwatch.fleet.controlplane.service import ControlPlane
from fanwatch.fleet.controlplane.wsgi import ServiceDispatcher, WsgiApp
from fanwatch.fleet.timescale import TimeScale
from fanwatch.limits import DEFAULT_REGION
from fanwatch.standin.endpoint import AwsEndpoint
from fanwatch.standin.server import MotoServer

__all__ = ["LocalControlPlane"]

log = logging.getLogger(__name__)


class LocalControlPlane:
    """Serves the control plane beside moto until stopped."""

    def __init__(
        self, *, region: str = DEFAULT_REGION, scale: TimeScale | None = None, port: int = 0
    ) -> None:
        self.region = region
        self.scale = scale or TimeScale.from_env()
        self._dispatcher = ServiceDispatcher([])
        self.server = MotoServer(port=port, mount=self.mount)
        self.endpoint = AwsEndpoint("http://unstarted", region)
        self.plane: ControlPlane | None = None

    def mount(self, moto: WsgiApp) -> WsgiApp:
        """Our services in front of moto's application (given to :class:`MotoServer`)."""
        self._dispatcher.fallback = moto
        return self._dispatcher

    @property
    def url(self) -> str:
        return self.endpoint.url

    @property
    def account(self) -> str:
        """The stand-in's AWS account (moto's)."""
        return self.endpoint.account

    def client(self, service: str) -> Any:
        """A boto3 client of ``service`` on this endpoint."""
        return self.endpoint.client(service, retries=2)

    def environment(self) -> Mapping[str, str]:
        """What a shell needs for unchanged AWS tools to use the stand-ins."""
        return self.endpoint.environment()

    def __enter__(self) -> LocalControlPlane:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Serve, from nothing: moto's state is per process, so what an earlier stand-in of this
        process left (things, groups, buckets) is cleared, as the embedded stand-in clears it."""
        self.server.start()
        self.endpoint = AwsEndpoint(self.server.url, self.region)
        self.reset()
        log.info("local Greengrass control plane on %s (account %s, %s)", self.url, self.account, self.region)

    def _new_state(self) -> None:
        registry = IotRegistry(self.client("iot"))
        self.plane = ControlPlane(
            components=ComponentRegistry(
                region=self.region, account=self.account, artifacts=S3Artifacts(self.client("s3"))
            ),
            deployments=DeploymentBook(
                region=self.region, account=self.account, registry=registry, scale=self.scale
            ),
            devices=DeviceBook(),
            registry=registry,
        )
        self._dispatcher.services = {s.signing_name: s for s in self.plane.services}

    def reset(self, scale: TimeScale | None = None) -> None:
        """Start again from nothing (components, deployments, devices, and moto's S3, registry...),
        optionally at another time scale."""
        if scale is not None:
            self.scale = scale
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=10):
            pass
        self._new_state()

    def stop(self) -> None:
        self.server.stop()
