"""The root of fanwatch's exceptions: ``except FanwatchError`` catches whatever fanwatch refused or
could not do, and nothing else.

Each subsystem raises its own exceptions, named for what went wrong (a recipe the nucleus would
refuse, a message off the contract, a configuration value out of range), all derived from
:class:`FanwatchError`; those that are about a bad value also derive from :class:`ValueError`, so
callers that caught ``ValueError`` before still do. This module imports nothing of fanwatch, so the
edge on a Pi and the Lambdas can use it.
"""

from __future__ import annotations

__all__ = ["FanwatchError"]


class FanwatchError(Exception):
    """Something fanwatch refused or could not do; the message says what, and what to change."""
