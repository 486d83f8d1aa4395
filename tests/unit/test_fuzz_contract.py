"""The fuzz harness over every parser of a device's messages (fixed seed, CI-sized example count;
``bench/fuzz.py`` runs the same targets with tens of thousands)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fanwatch.fuzz.harness import PARSERS, Target, run

EXAMPLES = 150


@pytest.mark.parametrize("target", PARSERS, ids=[t.name for t in PARSERS])
def test_only_a_clear_contract_error_escapes_a_parser(target: Target) -> None:
    tally = run(target, examples=EXAMPLES)
    assert tally.escaped == 0, "\n\n".join(tally.escapes)
    assert tally.tried == EXAMPLES
    # the examples reach both sides of the contract, or the fuzz proves nothing
    assert tally.accepted > 0 and tally.refused > 0, tally.line()


def test_the_harness_counts_what_escapes_and_keeps_the_example() -> None:
    def naive(payload: bytes, *, thing: Any = None) -> Any:
        return json.loads(payload)["readings"][0]["rpm"] + 0.0  # any error escapes

    target = PARSERS[0]
    tally = run(Target("naive", target.examples, _attempt_with(naive)), examples=50)
    assert tally.escaped > 0 and len(tally.escapes) == min(tally.escaped, 5)
    assert "Traceback" in tally.escapes[0]


def _attempt_with(parse: Any) -> Any:
    from fanwatch.fuzz.harness import Outcome

    def attempt(example: tuple[bytes, str | None]) -> Outcome:
        parse(example[0], thing=example[1])
        return Outcome.ACCEPTED

    return attempt
