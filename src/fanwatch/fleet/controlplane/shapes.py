"""Values checked against botocore's service model, as the AWS service checks them.

botocore's own ``ParamValidator`` checks what a client sends (required members, types, ``min``) but
not enums, ``max`` or patterns: the service does those. So a request that boto3 lets through can still
be refused by AWS, and the local control plane must refuse it too. :func:`check` walks a value
against a shape and returns every problem, in the words AWS's validation messages use
("Value 'x' at 'targetArn' failed to satisfy constraint: Member must satisfy regular expression
pattern: ...").

The same walk checks what the control plane answers (``strict=True``: unknown members are errors
too), so a response that botocore could not parse fails in our tests, not on a user's machine.

Patterns in the models are Java regular expressions, not anchored (Smithy's rule: the pattern must
match somewhere in the value). Python's ``re`` reads them once the few Java-only classes they use
(``\\p{C}``...) are spelled out.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from botocore.model import ListShape, MapShape, Shape, StructureShape

__all__ = ["Problem", "check", "compiled_pattern"]

#: Java's Unicode classes that AWS models use, as Python character-class contents.
_JAVA_CLASSES: Final = {
    r"\p{C}": r"\x00-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff",
    r"\p{Cc}": r"\x00-\x1f\x7f-\x9f",
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One member that failed a constraint: its path (``components.x.componentVersion``) and why."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.message}"


@functools.cache
def compiled_pattern(pattern: str) -> re.Pattern[str]:
    """A model's pattern for Python's ``re`` (raises re.error for a construct we do not translate)."""
    text = pattern
    for java, python in _JAVA_CLASSES.items():
        # inside a class ([^\p{C}]) the contents drop in; alone (\p{C}) they need brackets
        text = text.replace(f"[{java}", f"[{python}").replace(f"^{java}", f"^{python}")
        text = text.replace(java, f"[{python}]")
    return re.compile(text)


def _shown(value: object) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:77] + "..."


def _fail(path: str, value: object, constraint: str) -> Problem:
    return Problem(
        path,
        f"Value '{_shown(value)}' at '{path}' failed to satisfy constraint: Member must {constraint}",
    )


def check(shape: Shape, value: Any, path: str = "", *, strict: bool = False) -> list[Problem]:
    """Every problem of ``value`` against ``shape`` (empty when it is valid)."""
    problems: list[Problem] = []
    _check(shape, value, path, strict, problems)
    return problems


def _check(shape: Shape, value: Any, path: str, strict: bool, out: list[Problem]) -> None:
    kind = shape.type_name
    where = path or shape.name
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        if not isinstance(value, Mapping):
            out.append(_fail(where, value, "be an object"))
            return
        for name in shape.required_members:
            if value.get(name) is None:
                out.append(Problem(_join(path, name), f"Member '{_join(path, name)}' must not be null"))
        for name, member_value in value.items():
            member = shape.members.get(name)
            if member is None:
                if strict:
                    out.append(Problem(_join(path, name), f"'{_join(path, name)}' is not in {shape.name}"))
                continue
            if member_value is not None:
                _check(member, member_value, _join(path, name), strict, out)
        return
    if kind == "list":
        assert isinstance(shape, ListShape)
        if not isinstance(value, list | tuple):
            out.append(_fail(where, value, "be a list"))
            return
        _length(shape, value, len(value), where, out)
        for index, item in enumerate(value):
            _check(shape.member, item, f"{where}.{index + 1}", strict, out)
        return
    if kind == "map":
        assert isinstance(shape, MapShape)
        if not isinstance(value, Mapping):
            out.append(_fail(where, value, "be a map"))
            return
        _length(shape, value, len(value), where, out)
        for key, item in value.items():
            _check(shape.key, key, f"{where}.{key}(key)", strict, out)
            _check(shape.value, item, f"{where}.{key}", strict, out)
        return
    _scalar(shape, value, where, out)


def _scalar(shape: Shape, value: Any, where: str, out: list[Problem]) -> None:
    kind = shape.type_name
    metadata = shape.metadata
    if kind == "string":
        if not isinstance(value, str):
            out.append(_fail(where, value, "be a string"))
            return
        enum = shape.enum
        if enum and value not in enum:
            out.append(_fail(where, value, f"satisfy enum value set: [{', '.join(enum)}]"))
        _length(shape, value, len(value), where, out)
        pattern = metadata.get("pattern")
        if pattern is not None and not compiled_pattern(pattern).search(value):
            out.append(_fail(where, value, f"satisfy regular expression pattern: {pattern}"))
    elif kind in {"integer", "long"}:
        if isinstance(value, bool) or not isinstance(value, int):
            out.append(_fail(where, value, "be an integer"))
            return
        _range(shape, value, where, out)
    elif kind in {"double", "float"}:
        if isinstance(value, bool) or not isinstance(value, int | float):
            out.append(_fail(where, value, "be a number"))
            return
        _range(shape, value, where, out)
    elif kind == "boolean":
        if not isinstance(value, bool):
            out.append(_fail(where, value, "be a boolean"))
    elif kind == "blob":
        if not isinstance(value, bytes | bytearray):
            out.append(_fail(where, value, "be binary data"))
            return
        _length(shape, value, len(value), where, out)
    elif kind == "timestamp" and (
        not isinstance(value, dt.datetime | int | float) or isinstance(value, bool)
    ):
        out.append(_fail(where, value, "be a timestamp"))


def _length(shape: Shape, value: object, length: int, where: str, out: list[Problem]) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and length < low:
        out.append(_fail(where, value, f"have length greater than or equal to {low}"))
    if high is not None and length > high:
        out.append(_fail(where, value, f"have length less than or equal to {high}"))


def _range(shape: Shape, value: float, where: str, out: list[Problem]) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and value < low:
        out.append(_fail(where, value, f"have value greater than or equal to {low}"))
    if high is not None and value > high:
        out.append(_fail(where, value, f"have value less than or equal to {high}"))


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
