"""moto in server mode on 127.0.0.1, in this process, with faults one can switch on.

The server is moto's own WSGI application behind werkzeug, as ``moto.server.ThreadedMotoServer`` runs
it, wrapped in a small middleware that can refuse or slow requests for a while: an AWS that throttles
(``ProvisionedThroughputExceededException`` from Kinesis, ``SlowDown`` from S3) or is slow, seen by
every client, the handlers' included, through their real retry logic. Faults match the service (from
the request's signature) and optionally the operation (``X-Amz-Target`` or ``Action=``; the HTTP method
for S3, whose operations are REST).
"""

from __future__ import annotations

import io
import logging
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["Fault", "Faults", "MotoServer"]

_SERVICE: Final = re.compile(r"Credential=[^/]+/\d+/[^/]+/([^/]+)/")

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


@dataclass(frozen=True, slots=True)
class Fault:
    """Refuse (``code`` set) or delay matching requests until ``until`` (monotonic) or ``times`` ran out."""

    service: str
    operation: str | None
    code: str | None
    status: int
    delay_s: float
    until: float | None


class Faults:
    """The switchboard: ``refuse('kinesis', 'GetRecords', seconds=2)``, ``delay('s3', 0.5)``, ``clear()``."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._remaining: dict[int, int] = {}
        self._lock = threading.Lock()
        self.refused = 0
        self.delayed = 0

    def refuse(
        self,
        service: str,
        operation: str | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
        seconds: float | None = None,
        times: int | None = None,
    ) -> Fault:
        """Answer matching requests with an error (throttling by default) for ``seconds`` or ``times``."""
        default_code, default_status = (
            ("SlowDown", 503)
            if service == "s3"
            else (
                "ProvisionedThroughputExceededException" if service == "kinesis" else "ThrottlingException",
                400,
            )
        )
        return self._add(
            Fault(service, operation, code or default_code, status or default_status, 0.0, _until(seconds)),
            times,
        )

    def delay(
        self, service: str, seconds_each: float, *, operation: str | None = None, seconds: float | None = None
    ) -> Fault:
        """Answer matching requests ``seconds_each`` late, for ``seconds`` (None: until cleared)."""
        return self._add(Fault(service, operation, None, 200, seconds_each, _until(seconds)), None)

    def _add(self, fault: Fault, times: int | None) -> Fault:
        with self._lock:
            self._faults.append(fault)
            if times is not None:
                self._remaining[id(fault)] = times
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._remaining.clear()

    def match(self, service: str, operation: str) -> Fault | None:
        now = time.monotonic()
        with self._lock:
            self._faults = [
                f
                for f in self._faults
                if (f.until is None or f.until > now) and self._remaining.get(id(f), 1) > 0
            ]
            for fault in self._faults:
                if fault.service == service and fault.operation in (None, operation):
                    if id(fault) in self._remaining:
                        self._remaining[id(fault)] -= 1
                    return fault
        return None


def _until(seconds: float | None) -> float | None:
    return None if seconds is None else time.monotonic() + seconds


def _operation(environ: dict[str, Any], service: str) -> str:
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return str(target).rsplit(".", 1)[-1]
    if service == "s3":
        return str(environ.get("REQUEST_METHOD", ""))
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    if "Action" in query:
        return query["Action"][0]
    if str(environ.get("CONTENT_TYPE", "")).startswith("application/x-www-form-urlencoded"):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)  # moto reads it again
        form = urllib.parse.parse_qs(body.decode(errors="replace"))
        return form.get("Action", [""])[0]
    return ""


def _error(fault: Fault, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    message = "Rate exceeded (a fault switched on in the fanwatch stand-in)"
    assert fault.code is not None
    if environ.get("HTTP_X_AMZ_TARGET"):
        import json

        body = json.dumps({"__type": fault.code, "message": message}).encode()
        content_type = "application/x-amz-json-1.1"
    elif fault.service == "s3":
        body = f"<Error><Code>{fault.code}</Code><Message>{message}</Message></Error>".encode()
        content_type = "application/xml"
    else:
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{fault.code}</Code>"
            f"<Message>{message}</Message></Error></ErrorResponse>"
        ).encode()
        content_type = "text/xml"
    start_response(
        f"{fault.status} Fault",
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("x-amzn-ErrorType", fault.code),
        ],
    )
    return [body]


def _with_faults(app: WsgiApp, faults: Faults) -> WsgiApp:
    def middleware(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        found = _SERVICE.search(str(environ.get("HTTP_AUTHORIZATION", "")))
        if found:
            service = found.group(1)
            fault = faults.match(service, _operation(environ, service))
            if fault is not None and fault.code is not None:
                faults.refused += 1
                return _error(fault, environ, start_response)
            if fault is not None:
                faults.delayed += 1
                time.sleep(fault.delay_s)
        return app(environ, start_response)

    return middleware


#: iot-data's Publish: ``POST /topics/<topic, URL-encoded>?qos=N`` with the payload as the body.
_PUBLISH = re.compile(r"^/topics/(?P<topic>[^?]+)$")


def _with_publish_tap(app: WsgiApp, server: MotoServer) -> WsgiApp:
    """After moto accepts an iot-data Publish, hand the message to ``server.published`` (the rules
    engine): in IoT Core an HTTPS publish reaches the rules like an MQTT one, in moto it reaches nothing."""

    def middleware(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        found = _SERVICE.search(str(environ.get("HTTP_AUTHORIZATION", "")))
        publish = _PUBLISH.match(str(environ.get("PATH_INFO", "")))
        tap = server.published
        if tap is None or not found or found.group(1) != "iotdata" or not publish:
            return app(environ, start_response)
        if environ.get("REQUEST_METHOD") != "POST":
            return app(environ, start_response)
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        status: list[str] = []

        def noting(code: str, headers: Any, exc_info: Any = None) -> Any:
            status.append(code)
            return start_response(code, headers, exc_info) if exc_info else start_response(code, headers)

        answer = list(app(environ, noting))
        if status and status[0].startswith("200"):
            tap(urllib.parse.unquote(publish.group("topic")), body)
        return answer

    return middleware


def _route_every_athena_path() -> None:
    """Let Athena requests on any path reach moto's Athena handler.

    botocore 1.44.18 moved Athena from the json protocol (``POST /``, ``X-Amz-Target``) to rest-json
    (``POST /workgroups``, ``GET /named-queries/{id}``). moto 5.2 picks the operation from the installed
    botocore's model, so it can read either, but its Athena URL map holds only ``/``: every rest-json
    call answered 404 and the stand-in could not create the stack's work group. A catch-all path, as
    moto's IoT has, lets the request through; with an older botocore nothing changes.
    """
    from moto.athena import urls
    from moto.athena.responses import AthenaResponse

    urls.url_paths.setdefault("{0}/.*$", AthenaResponse.dispatch)


class MotoServer:
    """``server.start()`` -> ``server.url``; ``server.faults`` switches faults on; ``server.stop()``.

    ``mount`` puts another application in front of moto's on the same endpoint (it gets moto's and
    returns the one to serve): how the local Greengrass control plane serves ``greengrassv2`` beside
    moto's services, so one ``AWS_ENDPOINT_URL`` reaches both. Faults apply to it too.
    """

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, mount: Callable[[WsgiApp], WsgiApp] | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.faults = Faults()
        #: Hears each message published through iot-data (topic, payload); None: nobody listens.
        self.published: Callable[[str, bytes], object] | None = None
        self._mount = mount
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        _route_every_athena_path()
        moto: WsgiApp = DomainDispatcherApplication(create_backend_app)
        app = _with_faults(_with_publish_tap(self._mount(moto) if self._mount else moto, self), self.faults)
        self._server = make_server(
            self.host, self.port, app, threaded=True, request_handler=MotoRequestHandler
        )
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-server", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
