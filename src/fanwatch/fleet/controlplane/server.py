"""``LocalControlPlane``: the Greengrass control plane on 127.0.0.1, in front of the AWS stand-in.

One endpoint serves every client, so an unchanged tool (the GDK CLI, the AWS CLI, boto3) works with
``AWS_ENDPOINT_URL`` alone: requests signed for ``greengrass``, ``iot-jobs-data`` and ``iotdata`` are
ours, everything else (S3, STS, the IoT registry) goes to moto's server application in the same
process. With ``aws_endpoint`` given, an AWS stand-in already running elsewhere holds S3 and the
registry instead, and this endpoint serves only the Greengrass side::

    with LocalControlPlane() as plane:
        os.environ["AWS_ENDPOINT_URL"] = plane.url     # then: gdk component publish, fanwatch fleet ...

State lives in memory and ends with the process.
"""

from __future__ import annotations

import logging
import threading
import urllib.request
from collections.abc import Mapping
from typing import Any, Final

import boto3
from botocore.config import Config
from werkzeug.serving import BaseWSGIServer, make_server

from fanwatch.fleet.controlplane.components import ComponentRegistry
from fanwatch.fleet.controlplane.deployments import DeploymentBook
from fanwatch.fleet.controlplane.devices import DeviceBook
from fanwatch.fleet.controlplane.registry import IotRegistry, S3Artifacts
from fanwatch.fleet.controlplane.service import ControlPlane
from fanwatch.fleet.controlplane.wsgi import ServiceDispatcher, WsgiApp
from fanwatch.fleet.timescale import TimeScale

__all__ = ["LOCAL_CREDENTIALS", "LocalControlPlane"]

log = logging.getLogger(__name__)

#: Credentials for the stand-ins (moto accepts any; these say so where they are read).
LOCAL_CREDENTIALS: Final = {"aws_access_key_id": "local-stand-in", "aws_secret_access_key": "local-stand-in"}


def _moto_application() -> WsgiApp:
    from moto.server import DomainDispatcherApplication, create_backend_app

    return DomainDispatcherApplication(create_backend_app)


def _request_handler() -> type[Any]:
    from moto.server import MotoRequestHandler

    class QuietHandler(MotoRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    return QuietHandler


class LocalControlPlane:
    """Serves the control plane (and, unless ``aws_endpoint`` is given, moto) until stopped."""

    def __init__(
        self,
        *,
        region: str = "us-east-1",
        aws_endpoint: str | None = None,
        scale: TimeScale | None = None,
        port: int = 0,
    ) -> None:
        self.region = region
        self.scale = scale or TimeScale.from_env()
        self._aws_endpoint = aws_endpoint
        self._port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._dispatcher = ServiceDispatcher([])
        self._account = ""
        self.plane: ControlPlane | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the control plane is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def account(self) -> str:
        """The stand-in's AWS account (moto's)."""
        return self._account

    @property
    def aws_endpoint(self) -> str:
        """Where S3, STS and the IoT registry are served."""
        return self._aws_endpoint or self.url

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client of ``service`` at this endpoint (S3, IoT... at the AWS stand-in's)."""
        ours = {"greengrassv2", "iot-jobs-data", "iot-data"}
        endpoint = self.url if service in ours else self.aws_endpoint
        return boto3.client(
            service,
            endpoint_url=endpoint,
            region_name=self.region,
            config=Config(retries={"max_attempts": 2, "mode": "standard"}),
            **{**LOCAL_CREDENTIALS, **kwargs},
        )

    def environment(self) -> Mapping[str, str]:
        """What a shell needs for unchanged AWS tools to use the stand-ins."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"],
        }

    def __enter__(self) -> LocalControlPlane:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        self._dispatcher = ServiceDispatcher([], fallback=None if self._aws_endpoint else _moto_application())
        self._server = make_server(
            "127.0.0.1", self._port, self._dispatcher, threaded=True, request_handler=_request_handler()
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="control-plane", daemon=True)
        self._thread.start()
        self._account = self.client("sts").get_caller_identity()["Account"]
        self._new_state()
        log.info(
            "local Greengrass control plane on %s (account %s, %s)", self.url, self._account, self.region
        )

    def _new_state(self) -> None:
        registry = IotRegistry(self.client("iot"))
        self.plane = ControlPlane(
            components=ComponentRegistry(
                region=self.region, account=self._account, artifacts=S3Artifacts(self.client("s3"))
            ),
            deployments=DeploymentBook(
                region=self.region, account=self._account, registry=registry, scale=self.scale
            ),
            devices=DeviceBook(),
            registry=registry,
        )
        self._dispatcher.services = {s.signing_name: s for s in self.plane.services}

    def reset(self, scale: TimeScale | None = None) -> None:
        """Start again from nothing (components, deployments, devices, and the moto served here),
        optionally at another time scale."""
        if scale is not None:
            self.scale = scale
        self.reset_aws()
        self._new_state()

    def reset_aws(self) -> None:
        """Clear S3, the IoT registry... of the moto served here (moto keeps them per process, so two
        control planes in one process share them; tests start each from nothing)."""
        if self._aws_endpoint is not None:
            raise RuntimeError("the AWS stand-in is not served here: reset it where it runs")
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
