"""Fuzz targets for what reaches the local core from a component or an operator: IPC frames (the
event-stream decoder), IPC request JSON (every operation's request shape), recipes (YAML/JSON files)
and deployment documents.

Frames are built structure-aware: besides damaged encodings, the harness writes frames whose CRCs
are right around arbitrary header bytes, so the decoder's header parsing is reached, not only its CRC
check.
"""

from __future__ import annotations

import json
import struct
import tempfile
import zlib
from pathlib import Path
from typing import Any

import yaml
from awsiot.greengrasscoreipc import model
from hypothesis import strategies as st

from fanwatch.core.deployment.document import DeploymentDocument, DeploymentError
from fanwatch.core.deployment.recipe import RecipeError, parse_recipe, read_recipe_document
from fanwatch.core.ipc.eventstream import FrameDecoder, FrameError, Header, Message, encode
from fanwatch.core.ipc.shapes import MODEL_OPERATIONS, read_request
from fanwatch.fuzz.harness import Outcome, Target
from fanwatch.fuzz.strategies import damaged, dumps, junk_value, poisoned

__all__ = ["CORE_PARSERS"]

_MAX_FRAME = 256 * 1024


# --- IPC frames -----------------------------------------------------------------------------------

_header_names = st.sampled_from(
    [":message-type", ":message-flags", ":stream-id", ":version", "operation", "x"]
)
_headers = st.lists(
    st.one_of(
        st.builds(Header.string, _header_names, st.text(max_size=30)),
        st.builds(Header.int32, _header_names, st.integers(-(2**31), 2**31 - 1)),
    ),
    max_size=5,
)


def _framed(headers: bytes, payload: bytes) -> bytes:
    """A frame with correct lengths and CRCs around whatever ``headers`` bytes are."""
    total = 12 + len(headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(headers))
    head = prelude + struct.pack(">I", zlib.crc32(prelude)) + headers + payload
    return head + struct.pack(">I", zlib.crc32(head))


_valid_frames = st.builds(lambda h, p: encode(Message(tuple(h), p)), _headers, st.binary(max_size=64))
_frames = st.one_of(
    _valid_frames,
    st.builds(_framed, st.binary(max_size=40), st.binary(max_size=40)),  # header bytes the decoder must parse
    damaged(_valid_frames),
    st.binary(max_size=80),
    st.integers(0, 2**32 - 1).map(lambda n: struct.pack(">III", n, 0, 0)),  # lengths that lie
)
_streams = st.tuples(st.lists(_frames, min_size=1, max_size=4).map(b"".join), st.integers(1, 64))


def _decode(example: tuple[bytes, int]) -> Outcome:
    stream, chunk = example
    decoder = FrameDecoder(max_message_bytes=_MAX_FRAME)
    try:
        for at in range(0, len(stream), chunk):
            for _ in decoder.feed(stream[at : at + chunk]):
                pass
    except FrameError:
        return Outcome.REFUSED
    return Outcome.ACCEPTED


# --- IPC request JSON -----------------------------------------------------------------------------

_requests = st.fixed_dictionaries(
    {},
    optional={
        "topic": st.text(max_size=20),
        "qos": st.sampled_from(["0", "1", 1]),
        "payload": st.one_of(st.text(max_size=20), st.just("aGVsbG8=")),
        "componentName": st.text(max_size=20),
        "keyPath": st.lists(st.text(max_size=8), max_size=4),
        "timestamp": st.floats(allow_nan=True),
        "valueToMerge": st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
        "publishMessage": st.fixed_dictionaries({}, optional={"jsonMessage": st.fixed_dictionaries({})}),
        "state": st.sampled_from(["RUNNING", "ERRORED", "x"]),
    },
)
_request_payloads = st.one_of(
    _requests.map(dumps),
    poisoned(_requests).map(dumps),
    junk_value().map(dumps),
    st.integers(1, 5000).map(lambda n: ("[" * n + "]" * n).encode()),
    st.binary(max_size=60),
)


def _read_request(example: tuple[str, bytes]) -> Outcome:
    operation, payload = example
    try:
        read_request(operation, payload)
    except model.InvalidArgumentsError:
        return Outcome.REFUSED
    return Outcome.ACCEPTED


# --- recipes --------------------------------------------------------------------------------------


def _recipe(name: str, version: str) -> dict[str, Any]:
    return {
        "RecipeFormatVersion": "2020-01-25",
        "ComponentName": name,
        "ComponentVersion": version,
        "ComponentConfiguration": {"DefaultConfiguration": {"interval": 5, "topic": "fanwatch/x"}},
        "ComponentDependencies": {"aws.greengrass.Nucleus": {"VersionRequirement": ">=2.0.0"}},
        "Manifests": [
            {
                "Platform": {"os": "linux"},
                "Lifecycle": {"Run": "python3 {artifacts:path}/main.py"},
                "Artifacts": [{"URI": "s3://BUCKET_NAME/COMPONENT_NAME/COMPONENT_VERSION/main.py"}],
            }
        ],
    }


_recipes = st.builds(
    _recipe,
    st.sampled_from(["com.example.App", "fanwatch.Tachometer", "..", "a\n"]),
    st.sampled_from(["1.0.0", "2.3.4-beta.1", "NEXT_PATCH", "/", "../x", "1.0.0\n"]),
)
_ALIAS_BOMB = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{k}: &{k} [{','.join(['*' + p] * 9)}]\n" for p, k in zip("abcdefgh", "bcdefghi", strict=True)
)
_recipe_texts = st.one_of(
    _recipes.map(lambda r: yaml.safe_dump(r).encode()),
    _recipes.map(lambda r: json.dumps(r).encode()),
    poisoned(_recipes).map(dumps),  # JSON is YAML: the junk literals reach the YAML parser too
    damaged(_recipes.map(lambda r: yaml.safe_dump(r).encode())),
    st.just(_ALIAS_BOMB.encode()),
    st.integers(1, 2000).map(lambda n: ("x: " + "[" * n + "]" * n).encode()),
    st.binary(max_size=200),
)


_FOLDER = Path(tempfile.mkdtemp(prefix="fanwatch-fuzz-"))  # one file, rewritten for each example


def _load_recipe(text: bytes) -> Outcome:
    file = _FOLDER / "recipe.yaml"
    file.write_bytes(text)
    try:
        parse_recipe(read_recipe_document(file), source=str(file))
    except RecipeError:
        return Outcome.REFUSED
    return Outcome.ACCEPTED


# --- deployment documents -------------------------------------------------------------------------

_documents = st.fixed_dictionaries(
    {
        "components": st.dictionaries(
            st.sampled_from(["com.example.App", "fanwatch.EdgeFilter"]),
            st.fixed_dictionaries(
                {"componentVersion": st.sampled_from(["1.0.0", "2.0.0", "x"])},
                optional={
                    "configurationUpdate": st.fixed_dictionaries(
                        {},
                        optional={
                            "merge": st.one_of(
                                st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
                                st.just('{"a": 1}'),
                                st.integers(1, 3000).map(lambda n: '{"a":' * n + "1" + "}" * n),
                            ),
                            "reset": st.lists(st.sampled_from(["", "/a", "/a/0", "a", "/~2"]), max_size=3),
                        },
                    )
                },
            ),
            max_size=3,
        )
    },
    optional={
        "deploymentId": st.text(max_size=10),
        "failureHandlingPolicy": st.sampled_from(["ROLLBACK", "DO_NOTHING", "PANIC"]),
    },
)


def _parse_document(tree: Any) -> Outcome:
    try:
        DeploymentDocument.parse(json.loads(dumps(tree)))
    except DeploymentError:
        return Outcome.REFUSED
    except (ValueError, RecursionError):  # not JSON at all: refused where it is read, before parse
        return Outcome.REFUSED
    return Outcome.ACCEPTED


#: The core's parsers of untrusted input, as fuzz targets.
CORE_PARSERS: tuple[Target, ...] = (
    Target("IPC frame decoder", _streams, _decode, unit="streams"),
    Target(
        "IPC request JSON",
        st.tuples(st.sampled_from(sorted(MODEL_OPERATIONS)), _request_payloads),
        _read_request,
    ),
    Target("recipes", _recipe_texts, _load_recipe, unit="files"),
    Target(
        "deployment documents",
        st.one_of(_documents, poisoned(_documents), junk_value()),
        _parse_document,
        unit="documents",
    ),
)
