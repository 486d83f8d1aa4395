"""Poison payloads: whatever a broken or hostile device sends, the contract answers ContractError.

Each case once escaped as another exception (ValueError from Python's int-to-str limit, OverflowError,
OSError, RecursionError...), which a handler treated as a retryable failure, so one device could hold
a shard. The refusal must also name the field, so the dead letter says what was wrong.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fanwatch.cloud.events import parse_event
from fanwatch.telemetry import ContractError, parse_alert, parse_status, parse_telemetry

PARSERS: dict[str, Callable[..., Any]] = {
    "telemetry": parse_telemetry,
    "alert": parse_alert,
    "status": parse_status,
    "event": parse_event,
}
POISON = json.loads((Path(__file__).parents[1] / "events" / "mqtt" / "poison.json").read_text())


@pytest.mark.parametrize("case", POISON, ids=[c["case"] for c in POISON])
def test_a_poison_payload_is_a_contract_error_naming_its_field(case: dict[str, str]) -> None:
    for form in (case["payload"], case["payload"].encode()):
        with pytest.raises(ContractError) as info:
            PARSERS[case["kind"]](form)
        assert info.value.field == case["field"], str(info.value)
        assert len(str(info.value)) < 300  # a description, not the value


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"TIME": 10**400, "FANID": "fan1", "RPM": 1485}, "TIME"),
        ({"TIME": "2026-11-27T19:35:20", "FANID": 10**5000, "RPM": 1485}, "FANID"),
        ({"TIME": "2026-11-27T19:35:20", "FANID": "fan1", "RPM": 10**5000}, "RPM"),
        ({**json.loads(POISON[0]["payload"].replace("9" * 5000, "7")), "seq": 10**5000}, "seq"),
    ],
)
def test_a_mapping_from_another_decoder_is_bounded_the_same_way(payload: dict[str, Any], field: str) -> None:
    with pytest.raises(ContractError) as info:
        parse_telemetry(payload)
    assert info.value.field == field, str(info.value)


@pytest.mark.parametrize(
    "payload",
    [b"\xc3\x28", b'{"thing": "\xed\xa0\x80"}', b"\x00" * 10, b"\xef\xbb\xbf" + b"{}"],
    ids=["invalid UTF-8", "encoded surrogate", "NULs", "BOM"],
)
def test_bytes_that_are_not_utf8_json_are_refused_as_a_whole(payload: bytes) -> None:
    for parse in (parse_telemetry, parse_alert, parse_status, parse_event):
        with pytest.raises(ContractError) as info:
            parse(payload)
        assert info.value.field in {"$", "schema"}, str(info.value)


def test_the_poison_cases_are_valid_messages_but_for_their_poison() -> None:
    """Each case breaks one field, so the refusal above is about that field and nothing else."""
    antidotes = {"9" * 5000: "3", "9" * 400: "3", "NaN": "3", "-Infinity": "3", "Infinity": "3", "1e400": "3"}
    for case in POISON:
        if case["field"] not in {"readings[0].rpm", "seq", "rpm", "score", "uptime_s", "counters.readings"}:
            continue
        payload = case["payload"]
        for poison, antidote in antidotes.items():
            payload = payload.replace(poison, antidote)
        PARSERS[case["kind"]](payload)
