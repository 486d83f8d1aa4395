"""Athena's functions in DuckDB: each macro gives what Athena (Presto) gives."""

from __future__ import annotations

import duckdb
import pytest

from fanwatch.standin import athena


@pytest.fixture
def db() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    athena.install(connection)
    return connection


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        # Presto's date_format takes MySQL specifiers: %i minutes, %s seconds, %T the time
        ("SELECT date_format(TIMESTAMP '2026-11-27 19:35:07', '%Y-%m-%d %H:%i:%s')", "2026-11-27 19:35:07"),
        ("SELECT date_format(TIMESTAMP '2026-11-27 19:35:07', '%T')", "19:35:07"),
        ("SELECT date_format(DATE '2026-11-27' - INTERVAL '7' DAY, '%Y-%m-%d')", "2026-11-20"),
        ("SELECT approx_percentile(x, 0.5) FROM range(1, 102) t(x)", 51),
        ("SELECT to_unixtime(TIMESTAMPTZ '2026-11-27 00:00:00+00')", 1795737600.0),
        ("SELECT count_if(x > 2) FROM range(5) t(x)", 2),
        ("SELECT contains(['a', 'stalled'], 'stalled')", True),
    ],
)
def test_the_functions_the_named_queries_use(
    db: duckdb.DuckDBPyConnection, sql: str, expected: object
) -> None:
    row = db.execute(sql).fetchone()
    assert row is not None and row[0] == expected


def test_an_athena_function_with_no_equivalent_fails_loudly(db: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(duckdb.CatalogException, match="does not exist"):
        db.execute("SELECT date_diff_presto('day', DATE '2026-01-01', DATE '2026-01-02')")
