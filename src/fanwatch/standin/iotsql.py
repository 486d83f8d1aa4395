"""A subset of the AWS IoT SQL language (version 2016-03-23): parse once, evaluate per message.

Supported: ``SELECT`` with ``*``, expressions and ``AS`` aliases; ``FROM '<topic filter>'`` with ``+``
and ``#``; ``WHERE``; literals (numbers, 'strings', true/false, null); JSON paths (``a.b``, ``a[0]``);
``= <> != < <= > >=``, ``+ - * / %``, ``AND OR NOT``, ``IS [NOT] NULL``/``UNDEFINED``; the functions
``topic(n)``, ``timestamp()``, ``clientid()``, ``newuuid()``, ``lower``, ``upper``, ``abs``,
``concat``, ``isUndefined``, ``isNull``. Anything else (nested SELECT, ``CASE``, ``get_thing_shadow``,
``encode``, …) is refused when the rule is loaded, with the construct named, never silently ignored.

Values follow IoT's rules: a missing path is *undefined*, which drops an aliased column from the
output and makes a comparison undefined (a ``WHERE`` that is not true does not fire). ``substitute``
fills the ``${expression}`` templates of action settings (a partition key, an S3 key).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from fanwatch.errors import FanwatchError

__all__ = ["UNDEFINED", "MessageContext", "ParsedRule", "SqlError", "parse", "substitution", "topic_matches"]


class SqlError(FanwatchError, ValueError):
    """SQL the local rules engine cannot parse or does not support; the message says what and where."""


class _Undefined:
    def __repr__(self) -> str:
        return "UNDEFINED"

    def __bool__(self) -> bool:
        return False


UNDEFINED: Final = _Undefined()


@dataclass(frozen=True, slots=True)
class MessageContext:
    """What a rule sees of one message besides its payload."""

    topic: str  # without the Basic Ingest prefix
    payload: Any  # parsed JSON, or UNDEFINED when the payload is not JSON
    raw: bytes
    client_id: str
    timestamp_ms: int


# --- tokens ------------------------------------------------------------------------------------

_TOKEN: Final = re.compile(
    r"\s*(?:(?P<number>\d+\.\d*|\.\d+|\d+)|(?P<string>'(?:[^']|'')*')"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*|`[^`]+`)|(?P<op><>|!=|<=|>=|\|\||[=<>+\-*/%(),.\[\]]))"
)
_KEYWORDS: Final = frozenset(
    {"select", "from", "where", "as", "and", "or", "not", "is", "null", "true", "false", "undefined"}
)
_UNSUPPORTED_KEYWORDS: Final = frozenset({"case", "when", "then", "else", "end", "in", "like", "between"})


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # number, string, name, keyword, op, end
    text: str
    at: int


def _tokens(sql: str) -> list[_Token]:
    out, at = [], 0
    while at < len(sql):
        if sql[at:].strip() == "":
            break
        match = _TOKEN.match(sql, at)
        if match is None or match.end() == at:
            raise SqlError(f"unexpected {sql[at : at + 10].strip()!r} at {at}: {sql}")
        kind = match.lastgroup or "op"
        text = match.group(kind)
        start = match.start(kind)
        if kind == "name" and text.lower() in _KEYWORDS:
            kind, text = "keyword", text.lower()
        elif kind == "name" and text.lower() in _UNSUPPORTED_KEYWORDS:
            raise SqlError(f"{text.upper()} is not supported by the local rules engine: {sql}")
        out.append(_Token(kind, text, start))
        at = match.end()
    out.append(_Token("end", "", len(sql)))
    return out


# --- the tree: each node is a function of the message context ------------------------------------

Expression = Callable[[MessageContext], Any]


def _path(steps: tuple[str | int, ...]) -> Expression:
    def get(ctx: MessageContext) -> Any:
        value: Any = ctx.payload
        for step in steps:
            in_list = isinstance(step, int) and isinstance(value, list) and -len(value) <= step < len(value)
            if in_list or (isinstance(step, str) and isinstance(value, Mapping) and step in value):
                value = value[step]
            else:
                return UNDEFINED
        return value

    return get


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def _compare(op: str, left: Any, right: Any) -> Any:
    if left is UNDEFINED or right is UNDEFINED:
        return UNDEFINED
    if op in ("=", "<>", "!="):
        equal = (left == right and type(left) is type(right)) or (
            _number(left) is not None and _number(right) is not None and left == right
        )
        return equal if op == "=" else not equal
    a, b = _number(left), _number(right)
    if a is None or b is None:
        if isinstance(left, str) and isinstance(right, str):
            a, b = left, right  # type: ignore[assignment]
        else:
            return UNDEFINED
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]  # type: ignore[operator]


def _arithmetic(op: str, left: Any, right: Any) -> Any:
    if op == "||":
        if left is UNDEFINED or right is UNDEFINED:
            return UNDEFINED
        return f"{_text(left)}{_text(right)}"
    a, b = _number(left), _number(right)
    if a is None or b is None:
        return UNDEFINED
    if op in ("/", "%") and b == 0:
        return UNDEFINED
    result = {
        "+": lambda: a + b,
        "-": lambda: a - b,
        "*": lambda: a * b,
        "/": lambda: a / b,
        "%": lambda: a % b,
    }
    return result[op]()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else str(value)
    if isinstance(value, dict | list):
        import json

        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _topic(ctx: MessageContext, *args: Any) -> Any:
    if not args:
        return ctx.topic
    index = _number(args[0])
    levels = ctx.topic.split("/")
    if index is None or not 1 <= int(index) <= len(levels):
        return UNDEFINED
    return levels[int(index) - 1]


#: name -> (lowest, highest number of arguments, implementation(ctx, *args))
_FUNCTIONS: Final[dict[str, tuple[int, int, Callable[..., Any]]]] = {
    "topic": (0, 1, _topic),
    "timestamp": (0, 0, lambda ctx: ctx.timestamp_ms),
    "clientid": (0, 0, lambda ctx: ctx.client_id),
    "newuuid": (0, 0, lambda ctx: str(uuid.uuid4())),
    "lower": (1, 1, lambda ctx, s: s.lower() if isinstance(s, str) else UNDEFINED),
    "upper": (1, 1, lambda ctx, s: s.upper() if isinstance(s, str) else UNDEFINED),
    "abs": (1, 1, lambda ctx, x: abs(x) if _number(x) is not None else UNDEFINED),
    "concat": (2, 99, lambda ctx, *xs: UNDEFINED if UNDEFINED in xs else "".join(_text(x) for x in xs)),
    "isundefined": (1, 1, lambda ctx, x: x is UNDEFINED),
    "isnull": (1, 1, lambda ctx, x: x is None),
}


class _Parser:
    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.tokens = _tokens(sql)
        self.at = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.at]

    def take(self, kind: str, text: str | None = None) -> _Token | None:
        token = self.token
        if token.kind == kind and (text is None or token.text == text):
            self.at += 1
            return token
        return None

    def expect(self, kind: str, text: str | None = None) -> _Token:
        token = self.take(kind, text)
        if token is None:
            wanted = text or kind
            got = self.token.text or "the end"
            raise SqlError(f"expected {wanted} at {self.token.at}, found {got!r}: {self.sql}")
        return token

    def expression(self) -> Expression:
        return self.disjunction()

    def disjunction(self) -> Expression:
        left = self.conjunction()
        while self.take("keyword", "or"):
            right = self.conjunction()
            left = (lambda a, b: lambda ctx: bool(a(ctx)) or bool(b(ctx)))(left, right)
        return left

    def conjunction(self) -> Expression:
        left = self.negation()
        while self.take("keyword", "and"):
            right = self.negation()
            left = (lambda a, b: lambda ctx: bool(a(ctx)) and bool(b(ctx)))(left, right)
        return left

    def negation(self) -> Expression:
        if self.take("keyword", "not"):
            inner = self.negation()
            return lambda ctx: (lambda v: UNDEFINED if v is UNDEFINED else not v)(inner(ctx))
        return self.comparison()

    def comparison(self) -> Expression:
        left = self.additive()
        if self.take("keyword", "is"):
            negate = bool(self.take("keyword", "not"))
            if self.take("keyword", "null"):
                test: Callable[[Any], bool] = lambda v: v is None  # noqa: E731
            elif self.take("keyword", "undefined"):
                test = lambda v: v is UNDEFINED  # noqa: E731
            else:
                raise SqlError(
                    f"IS must be followed by [NOT] NULL or UNDEFINED at {self.token.at}: {self.sql}"
                )
            return (lambda f, t, n: lambda ctx: t(f(ctx)) != n)(left, test, negate)
        token = self.token
        if token.kind == "op" and token.text in ("=", "<>", "!=", "<", "<=", ">", ">="):
            self.at += 1
            right = self.additive()
            return (lambda op, a, b: lambda ctx: _compare(op, a(ctx), b(ctx)))(token.text, left, right)
        return left

    def additive(self) -> Expression:
        left = self.multiplicative()
        while self.token.kind == "op" and self.token.text in ("+", "-", "||"):
            op = self.expect("op").text
            right = self.multiplicative()
            left = (lambda o, a, b: lambda ctx: _arithmetic(o, a(ctx), b(ctx)))(op, left, right)
        return left

    def multiplicative(self) -> Expression:
        left = self.unary()
        while self.token.kind == "op" and self.token.text in ("*", "/", "%"):
            op = self.expect("op").text
            right = self.unary()
            left = (lambda o, a, b: lambda ctx: _arithmetic(o, a(ctx), b(ctx)))(op, left, right)
        return left

    def unary(self) -> Expression:
        if self.take("op", "-"):
            inner = self.unary()
            return lambda ctx: _arithmetic("-", 0, inner(ctx))
        return self.primary()

    def primary(self) -> Expression:
        token = self.token
        if self.take("number"):
            value: Any = float(token.text) if "." in token.text else int(token.text)
            return lambda ctx: value
        if self.take("string"):
            text = token.text[1:-1].replace("''", "'")
            return lambda ctx: text
        if self.take("keyword", "true") or self.take("keyword", "false"):
            flag = token.text == "true"
            return lambda ctx: flag
        if self.take("keyword", "null"):
            return lambda ctx: None
        if self.take("op", "("):
            if self.token.kind == "keyword" and self.token.text == "select":
                raise SqlError(f"nested SELECT is not supported by the local rules engine: {self.sql}")
            inner = self.expression()
            self.expect("op", ")")
            return inner
        if self.take("name"):
            name = token.text.strip("`")
            if self.take("op", "("):
                return self.call(name, token)
            steps: list[str | int] = [name]
            while True:
                if self.take("op", "."):
                    steps.append(self.expect("name").text.strip("`"))
                elif self.take("op", "["):
                    steps.append(int(self.expect("number").text))
                    self.expect("op", "]")
                else:
                    break
            return _path(tuple(steps))
        raise SqlError(f"unexpected {token.text or 'end'!r} at {token.at}: {self.sql}")

    def call(self, name: str, token: _Token) -> Expression:
        spec = _FUNCTIONS.get(name.lower())
        if spec is None:
            raise SqlError(f"function {name}() is not supported by the local rules engine: {self.sql}")
        args: list[Expression] = []
        if not self.take("op", ")"):
            args.append(self.expression())
            while self.take("op", ","):
                args.append(self.expression())
            self.expect("op", ")")
        low, high, implementation = spec
        if not low <= len(args) <= high:
            raise SqlError(f"{name}() takes {low}..{high} argument(s), {len(args)} given at {token.at}")
        return lambda ctx: implementation(ctx, *(a(ctx) for a in args))


# --- a rule --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Column:
    expression: Expression | None  # None: ``*``
    alias: str | None


@dataclass(frozen=True, slots=True)
class ParsedRule:
    """A parsed rule: :meth:`select` the output of a message, or None when ``WHERE`` is not true."""

    sql: str
    topic_filter: str | None
    columns: tuple[_Column, ...]
    where: Expression | None

    def matches(self, topic: str) -> bool:
        return self.topic_filter is not None and topic_matches(self.topic_filter, topic)

    def select(self, ctx: MessageContext) -> Any:
        """The rule's output (a dict, or the raw payload for ``SELECT *`` of a non-JSON message)."""
        if self.where is not None and self.where(ctx) is not True:
            return None
        if len(self.columns) == 1 and self.columns[0].expression is None and ctx.payload is UNDEFINED:
            return ctx.raw  # SELECT * passes a binary payload through as it is
        out: dict[str, Any] = {}
        for i, column in enumerate(self.columns):
            if column.expression is None:
                if isinstance(ctx.payload, Mapping):
                    out.update(ctx.payload)
                continue
            value = column.expression(ctx)
            if value is UNDEFINED:
                continue
            if column.alias is None and isinstance(value, Mapping):
                out.update(value)  # an unaliased object's keys become columns
            else:
                out[column.alias or f"_{i + 1}"] = value
        return out


def parse(sql: str) -> ParsedRule:
    """Parse ``sql``; :class:`SqlError` when it is not in the supported subset."""
    p = _Parser(sql)
    p.expect("keyword", "select")
    columns: list[_Column] = []
    while True:
        if p.take("op", "*"):
            columns.append(_Column(None, None))
        else:
            start = p.token
            expression = p.expression()
            alias = None
            if p.take("keyword", "as"):
                alias = p.expect("name").text.strip("`")
            elif start.kind == "name" and p.tokens[p.at - 1] is start:
                alias = start.text.strip("`")  # a bare name keeps its name
            columns.append(_Column(expression, alias))
        if not p.take("op", ","):
            break
    topic_filter = None
    if p.take("keyword", "from"):
        topic_filter = p.expect("string").text[1:-1]
        _check_filter(topic_filter, sql)
    where = p.expression() if p.take("keyword", "where") else None
    if p.token.kind != "end":
        raise SqlError(f"unexpected {p.token.text!r} at {p.token.at}: {sql}")
    return ParsedRule(sql, topic_filter, tuple(columns), where)


def _check_filter(topic_filter: str, sql: str) -> None:
    levels = topic_filter.split("/")
    for i, level in enumerate(levels):
        if ("#" in level and (level != "#" or i != len(levels) - 1)) or ("+" in level and level != "+"):
            raise SqlError(f"FROM {topic_filter!r} is not a valid MQTT topic filter: {sql}")


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT matching: ``+`` one level, ``#`` the rest; wildcards never match a leading ``$`` level."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    pattern, levels = topic_filter.split("/"), topic.split("/")
    for i, part in enumerate(pattern):
        if part == "#":
            return True
        if i >= len(levels) or (part != "+" and part != levels[i]):
            return False
    return len(pattern) == len(levels)


_TEMPLATE: Final = re.compile(r"\$\{([^}]*)\}")


def substitution(template: str) -> Callable[[MessageContext], str]:
    """An action setting's ``${expression}`` parts, parsed now (:class:`SqlError` if unsupported) and
    evaluated per message by the function returned (an undefined value becomes empty text)."""
    parts: list[str | Expression] = []
    at = 0
    for match in _TEMPLATE.finditer(template):
        parts.append(template[at : match.start()])
        p = _Parser(match.group(1))
        expression = p.expression()
        if p.token.kind != "end":
            raise SqlError(f"unexpected {p.token.text!r} in substitution template ${{{match.group(1)}}}")
        parts.append(expression)
        at = match.end()
    parts.append(template[at:])

    def fill(ctx: MessageContext) -> str:
        out = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
            else:
                value = part(ctx)
                out.append("" if value is UNDEFINED else _text(value))
        return "".join(out)

    return fill
