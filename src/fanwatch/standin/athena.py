"""The Athena (Presto/Trino) functions the stack's queries use, defined in DuckDB by their equivalents.

The named queries are written for Athena and stay so: rather than rewriting their text, the lake's
DuckDB connection gets a macro for each Athena function DuckDB lacks, so the same SQL runs on both.
Each macro is tested against the Athena behaviour it stands for. DuckDB already has ``count_if``,
``contains(array, x)``, ``||``, ``interval '7' day`` and ``?`` parameters with Athena's meaning.
A function that is in neither list fails with DuckDB's own "does not exist" error.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["ATHENA_MACROS", "install"]

#: Presto's MySQL-style ``date_format`` specifiers that differ from strftime's (``%i`` minutes,
#: ``%s`` seconds, ``%T`` time); ``%Y %m %d %H`` are the same in both.
_PRESTO_FORMAT: Final = "replace(replace(replace(fmt, '%i', '%M'), '%s', '%S'), '%T', '%H:%M:%S')"

#: (Athena function, DuckDB macro definition) - one line each, so the table is the documentation.
ATHENA_MACROS: Final = (
    ("date_format", f"CREATE OR REPLACE MACRO date_format(ts, fmt) AS strftime(ts, {_PRESTO_FORMAT})"),
    ("approx_percentile", "CREATE OR REPLACE MACRO approx_percentile(x, p) AS approx_quantile(x, p)"),
    ("from_iso8601_timestamp", "CREATE OR REPLACE MACRO from_iso8601_timestamp(s) AS CAST(s AS TIMESTAMPTZ)"),
    ("to_unixtime", "CREATE OR REPLACE MACRO to_unixtime(ts) AS epoch(ts)"),
)


def install(connection: Any) -> None:
    """Define the Athena functions on a DuckDB ``connection``."""
    for _name, definition in ATHENA_MACROS:
        connection.execute(definition)
