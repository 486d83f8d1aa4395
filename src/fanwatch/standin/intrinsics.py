"""CloudFormation's intrinsic functions, evaluated against the stand-in's names.

The template says ``{"Ref": "DataDeadLettersE8DA58CB"}`` where a handler needs a queue URL; this module
turns such values into what CloudFormation would have given at deploy time, with the stand-in's
physical names and the parameters' defaults (or the values the caller chose). It evaluates lazily,
value by value, so a template may use functions the stand-in never needs (in IAM policies, say).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from fanwatch.errors import FanwatchError

__all__ = ["NO_VALUE", "IntrinsicError", "Resolver"]


class IntrinsicError(FanwatchError, ValueError):
    """A template value the stand-in cannot evaluate; the message names the function and the path."""


class _NoValue:
    """``AWS::NoValue``: the property is removed, as CloudFormation does."""

    def __repr__(self) -> str:
        return "NO_VALUE"


NO_VALUE: Final = _NoValue()

_SUB: Final = re.compile(r"\$\{(!?)([^}]+)\}")

#: ``Ref``/``Fn::GetAtt`` of a resource: (logical id, attribute or None for Ref) -> value.
Attributes = Callable[[str, str | None], Any]


class Resolver:
    """Evaluates template values; ``attributes`` answers Ref and GetAtt for resources."""

    def __init__(
        self,
        template: Mapping[str, Any],
        *,
        parameters: Mapping[str, Any],
        pseudo: Mapping[str, str],
        attributes: Attributes,
    ) -> None:
        self._template = template
        self._parameters = dict(parameters)
        self._pseudo = dict(pseudo)
        self._attributes = attributes

    def parameter(self, name: str) -> Any:
        if name in self._pseudo:
            return self._pseudo[name]
        if name not in self._parameters:
            raise IntrinsicError(f"Ref {name}: neither a parameter, a pseudo parameter nor a resource")
        return self._parameters[name]

    def condition(self, name: str) -> bool:
        conditions = self._template.get("Conditions", {})
        if name not in conditions:
            raise IntrinsicError(f"condition {name} is not defined")
        return bool(self.resolve(conditions[name], f"Conditions.{name}"))

    def resolve(self, value: Any, path: str = "$") -> Any:
        """``value`` with every intrinsic function evaluated; ``NO_VALUE`` where a property is removed."""
        if isinstance(value, list):
            items = [self.resolve(v, f"{path}[{i}]") for i, v in enumerate(value)]
            return [v for v in items if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref" or key.startswith("Fn::") or key == "Condition":
                return self._function(key, arg, path)
        out = {k: self.resolve(v, f"{path}.{k}") for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not NO_VALUE}

    def _function(self, name: str, arg: Any, path: str) -> Any:
        where = f"{name} at {path}"
        if name == "Ref":
            if arg == "AWS::NoValue":
                return NO_VALUE
            if arg in self._template.get("Resources", {}):
                return self._attributes(arg, None)
            return self.parameter(arg)
        if name == "Fn::GetAtt":
            logical, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
            return self._attributes(logical, self.resolve(attribute, path))
        if name == "Condition":
            return self.condition(arg)
        if name == "Fn::If":
            condition, yes, no = arg
            return self.resolve(yes if self.condition(condition) else no, path)
        if name == "Fn::Equals":
            left, right = (self.resolve(a, path) for a in arg)
            return str(left) == str(right)
        if name == "Fn::Not":
            return not self.resolve(arg[0], path)
        if name == "Fn::And":
            return all(self.resolve(a, path) for a in arg)
        if name == "Fn::Or":
            return any(self.resolve(a, path) for a in arg)
        if name == "Fn::Join":
            separator, items = arg
            return str(separator).join(str(v) for v in self.resolve(items, path))
        if name == "Fn::Split":
            separator, text = arg
            return str(self.resolve(text, path)).split(separator)
        if name == "Fn::Select":
            index, items = arg
            resolved = self.resolve(items, path)
            try:
                return resolved[int(self.resolve(index, path))]
            except (IndexError, ValueError, TypeError):
                raise IntrinsicError(f"{where}: index {index} out of {resolved!r}") from None
        if name == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else arg
            return self._sub(text, {k: self.resolve(v, path) for k, v in variables.items()}, where)
        if name == "Fn::FindInMap":
            table, first, second = (self.resolve(a, path) for a in arg)
            try:
                return self._template["Mappings"][table][first][second]
            except KeyError:
                raise IntrinsicError(f"{where}: no {table}/{first}/{second} in Mappings") from None
        raise IntrinsicError(f"{where}: the local stand-in does not evaluate {name}")

    def _sub(self, text: str, variables: Mapping[str, Any], where: str) -> str:
        def one(match: re.Match[str]) -> str:
            literal, name = match.groups()
            if literal:
                return "${" + name + "}"
            if name in variables:
                return str(variables[name])
            if "." in name:
                logical, attribute = name.split(".", 1)
                return str(self._attributes(logical, attribute))
            if name in self._template.get("Resources", {}):
                return str(self._attributes(name, None))
            return str(self.parameter(name))

        return _SUB.sub(one, text)
