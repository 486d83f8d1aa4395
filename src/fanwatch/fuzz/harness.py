"""The fuzz harness: a target is a parser or handler of untrusted input and the one way it may refuse.

:func:`run` feeds a target Hypothesis examples from a fixed seed and tallies, per example, whether it
was accepted, refused with a clear error of the documented type, or escaped (anything else: another
exception, an unclear refusal, a handler that failed its batch or lost count). The suite runs it with a
few hundred examples per target; ``bench/fuzz.py`` with tens of thousands.
"""

from __future__ import annotations

import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from fanwatch.cloud.events import Anomaly, encode_anomaly, parse_event
from fanwatch.errors import FanwatchError
from fanwatch.fuzz.strategies import (
    THINGS,
    alert_message,
    anomaly_message,
    legacy_message,
    payloads,
    status_message,
    telemetry_message,
)
from fanwatch.telemetry import (
    LEGACY_SCHEMA,
    TELEMETRY_SCHEMA,
    ContractError,
    Telemetry,
    encode,
    parse_alert,
    parse_status,
    parse_telemetry,
)

__all__ = ["PARSERS", "Escaped", "Outcome", "Tally", "Target", "clear_refusal", "run"]

#: Longest refusal message that still reads as a description rather than a dump of the input.
MAX_REFUSAL_CHARS = 400


class Outcome(StrEnum):
    """What a target did with an example it did not let escape: took it, or refused it with its documented
    error."""

    ACCEPTED = "accepted"
    REFUSED = "refused"


class Escaped(FanwatchError, AssertionError):
    """The target broke its promise on this example (raised by a target's check)."""


@dataclass(frozen=True, slots=True)
class Target:
    """``attempt`` handles one example and returns its outcome (for a batch, the outcome of each of its
    records), or raises :class:`Escaped`."""

    name: str
    examples: st.SearchStrategy[Any]
    attempt: Callable[[Any], Outcome | Counter[Outcome]]
    unit: str = "payloads"  # what one example is, for the report


@dataclass(slots=True)
class Tally:
    """A target's run in figures: examples tried, items in them, how many were accepted, refused and
    escaped, and the first escapes with their examples."""

    target: str
    unit: str
    tried: int = 0
    items: int = 0  # payloads, or records in the batches
    accepted: int = 0
    refused: int = 0
    escaped: int = 0
    escapes: list[str] = field(default_factory=list)  # the first few, with the example

    def line(self) -> str:
        records = f" ({self.items:,} records)" if self.unit == "batches" else ""
        return (
            f"{self.target:<20} {self.tried:>7,} {self.unit}{records}: {self.accepted:,} accepted, "
            f"{self.refused:,} refused with a clear error, {self.escaped:,} escaped"
        )


def clear_refusal(exc: ContractError) -> bool:
    """A refusal a person can act on: it starts with the field's path and describes, not dumps."""
    text = str(exc)
    return bool(exc.field) and text.startswith(f"{exc.field}: ") and len(text) <= MAX_REFUSAL_CHARS


def run(target: Target, *, examples: int, seed_value: int = 14, keep: int = 5) -> Tally:
    """Feed ``target`` ``examples`` examples drawn from a fixed seed; never stops at an escape."""
    tally = Tally(target.name, target.unit)

    @seed(seed_value)
    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(target.examples)
    def trial(example: Any) -> None:
        tally.tried += 1
        try:
            outcome = target.attempt(example)
        except Exception as exc:
            tally.escaped += 1
            if len(tally.escapes) < keep:
                where = "".join(traceback.format_exception(exc, limit=-3))
                tally.escapes.append(f"{_brief(example)}\n{where}")
            return
        counts = outcome if isinstance(outcome, Counter) else Counter([outcome])
        tally.items += counts.total()
        tally.accepted += counts[Outcome.ACCEPTED]
        tally.refused += counts[Outcome.REFUSED]

    trial()
    return tally


def _brief(example: Any) -> str:
    text = repr(example)
    return text if len(text) <= 600 else f"{text[:600]}… ({len(text):,} characters)"


# --- the parsers ----------------------------------------------------------------------------------


def _parser(
    parse: Callable[..., Any], write: Callable[[Any], bytes]
) -> Callable[[tuple[bytes, str | None]], Outcome]:
    def attempt(example: tuple[bytes, str | None]) -> Outcome:
        payload, thing = example
        try:
            message = parse(payload, thing=thing)
        except ContractError as exc:
            if not clear_refusal(exc):
                raise Escaped(f"unclear refusal: {str(exc)[:200]!r}") from None
            return Outcome.REFUSED
        write(message)  # what the contract accepts can be written again (no NaN, no bad text)
        return Outcome.ACCEPTED

    return attempt


def _write_telemetry(message: Telemetry) -> bytes:
    if message.schema == LEGACY_SCHEMA:  # read, never written: write its readings as today's format
        message = replace(message, schema=TELEMETRY_SCHEMA, boot="legacy", seq=0)
    return encode(message)


def _write_event(event: Any) -> bytes:
    return encode_anomaly(event) if isinstance(event, Anomaly) else encode(event)


def _from(messages: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[tuple[bytes, str | None]]:
    # None (the sender unknown) half the time, so valid messages reach acceptance often
    senders = st.one_of(st.none(), st.none(), st.sampled_from(THINGS), st.text(max_size=12))
    return st.tuples(payloads(messages), senders)


#: Every parser of a device's (or the anomalies stream's) messages, as fuzz targets.
PARSERS: tuple[Target, ...] = (
    Target(
        "parse_telemetry",
        _from(st.one_of(telemetry_message(), legacy_message())),
        _parser(parse_telemetry, _write_telemetry),
    ),
    Target("parse_alert", _from(alert_message()), _parser(parse_alert, encode)),
    Target("parse_status", _from(status_message()), _parser(parse_status, encode)),
    Target(
        "parse_event",
        _from(st.one_of(anomaly_message(), alert_message())),
        _parser(parse_event, _write_event),
    ),
)
