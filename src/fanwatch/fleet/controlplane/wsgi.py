"""One HTTP endpoint for several AWS services: ours by signing name, everything else to a fallback.

A boto3 client signs each request with its service's signing name (``greengrass`` for
``greengrassv2``, ``iot-jobs-data``, ``iotdata``...) in the ``Authorization`` header's credential
scope. That is how a single ``AWS_ENDPOINT_URL`` can serve every client of an unchanged tool such as
the GDK CLI: requests for a service we serve go to its :class:`~.restjson.RestJsonService`, the rest
(S3, STS, the IoT registry) to the fallback WSGI application, moto's server. A *partial* service
(``iot``, of which we serve only the jobs behind deployments) keeps the operations it handles and passes
every other request on to the fallback.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final
from urllib.parse import quote

from fanwatch.fleet.controlplane.restjson import HttpRequest, RestJsonService

__all__ = ["ServiceDispatcher", "signing_name"]

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_SCOPE: Final = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/,\s]+/([^/,\s]+)/aws4_request")
_REASONS: Final = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 402: "Payment Required",
                   401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
                   409: "Conflict", 410: "Gone", 429: "Too Many Requests", 500: "Internal Server Error",
                   501: "Not Implemented", 503: "Service Unavailable"}  # fmt: skip


def signing_name(headers: Mapping[str, str]) -> str | None:
    """The service a SigV4-signed request was signed for, from its Authorization header."""
    match = _SCOPE.search(headers.get("authorization", ""))
    return match.group(1) if match else None


def _headers(environ: Mapping[str, Any]) -> dict[str, str]:
    headers = {k[5:].replace("_", "-").lower(): str(v) for k, v in environ.items() if k.startswith("HTTP_")}
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = str(environ[key])
    return headers


def _raw_path(environ: Mapping[str, Any]) -> str:
    """The path as the client sent it: URI labels such as ARNs stay percent-encoded (``%3A``, ``%2F``)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        return str(raw).split("?", 1)[0]
    return quote(str(environ.get("PATH_INFO", "")), safe="/$")


class ServiceDispatcher:
    """A WSGI application: our services by signing name, anything else to ``fallback`` (or 404)."""

    def __init__(self, services: Sequence[RestJsonService], fallback: WsgiApp | None = None) -> None:
        self.services = {service.signing_name: service for service in services}
        self.fallback = fallback

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        headers = _headers(environ)
        service = self.services.get(signing_name(headers) or "")
        if service is None:
            return self._fall_back(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        request = HttpRequest(
            method=str(environ.get("REQUEST_METHOD", "GET")),
            raw_path=_raw_path(environ),
            query=str(environ.get("QUERY_STRING", "")),
            headers=headers,
            body=body,
        )
        if service.partial and not service.serves(request):
            environ["wsgi.input"] = io.BytesIO(body)  # the fallback reads the body again
            return self._fall_back(environ, start_response)
        response = service(request)
        response.headers["Content-Length"] = str(len(response.body))
        reason = _REASONS.get(response.status, "Status")
        start_response(f"{response.status} {reason}", list(response.headers.items()))
        return [response.body]

    def _fall_back(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self.fallback is not None:
            return self.fallback(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "application/json")])
        return [b'{"message": "no service here for this request"}']
