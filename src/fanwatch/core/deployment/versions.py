"""Semantic versions and the npm-style requirements recipes use in ``VersionRequirement``.

The nucleus resolves ``ComponentDependencies`` with semver4j in NPM mode: ``>=1.0.0 <2.0.0``,
``^1.2.0``, ``~1.2``, ``1.x``, ``*``, ``1.0.0 - 1.4.0`` and alternatives joined by ``||``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering
from typing import Final

__all__ = ["Requirement", "Version"]

_SEMVER: Final = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)
_PARTIAL: Final = re.compile(
    r"v?(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?(?:-([0-9A-Za-z.-]+))?(?:\+\S*)?"
)
_COMPARATOR: Final = re.compile(r"(>=|<=|>|<|=|\^|~>?|)\s*(\S+)")


@total_ordering
@dataclass(frozen=True, slots=True)
class Version:
    """A semantic version; ordered as semver orders them (a prerelease before its release)."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[int | str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Version:
        match = _SEMVER.fullmatch(text)  # whole: no space, no trailing newline
        if not match:
            raise ValueError(f"{text!r} is not a semantic version (MAJOR.MINOR.PATCH)")
        pre = match.group(4)
        return cls(
            int(match.group(1)),
            int(match.group(2)),
            int(match.group(3)),
            tuple(int(p) if p.isdigit() else p for p in pre.split(".")) if pre else (),
        )

    def _key(self) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
        # a release sorts after its pre-releases; numeric identifiers sort before alphanumeric ones
        pre = tuple((0, p) if isinstance(p, int) else (1, p) for p in self.prerelease)
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, pre)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    def __str__(self) -> str:
        core = f"{self.major}.{self.minor}.{self.patch}"
        return core + ("-" + ".".join(str(p) for p in self.prerelease) if self.prerelease else "")


@dataclass(frozen=True, slots=True)
class _Bound:
    op: str  # one of >=, >, <=, <, =
    version: Version

    def allows(self, v: Version) -> bool:
        if self.op == ">=":
            return v >= self.version
        if self.op == ">":
            return v > self.version
        if self.op == "<=":
            return v <= self.version
        if self.op == "<":
            return v < self.version
        return v == self.version


class Requirement:
    """A parsed ``VersionRequirement``; ``Requirement("^1.0.0").allows(Version.parse("1.4.2"))``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._alternatives = [self._parse_set(part.strip()) for part in text.split("||")]

    def __repr__(self) -> str:
        return f"Requirement({self.text!r})"

    def allows(self, version: Version | str) -> bool:
        v = Version.parse(version) if isinstance(version, str) else version
        return any(all(bound.allows(v) for bound in bounds) for bounds in self._alternatives)

    def _parse_set(self, text: str) -> list[_Bound]:
        if text in {"", "*", "x", "X"}:
            return []
        hyphen = re.fullmatch(r"(\S+)\s+-\s+(\S+)", text)
        if hyphen:
            low, high = hyphen.groups()
            return [*self._expand(">=", low), *self._expand("<=", high)]
        # allow "> = 1.0" style spacing between an operator and its version
        tokens = re.findall(r"(?:>=|<=|>|<|=|\^|~>?)?\s*[^\s<>=^~]+", text)
        if not tokens or "".join(tokens).replace(" ", "") != text.replace(" ", ""):
            raise ValueError(f"cannot read version requirement {self.text!r}")
        bounds: list[_Bound] = []
        for token in tokens:
            match = _COMPARATOR.fullmatch(token.strip())
            if not match:
                raise ValueError(f"cannot read version requirement {self.text!r}")
            bounds.extend(self._expand(match.group(1), match.group(2)))
        return bounds

    def _expand(self, op: str, text: str) -> list[_Bound]:
        match = _PARTIAL.fullmatch(text)
        if not match:
            raise ValueError(f"cannot read version {text!r} in requirement {self.text!r}")
        parts = [None if p is None or p in "xX*" else int(p) for p in match.group(1, 2, 3)]
        pre = match.group(4)
        major, minor, patch = parts
        if major is None:
            return [] if op in {"", "=", ">=", "<=", "^", "~", "~>"} else [_Bound("<", Version(0, 0, 0))]
        exact = minor is not None and patch is not None
        low = Version(major, minor or 0, patch or 0, tuple(pre.split(".")) if pre and exact else ())
        if minor is None:
            next_up = Version(major + 1, 0, 0)
        elif patch is None:
            next_up = Version(major, minor + 1, 0)
        else:
            next_up = low
        if op in {"", "="}:
            return [_Bound("=", low)] if exact else [_Bound(">=", low), _Bound("<", next_up)]
        if op in {"~", "~>"}:
            upper = Version(major + 1, 0, 0) if minor is None else Version(major, minor + 1, 0)
            return [_Bound(">=", low), _Bound("<", upper)]
        if op == "^":
            if major > 0 or minor is None:
                upper = Version(major + 1, 0, 0)
            elif minor > 0 or patch is None:
                upper = Version(0, minor + 1, 0)
            else:
                upper = Version(0, 0, (patch or 0) + 1)
            return [_Bound(">=", low), _Bound("<", upper)]
        if op == ">":
            return [_Bound(">", low)] if exact else [_Bound(">=", next_up)]
        if op == "<=":
            return [_Bound("<=", low)] if exact else [_Bound("<", next_up)]
        return [_Bound(op, low)]
