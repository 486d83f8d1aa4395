"""The fuzz harness over the core's parsers of untrusted input: IPC frames and request JSON from a
component, recipes and deployment documents from an operator (fixed seed, CI-sized example count;
``bench/fuzz.py`` runs the same targets with tens of thousands)."""

from __future__ import annotations

import pytest

from fanwatch.fuzz.core import CORE_PARSERS
from fanwatch.fuzz.harness import Target, run

EXAMPLES = 100


@pytest.mark.parametrize("target", CORE_PARSERS, ids=[t.name for t in CORE_PARSERS])
def test_only_the_documented_error_escapes_a_core_parser(target: Target) -> None:
    tally = run(target, examples=EXAMPLES)
    assert tally.escaped == 0, "\n\n".join(tally.escapes)
    assert tally.tried == EXAMPLES
    assert tally.accepted > 0 and tally.refused > 0, tally.line()
