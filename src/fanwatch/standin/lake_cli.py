"""``fanwatch lake query "SQL"``: ask the local lake a question with DuckDB.

The lake is the folder the stand-in's Firehose mirrors its objects to (``--lake``, by default the
demo's ``out/demo/lake``), or the S3 stand-in of a running ``fanwatch stack up`` (``--endpoint``). The
tables are the template's Glue tables (``readings``, ``events``, with the ``dt`` partition column);
``--named`` runs one of the stack's Athena named queries, with ``--param`` values for its ``?``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Final

from fanwatch.standin.endpoint import AwsEndpoint
from fanwatch.standin.lake import FolderObjects, Lake, LakeError, ObjectSource, S3Objects
from fanwatch.standin.template import TEMPLATE, build_model, load_template

__all__ = ["DEFAULT_LAKE", "add_arguments", "run"]

#: Where ``make demo`` leaves its lake.
DEFAULT_LAKE: Final = Path("out/demo/lake")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The actions of ``fanwatch lake``: ``query`` (SQL or a named query, over a lake folder or a running
    stand-in's S3) and ``queries``."""
    sub = parser.add_subparsers(dest="action", required=True)
    query = sub.add_parser("query", help="run SQL (DuckDB, with Athena's functions) over the lake")
    query.add_argument("sql", nargs="?", help="the query; tables: readings, events")
    query.add_argument("--named", help="run the stack's Athena named query of this name instead")
    query.add_argument("--param", action="append", default=[], help="a value for the next ? (repeat)")
    where = query.add_mutually_exclusive_group()
    where.add_argument(
        "--lake", type=Path, default=DEFAULT_LAKE, help=f"lake folder (default {DEFAULT_LAKE})"
    )
    where.add_argument("--endpoint", help="S3 stand-in of `fanwatch stack up` (http://127.0.0.1:PORT)")
    query.add_argument("--bucket", help="with --endpoint: the lake bucket (default: the template's)")
    query.add_argument("--template", type=Path, default=TEMPLATE, help="synthesized template")
    sub.add_parser("queries", help="list the stack's Athena named queries").add_argument(
        "--template", type=Path, default=TEMPLATE
    )


def run(args: argparse.Namespace) -> int:
    """``fanwatch lake ACTION``: list the named queries, or run one query and print its rows; 2 for a bad
    question or no lake, 1 when DuckDB refuses the query."""
    model = build_model(
        load_template(args.template), AwsEndpoint(getattr(args, "endpoint", None) or "http://local")
    )
    if args.action == "queries":
        for named in model.queries:
            print(f"{named.name}: {named.description}\n{named.sql}\n")
        return 0
    if bool(args.sql) == bool(args.named):
        print("give either SQL or --named NAME", file=sys.stderr)
        return 2
    sql = args.sql
    if args.named:
        found = [q for q in model.queries if q.name == args.named]
        if not found:
            print(f"no named query {args.named!r}; `fanwatch lake queries` lists them", file=sys.stderr)
            return 2
        sql = found[0].sql
    objects: ObjectSource
    if args.endpoint:
        bucket = args.bucket or next(d.bucket for d in model.deliveries)
        objects = S3Objects(AwsEndpoint(args.endpoint).client("s3"), bucket)
    else:
        if not args.lake.is_dir():
            print(
                f"no lake at {args.lake}: run `make demo` first, or give --lake/--endpoint", file=sys.stderr
            )
            return 2
        objects = FolderObjects(args.lake)
    try:
        result = Lake(objects, model.glue_tables).query(sql, args.param)
    except LakeError as exc:
        print(f"the query failed: {exc}", file=sys.stderr)
        return 1
    print(result.table())
    return 0
