"""Firehose's record format conversion: JSON documents -> Parquet with a Glue table's schema (pyarrow).

Firehose reads each JSON document with the OpenX JSON SerDe (keys matched to columns without regard to
case, missing keys are nulls, timestamps as ISO-8601 text or epoch milliseconds) and writes columns of
the Glue types. A document that does not fit the schema fails the conversion of its record, which then
goes to the error prefix (``format-conversion-failed``) instead of the table.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from fanwatch.errors import FanwatchError
from fanwatch.standin.model import GlueColumn

__all__ = ["ConversionError", "arrow_schema", "arrow_type", "parquet_bytes", "to_row"]

_SCALARS: Final = {
    "string": pa.string(),
    "varchar": pa.string(),
    "char": pa.string(),
    "bigint": pa.int64(),
    "int": pa.int32(),
    "integer": pa.int32(),
    "smallint": pa.int16(),
    "tinyint": pa.int8(),
    "double": pa.float64(),
    "float": pa.float32(),
    "boolean": pa.bool_(),
    "timestamp": pa.timestamp("ms"),  # UTC, without a zone, as Firehose writes it
    "date": pa.date32(),
    "binary": pa.binary(),
}


class ConversionError(FanwatchError, ValueError):
    """A Glue type the stand-in cannot map, or a value that does not fit its column."""


def _split_top(text: str) -> list[str]:
    """``a:int,b:array<string>`` -> [``a:int``, ``b:array<string>``] (commas inside <> stay)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += {"<": 1, ">": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def arrow_type(hive: str) -> pa.DataType:
    """The Arrow type of a Glue (Hive) type: scalars, ``decimal(p,s)``, ``array``, ``map``, ``struct``."""
    text = hive.strip().lower()
    if text in _SCALARS:
        return _SCALARS[text]
    if text.startswith(("varchar(", "char(")):
        return pa.string()
    if text.startswith("decimal"):
        precision, scale = (int(x) for x in (text[8:-1].split(",") if "(" in text else ("10", "0")))
        return pa.decimal128(precision, scale)
    if text.startswith("array<") and text.endswith(">"):
        return pa.list_(arrow_type(text[6:-1]))
    if text.startswith("map<") and text.endswith(">"):
        key, value = _split_top(text[4:-1])
        return pa.map_(arrow_type(key), arrow_type(value))
    if text.startswith("struct<") and text.endswith(">"):
        fields = []
        for part in _split_top(text[7:-1]):
            name, _, kind = part.partition(":")
            fields.append(pa.field(name.strip(), arrow_type(kind)))
        return pa.struct(fields)
    raise ConversionError(f"Glue type {hive!r} is not one the stand-in converts")


def arrow_schema(columns: Iterable[GlueColumn]) -> pa.Schema:
    """The Arrow schema of a Glue table's columns: what the stand-in's Firehose writes and the lake reads
    back."""
    return pa.schema([pa.field(c.name, arrow_type(c.type)) for c in columns])


def _timestamp(value: Any) -> datetime:
    if isinstance(value, bool):
        raise ConversionError(f"{value!r} is not a timestamp")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, UTC).replace(tzinfo=None)
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T"))
        return (parsed.astimezone(UTC) if parsed.tzinfo else parsed).replace(tzinfo=None)
    raise ConversionError(f"{value!r} is not a timestamp")


def _value(value: Any, kind: pa.DataType, where: str) -> Any:
    if value is None:
        return None
    try:
        if pa.types.is_timestamp(kind):
            return _timestamp(value)
        if pa.types.is_integer(kind):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ConversionError(f"{value!r} is not an integer")
            return int(value)
        if pa.types.is_floating(kind):
            if isinstance(value, bool):
                raise ConversionError(f"{value!r} is not a number")
            return float(value)
        if pa.types.is_boolean(kind):
            if not isinstance(value, bool):
                raise ConversionError(f"{value!r} is not a boolean")
            return value
        if pa.types.is_string(kind):
            return value if isinstance(value, str) else json.dumps(value)
        if pa.types.is_list(kind):
            if not isinstance(value, list):
                raise ConversionError(f"{value!r} is not an array")
            return [_value(v, kind.value_type, f"{where}[]") for v in value]
        if pa.types.is_struct(kind):
            if not isinstance(value, Mapping):
                raise ConversionError(f"{value!r} is not an object")
            lowered = {str(k).lower(): v for k, v in value.items()}
            return {f.name: _value(lowered.get(f.name.lower()), f.type, f"{where}.{f.name}") for f in kind}
        if pa.types.is_map(kind):
            if not isinstance(value, Mapping):
                raise ConversionError(f"{value!r} is not an object")
            return [(k, _value(v, kind.item_type, f"{where}.{k}")) for k, v in value.items()]
        if pa.types.is_date(kind):
            return datetime.fromisoformat(str(value)).date()
        return value
    except (TypeError, ValueError, OverflowError) as exc:
        raise ConversionError(f"{where}: {exc}") from None


def to_row(document: Mapping[str, Any], schema: pa.Schema) -> dict[str, Any]:
    """One JSON document as a row of ``schema``; :class:`ConversionError` when a value does not fit."""
    if not isinstance(document, Mapping):
        raise ConversionError(f"a document must be a JSON object, not {type(document).__name__}")
    lowered = {str(k).lower(): v for k, v in document.items()}
    return {f.name: _value(lowered.get(f.name.lower()), f.type, f.name) for f in schema}


def parquet_bytes(rows: list[dict[str, Any]], schema: pa.Schema, *, compression: str = "SNAPPY") -> bytes:
    """A Parquet file of ``rows`` (each from :func:`to_row`)."""
    table = pa.Table.from_pylist(rows, schema=schema)
    sink = io.BytesIO()
    codec = compression.lower()
    pq.write_table(table, sink, compression="none" if codec == "uncompressed" else codec)
    return sink.getvalue()
