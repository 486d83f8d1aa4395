"""Record format conversion: Glue types to Arrow, JSON documents to rows, rows to Parquet."""

from __future__ import annotations

import io
from datetime import datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fanwatch.standin.model import GlueColumn
from fanwatch.standin.parquet import ConversionError, arrow_schema, arrow_type, parquet_bytes, to_row
from fanwatch.telemetry import LAKE_COLUMNS


@pytest.mark.parametrize(
    ("hive", "arrow"),
    [
        ("string", pa.string()),
        ("bigint", pa.int64()),
        ("int", pa.int32()),
        ("double", pa.float64()),
        ("boolean", pa.bool_()),
        ("timestamp", pa.timestamp("ms")),
        ("array<string>", pa.list_(pa.string())),
        ("decimal(10,2)", pa.decimal128(10, 2)),
        ("map<string,int>", pa.map_(pa.string(), pa.int32())),
        ("struct<a:int,b:array<string>>", pa.struct([("a", pa.int32()), ("b", pa.list_(pa.string()))])),
    ],
)
def test_glue_types_map_to_arrow(hive: str, arrow: pa.DataType) -> None:
    assert arrow_type(hive) == arrow


def test_an_unknown_type_is_refused() -> None:
    with pytest.raises(ConversionError, match="uniontype"):
        arrow_type("uniontype<int,string>")


def test_the_lake_columns_convert_and_round_trip_through_parquet() -> None:
    schema = arrow_schema(GlueColumn(c.name, c.type) for c in LAKE_COLUMNS)
    document = {
        "schema": "fanwatch.telemetry/1",
        "Thing": "pi-1",  # OpenX JSON matches keys without regard to case
        "fan": "fan0",
        "seq": 7,
        "sent": "2026-11-27T19:35:05.000Z",
        "ts": 1795808101000,  # epoch milliseconds work too
        "rpm": 1500,
        "pulses": 50,
        "flags": ["glitch"],
    }
    row = to_row(document, schema)
    assert row["thing"] == "pi-1" and row["rpm"] == 1500.0 and row["boot"] is None
    assert row["sent"] == datetime(2026, 11, 27, 19, 35, 5)
    table = pq.read_table(io.BytesIO(parquet_bytes([row], schema)))
    assert table.schema == schema
    assert table.to_pylist()[0]["flags"] == ["glitch"]


@pytest.mark.parametrize(
    "bad",
    [{"seq": "seven"}, {"seq": 1.5}, {"rpm": True}, {"flags": "glitch"}, {"sent": "yesterday"}],
)
def test_a_value_that_does_not_fit_its_column_fails_the_conversion(bad: dict[str, object]) -> None:
    schema = arrow_schema(GlueColumn(c.name, c.type) for c in LAKE_COLUMNS)
    with pytest.raises(ConversionError):
        to_row(bad, schema)
