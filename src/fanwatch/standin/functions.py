"""Lambda functions run in-process: one warm container per function of the template.

moto cannot run our code (it would need Docker), so a container here is the handler's module loaded
afresh (its module-level caches, such as the detector's ``_from_environment``, are this container's
and no other's) and called under the function's environment: the variables the template gives it,
resolved to the stand-in's names, plus what the Lambda runtime sets (function name, memory, region)
and the stand-in's endpoint and dummy credentials (:mod:`fanwatch.standin.endpoint`). The handlers
create their boto3 clients from that environment exactly as on Lambda.

The process has one ``os.environ``, so invocations take turns (a lock): one function runs at a time,
which keeps each shard's order and costs little at the demo's rates.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from fanwatch.environment import LAMBDA_MEMORY_VARIABLE
from fanwatch.standin.endpoint import AwsEndpoint
from fanwatch.standin.model import Function

__all__ = ["FunctionContainer", "Handler", "LambdaContext", "function_environment"]

#: ``handler(event, context) -> response``, the signature of a Lambda handler.
Handler = Callable[[dict[str, Any], Any], Any]

_ENVIRONMENT = threading.RLock()
_CONTAINERS = itertools.count(1)


@dataclass(slots=True)
class LambdaContext:
    """What the Lambda runtime passes as ``context`` (the attributes Powertools reads)."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    timeout_s: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    _deadline: float = field(default=0.0)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def function_environment(function: Function, endpoint: AwsEndpoint) -> dict[str, str]:
    """Every variable a handler of ``function`` sees: the runtime's, the endpoint's, the template's."""
    return {
        "AWS_LAMBDA_FUNCTION_NAME": function.name,
        LAMBDA_MEMORY_VARIABLE: str(function.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        **endpoint.environment(),
        **function.environment,
    }


@contextmanager
def _environment(variables: Mapping[str, str], cleared: tuple[str, ...]) -> Iterator[None]:
    with _ENVIRONMENT:
        saved = {k: os.environ.get(k) for k in (*variables, *cleared)}
        for name in cleared:
            os.environ.pop(name, None)
        os.environ.update(variables)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _fresh_module(name: str, container: int) -> ModuleType:
    """A new instance of module ``name``: its own globals, as a new Lambda container has."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None or spec.loader is None:
        raise ImportError(f"handler module {name} is not importable")
    alias = f"{name}.__container{container}__"
    fresh = importlib.util.spec_from_file_location(alias, spec.origin)
    assert fresh is not None and fresh.loader is not None
    module = importlib.util.module_from_spec(fresh)
    sys.modules[alias] = module  # dataclasses look their module up while the class is built
    fresh.loader.exec_module(module)
    return module


class FunctionContainer:
    """``container.invoke(event)`` runs the function's handler as Lambda would, in this process.

    ``handler`` replaces the template's (a test's failing handler, or a demo's handler built with a
    simulated clock); it still runs under the function's environment.
    """

    def __init__(self, function: Function, endpoint: AwsEndpoint, *, handler: Handler | None = None) -> None:
        self.function = function
        self.environment = function_environment(function, endpoint)
        self._cleared = endpoint.cleared()
        self._handler = handler
        self.invocations = 0
        self.errors = 0

    def _resolve(self) -> Handler:
        if self._handler is None:
            module_name, _, attribute = self.function.handler.rpartition(".")
            with _environment(self.environment, self._cleared):  # module-level code may read it
                module = _fresh_module(module_name, next(_CONTAINERS))
            self._handler = getattr(module, attribute)
        return self._handler

    def invoke(self, event: dict[str, Any]) -> Any:
        """The handler's response; its exception (a function error) propagates to the caller."""
        handler = self._resolve()
        context = LambdaContext(
            self.function.name,
            self.function.memory_mb,
            self.function.arn,
            self.function.timeout_s,
            _deadline=time.monotonic() + self.function.timeout_s,
        )
        with _environment(self.environment, self._cleared):
            self.invocations += 1
            try:
                return handler(event, context)
            except Exception:
                self.errors += 1
                raise

    def close(self) -> None:
        prefix = f"{self.function.handler.rpartition('.')[0]}.__container"
        for name in [n for n in sys.modules if n.startswith(prefix)]:
            module = sys.modules[name]
            if getattr(self._handler, "__module__", None) == module.__name__:
                del sys.modules[name]
