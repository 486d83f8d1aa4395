"""The local lake, queried with DuckDB: ``fanwatch lake query`` and the stack's Athena named queries.

DuckDB's httpfs extension (which would read S3 itself) cannot be downloaded here, so the lake's
Parquet objects are read with boto3 from the S3 stand-in (:class:`S3Objects`) or from the folder
Firehose mirrors them to (:class:`FolderObjects`), with pyarrow, and handed to DuckDB as one table per
Glue table of the template, the partition columns (``dt``) taken from the object keys as Athena's
partition projection does. Athena functions DuckDB lacks are defined by :mod:`fanwatch.standin.athena`.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from fanwatch.errors import FanwatchError
from fanwatch.standin import athena
from fanwatch.standin.model import GlueTable
from fanwatch.standin.parquet import arrow_schema

__all__ = ["FolderObjects", "Lake", "LakeError", "ObjectSource", "QueryResult", "S3Objects"]


class LakeError(FanwatchError, RuntimeError):
    """A query the lake could not run; the message carries DuckDB's reason."""


class ObjectSource(Protocol):
    """Where the lake's objects come from (:class:`S3Objects`, :class:`FolderObjects`): their keys under a
    prefix, and their bytes."""

    def keys(self, prefix: str) -> Iterator[str]: ...
    def read(self, key: str) -> bytes: ...


@dataclass(frozen=True, slots=True)
class S3Objects:
    """Objects of one bucket on the S3 stand-in (or on AWS: it is plain boto3)."""

    s3: Any
    bucket: str

    def keys(self, prefix: str) -> Iterator[str]:
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"]

    def read(self, key: str) -> bytes:
        body: bytes = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body


@dataclass(frozen=True, slots=True)
class FolderObjects:
    """The folder Firehose mirrors the lake to: the same keys, as paths under ``root``."""

    root: Path

    def keys(self, prefix: str) -> Iterator[str]:
        base = self.root / prefix
        if base.is_dir():
            for path in sorted(base.rglob("*")):
                if path.is_file():
                    yield path.relative_to(self.root).as_posix()

    def read(self, key: str) -> bytes:
        return (self.root / key).read_bytes()


@dataclass(frozen=True, slots=True)
class QueryResult:
    """A query's answer: its column names and rows, as records or as a table for a terminal."""

    columns: list[str]
    rows: list[tuple[Any, ...]]

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def table(self) -> str:
        """The rows as aligned text, for a terminal."""
        cells = [self.columns, *([_cell(v) for v in row] for row in self.rows)]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.columns))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join([*lines, f"({len(self.rows)} row{'s' if len(self.rows) != 1 else ''})"])


def _cell(value: Any) -> str:
    return "NULL" if value is None else str(value)


def _prefix(table: GlueTable) -> str:
    """``s3://bucket/readings/`` -> ``readings/``."""
    return re.sub(r"^s3://[^/]+/", "", table.location)


class Lake:
    """``Lake(objects, tables).query("SELECT …")``: each Glue table is a DuckDB table of that name."""

    def __init__(self, objects: ObjectSource, tables: Sequence[GlueTable]) -> None:
        import duckdb

        self._connection = duckdb.connect()
        athena.install(self._connection)
        self.rows: dict[str, int] = {}
        for table in tables:
            arrow = self._load(objects, table)
            self._connection.register(f"_{table.name}_arrow", arrow)
            self._connection.execute(f'CREATE TABLE "{table.name}" AS SELECT * FROM "_{table.name}_arrow"')
            self._connection.unregister(f"_{table.name}_arrow")
            self.rows[table.name] = arrow.num_rows

    @staticmethod
    def _load(objects: ObjectSource, table: GlueTable) -> pa.Table:
        schema = arrow_schema(table.columns)
        partitions = [p.name for p in table.partition_keys]
        full = schema
        for name in partitions:
            full = full.append(pa.field(name, pa.string()))
        parts = []
        for key in objects.keys(_prefix(table)):
            if not key.endswith(".parquet"):
                continue
            data = pq.read_table(io.BytesIO(objects.read(key))).select(schema.names).cast(schema)
            values = dict(re.findall(r"([^/=]+)=([^/]+)/", key))
            for name in partitions:
                data = data.append_column(name, pa.array([values.get(name)] * data.num_rows, pa.string()))
            parts.append(data)
        return pa.concat_tables(parts) if parts else full.empty_table()

    def query(self, sql: str, parameters: Sequence[Any] | None = None) -> QueryResult:
        import duckdb

        try:
            cursor = self._connection.execute(sql, list(parameters) if parameters else None)
            columns = [d[0] for d in cursor.description or []]
            return QueryResult(columns, [tuple(r) for r in cursor.fetchall()])
        except duckdb.Error as exc:
            raise LakeError(f"{type(exc).__name__}: {exc}") from None
