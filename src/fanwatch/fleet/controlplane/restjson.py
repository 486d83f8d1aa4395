"""The server side of AWS's ``rest-json`` protocol, driven by botocore's model of a service.

botocore knows how a client turns parameters into an HTTP request (``serialize.py``) and a response
back into a dict (``parsers.py``). This module does the opposite half from the same model: it routes a
request by the operation's ``http.method`` and ``http.requestUri`` (no hand-written route list), reads
every member from where the model puts it (URI label, query string, header, JSON body, raw payload),
checks the input with :mod:`.shapes`, calls the handler, checks what it returned against the output
shape and writes it where the model says, with the status code the model gives. Errors are the
model's error shapes, written as AWS writes them: the ``x-amzn-ErrorType`` header and the shape's
members as JSON, with the shape's HTTP status.

A handler takes and returns the same dicts boto3 does (member names, ``bytes`` for blobs,
``datetime`` for timestamps) and raises :class:`ApiError` with the name of one of the model's error
shapes.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qs, unquote

from botocore.loaders import Loader
from botocore.model import OperationModel, ServiceModel, Shape, StructureShape

from fanwatch.errors import FanwatchError
from fanwatch.fleet.controlplane.shapes import Problem, check

__all__ = ["ApiError", "Handler", "HttpRequest", "HttpResponse", "RestJsonService", "load_service_model"]

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Mapping[str, Any]]

_LABEL: Final = re.compile(r"\{([A-Za-z0-9_]+)(\+?)\}")


def load_service_model(service_name: str) -> ServiceModel:
    """botocore's model of ``service_name`` (the one the installed boto3 uses)."""
    return ServiceModel(Loader().load_service_model(service_name, "service-2"), service_name)


class ApiError(FanwatchError):
    """An error the service answers with: one of the model's error shapes, by name."""

    def __init__(self, code: str, message: str, **members: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.members = members


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A request to a REST-JSON AWS service as it arrived, before it is matched to an operation."""

    method: str
    raw_path: str  # as sent: URI labels still percent-encoded
    query: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes


@dataclass(slots=True)
class HttpResponse:
    """What the control plane answers: status, headers and body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class _Route:
    operation: OperationModel
    method: str
    pattern: re.Pattern[str]
    literal_query: Mapping[str, str]
    specificity: tuple[int, int]


def _route(operation: OperationModel) -> _Route:
    uri = operation.http["requestUri"]
    path, _, query = uri.partition("?")
    regex = ""
    position = 0
    for match in _LABEL.finditer(path):
        regex += re.escape(path[position : match.start()])
        regex += f"(?P<{match.group(1)}>.+)" if match.group(2) else f"(?P<{match.group(1)}>[^/]+)"
        position = match.end()
    regex += re.escape(path[position:])
    literal = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
    literal_chars = len(_LABEL.sub("", path))
    return _Route(
        operation,
        operation.http["method"].upper(),
        re.compile(f"^{regex}/?$"),
        literal,
        (literal_chars, -path.count("+}")),
    )


class RestJsonService:
    """One AWS service's rest-json API from its botocore model, with handlers for some operations."""

    def __init__(
        self, model: ServiceModel, *, validation_error: str, internal_error: str, partial: bool = False
    ) -> None:
        if model.protocol != "rest-json":
            raise ValueError(f"{model.service_name} speaks {model.protocol}, not rest-json")
        self.model = model
        #: serves only its handled operations; the others go to whoever serves the rest (moto)
        self.partial = partial
        self._validation_error = validation_error  # the shape a constraint failure is reported with
        self._internal_error = internal_error
        self._handlers: dict[str, Handler] = {}
        routes = [_route(model.operation_model(name)) for name in model.operation_names]
        self._routes = sorted(routes, key=lambda r: r.specificity, reverse=True)

    @property
    def signing_name(self) -> str:
        return str(self.model.signing_name)

    def handle(self, operation: str) -> Callable[[Handler], Handler]:
        """Decorator: serve ``operation`` (a name from the model) with the decorated function."""
        if operation not in self.model.operation_names:
            raise KeyError(f"{self.model.service_name} has no operation {operation!r}")

        def register(function: Handler) -> Handler:
            self._handlers[operation] = function
            return function

        return register

    def add_handlers(self, handlers: Mapping[str, Handler]) -> None:
        for operation, function in handlers.items():
            self.handle(operation)(function)

    @property
    def operations(self) -> list[str]:
        return sorted(self._handlers)

    def input_shapes(self) -> Iterable[Shape]:
        """The input and output shapes of every served operation (for checks of the model itself)."""
        for name in self._handlers:
            operation = self.model.operation_model(name)
            for shape in (operation.input_shape, operation.output_shape):
                if shape is not None:
                    yield shape

    # -- one request --------------------------------------------------------------------------------

    def serves(self, request: HttpRequest) -> bool:
        """Whether the request is for an operation this service has a handler for."""
        try:
            operation, _ = self._match(request)
        except ApiError:
            return False
        return operation.name in self._handlers

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = secrets.token_hex(16)
        operation: OperationModel | None = None
        try:
            operation, labels = self._match(request)
            handler = self._handlers.get(operation.name)
            if handler is None:
                raise ApiError(
                    self._validation_error,
                    f"the local stand-in does not implement {operation.name}",
                    reason="UNKNOWN_OPERATION",
                )
            params = self._read(operation, labels, request)
            problems = check(operation.input_shape, params) if operation.input_shape is not None else []
            if problems:
                raise self._invalid(problems)
            result = dict(handler(params))
            response = self._write(operation, result)
        except ApiError as error:
            response = self._error(operation, error)
        except Exception:
            log.exception("%s %s failed", self.model.service_name, operation.name if operation else "?")
            response = self._error(operation, ApiError(self._internal_error, "internal error (see the log)"))
        response.headers["x-amzn-RequestId"] = request_id
        return response

    def _match(self, request: HttpRequest) -> tuple[OperationModel, dict[str, str]]:
        query = parse_qs(request.query, keep_blank_values=True)
        path_matched = False
        for route in self._routes:
            match = route.pattern.match(request.raw_path)
            if match is None or any(query.get(k, [None])[0] != v for k, v in route.literal_query.items()):
                continue
            path_matched = True
            if route.method == request.method.upper():
                return route.operation, {k: unquote(v) for k, v in match.groupdict().items()}
        verb = "method not allowed on" if path_matched else "no operation at"
        raise ApiError(
            self._validation_error,
            f"{self.model.service_name}: {verb} {request.method} {request.raw_path}",
            reason="UNKNOWN_OPERATION",
        )

    def _invalid(self, problems: list[Problem]) -> ApiError:
        count = len(problems)
        text = f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(
            p.message for p in problems
        )
        return ApiError(
            self._validation_error,
            text,
            reason="FIELD_VALIDATION_FAILED",
            fields=[{"name": p.path, "message": p.message} for p in problems],
        )

    def _cannot_parse(self, message: str) -> ApiError:
        return ApiError(self._validation_error, message, reason="CANNOT_PARSE")

    # -- reading ------------------------------------------------------------------------------------

    def _read(
        self, operation: OperationModel, labels: Mapping[str, str], request: HttpRequest
    ) -> dict[str, Any]:
        shape = operation.input_shape
        if shape is None:
            return {}
        assert isinstance(shape, StructureShape)
        query = parse_qs(request.query, keep_blank_values=True)
        params: dict[str, Any] = {}
        payload_member = shape.serialization.get("payload")
        body_members: dict[str, Shape] = {}
        for name, member in shape.members.items():
            location = member.serialization.get("location")
            wire = member.serialization.get("name", name)
            if location == "uri":
                if wire in labels:
                    params[name] = self._text_value(member, labels[wire], name)
            elif location == "querystring":
                if member.type_name == "map":
                    params[name] = {k: v[0] for k, v in query.items()}
                elif wire in query:
                    values = query[wire]
                    if member.type_name == "list":
                        params[name] = [self._text_value(member.member, v, name) for v in values]
                    else:
                        params[name] = self._text_value(member, values[0], name)
            elif location == "header":
                if wire.lower() in request.headers:
                    params[name] = self._text_value(member, request.headers[wire.lower()], name)
            elif location == "headers":
                prefix = wire.lower()
                found = {k[len(prefix) :]: v for k, v in request.headers.items() if k.startswith(prefix)}
                if found:
                    params[name] = found
            elif name == payload_member:
                if member.type_name in {"blob", "string"}:
                    if request.body:
                        params[name] = request.body if member.type_name == "blob" else request.body.decode()
                else:
                    params[name] = self._from_json(member, self._json_body(request.body), name)
            else:
                body_members[name] = member
        if body_members and payload_member is None:
            body = self._json_body(request.body)
            for name, member in body_members.items():
                wire = member.serialization.get("name", name)
                if wire in body and body[wire] is not None:
                    params[name] = self._from_json(member, body[wire], name)
        return params

    def _json_body(self, body: bytes) -> dict[str, Any]:
        if not body.strip():
            return {}
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise self._cannot_parse(f"the request body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise self._cannot_parse("the request body must be a JSON object")
        return data

    def _text_value(self, shape: Shape, text: str, name: str) -> Any:
        """A URI label, query value or header as the member's type."""
        kind = shape.type_name
        try:
            if kind in {"integer", "long"}:
                return int(text)
            if kind in {"double", "float"}:
                return float(text)
            if kind == "boolean":
                if text not in {"true", "false"}:
                    raise ValueError(text)
                return text == "true"
            if kind == "timestamp":
                return _parse_timestamp(text)
            if kind == "blob":
                return base64.b64decode(text, validate=True)
            if shape.serialization.get("jsonvalue"):
                return json.loads(base64.b64decode(text))
        except (ValueError, binascii.Error, json.JSONDecodeError):
            raise self._cannot_parse(f"{name}: {text!r} is not a valid {kind}") from None
        return text

    def _from_json(self, shape: Shape, value: Any, path: str) -> Any:
        """A JSON body value as boto3 would hold it (blobs decoded, timestamps as datetimes)."""
        kind = shape.type_name
        if kind == "structure" and isinstance(value, dict):
            assert isinstance(shape, StructureShape)
            out: dict[str, Any] = {}
            for name, member in shape.members.items():
                wire = member.serialization.get("name", name)
                if wire in value and value[wire] is not None:
                    out[name] = self._from_json(member, value[wire], f"{path}.{name}")
            return out
        if kind == "list" and isinstance(value, list):
            return [self._from_json(shape.member, v, f"{path}.{i + 1}") for i, v in enumerate(value)]
        if kind == "map" and isinstance(value, dict):
            return {k: self._from_json(shape.value, v, f"{path}.{k}") for k, v in value.items()}
        if kind == "blob" and isinstance(value, str):
            try:
                return base64.b64decode(value, validate=True)
            except (ValueError, binascii.Error):
                raise self._cannot_parse(f"{path}: not valid base64") from None
        if kind == "timestamp" and isinstance(value, int | float | str) and not isinstance(value, bool):
            try:
                return _parse_timestamp(value)
            except ValueError:
                raise self._cannot_parse(f"{path}: {value!r} is not a timestamp") from None
        return value  # a type mismatch is reported by the shape check, with its path

    # -- writing ------------------------------------------------------------------------------------

    def _write(self, operation: OperationModel, result: dict[str, Any]) -> HttpResponse:
        shape = operation.output_shape
        status = int(operation.http.get("responseCode", 200))
        response = HttpResponse(status, {"Content-Type": "application/json"})
        if shape is None:
            response.body = b"{}"
            return response
        assert isinstance(shape, StructureShape)
        problems = check(shape, result, strict=True)
        if problems:  # our bug, not the caller's: say so loudly
            raise RuntimeError(
                f"{operation.name} answered outside its model: " + "; ".join(p.message for p in problems)
            )
        payload_member = shape.serialization.get("payload")
        body: dict[str, Any] = {}
        for name, value in result.items():
            member = shape.members[name]
            location = member.serialization.get("location")
            wire = member.serialization.get("name", name)
            if location == "header":
                response.headers[wire] = str(value)
            elif location == "statusCode":
                response.status = int(value)
            elif name == payload_member:
                if isinstance(value, bytes):
                    response.body = value
                    response.headers["Content-Type"] = "application/octet-stream"
                else:
                    response.body = json.dumps(_to_json(member, value)).encode()
                return response
            else:
                body[wire] = _to_json(member, value)
        response.body = json.dumps(body).encode()
        return response

    def _error(self, operation: OperationModel | None, error: ApiError) -> HttpResponse:
        shape = self._error_shape(operation, error.code)
        members: dict[str, Any] = {"message": error.message, **error.members}
        headers = {"Content-Type": "application/json", "x-amzn-ErrorType": error.code}
        if shape is None:
            return HttpResponse(500, headers, json.dumps({"message": error.message}).encode())
        assert isinstance(shape, StructureShape)
        body: dict[str, Any] = {}
        for name, value in members.items():
            member = shape.members.get(name)
            if member is None or value is None:
                continue
            if member.serialization.get("location") == "header":
                headers[member.serialization.get("name", name)] = str(value)
            else:
                body[member.serialization.get("name", name)] = _to_json(member, value)
        problems = check(shape, {k: v for k, v in members.items() if k in shape.members}, strict=True)
        if problems:
            log.error("error %s outside its model: %s", error.code, "; ".join(p.message for p in problems))
        status = int(shape.metadata.get("error", {}).get("httpStatusCode", 400))
        return HttpResponse(status, headers, json.dumps(body).encode())

    def _error_shape(self, operation: OperationModel | None, code: str) -> Shape | None:
        if operation is not None:
            for shape in operation.error_shapes:
                if shape.name == code:
                    return shape
        try:
            return self.model.shape_for(code)
        except Exception:
            return None


def _to_json(shape: Shape, value: Any) -> Any:
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        return {
            shape.members[k].serialization.get("name", k): _to_json(shape.members[k], v)
            for k, v in value.items()
            if v is not None
        }
    if kind == "list":
        return [_to_json(shape.member, v) for v in value]
    if kind == "map":
        return {k: _to_json(shape.value, v) for k, v in value.items()}
    if kind == "blob":
        return base64.b64encode(bytes(value)).decode()
    if kind == "timestamp":
        stamp = value.timestamp() if isinstance(value, dt.datetime) else float(value)
        if shape.serialization.get("timestampFormat") == "iso8601":
            return dt.datetime.fromtimestamp(stamp, dt.UTC).isoformat().replace("+00:00", "Z")
        return stamp
    return value


def _parse_timestamp(value: str | float) -> dt.datetime:
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(float(value), dt.UTC)
    try:
        return dt.datetime.fromtimestamp(float(value), dt.UTC)
    except ValueError:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
