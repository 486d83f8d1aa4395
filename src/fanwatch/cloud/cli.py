"""``fanwatch detector``: operate the cloud detector from a shell (``backfill`` for now).

``fanwatch detector backfill`` warms each fan's forest and threshold from the lake's history (see
:mod:`fanwatch.cloud.backfill`). It talks to AWS with boto3's usual credentials and region; point it at
the local stand-in with ``--endpoint-url`` (or ``AWS_ENDPOINT_URL``). The buckets and table are the
stack's outputs ``LakeBucket``, ``ModelBucket`` and ``FanStateTable`` (or the detector's environment
variables ``LAKE_BUCKET``, ``MODEL_BUCKET``, ``FAN_STATE_TABLE``); the forest's parameters, threshold
and settle window come from the same environment variables as the detector's
(:mod:`fanwatch.cloud.settings`), so the models fit the detector that loads them.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, date, datetime

from fanwatch.environment import FAN_STATE_TABLE_VARIABLE, LAKE_BUCKET_VARIABLE, MODEL_BUCKET_VARIABLE

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``fanwatch detector backfill``: the stack's buckets and table (by default from the
    detector's environment variables), the days and things to learn from, ``--replace``, and where AWS is."""
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    backfill = sub.add_parser("backfill", help="warm fans' forests and thresholds from the Parquet lake")
    env = os.environ.get
    backfill.add_argument(
        "--lake-bucket", default=env(LAKE_BUCKET_VARIABLE), help="the stack's LakeBucket output"
    )
    backfill.add_argument(
        "--model-bucket", default=env(MODEL_BUCKET_VARIABLE), help="the stack's ModelBucket output"
    )
    backfill.add_argument(
        "--state-table", default=env(FAN_STATE_TABLE_VARIABLE), help="the stack's FanStateTable output"
    )
    backfill.add_argument("--days", type=int, default=7, help="days of history to learn from (default 7)")
    backfill.add_argument(
        "--until",
        type=date.fromisoformat,
        default=None,
        help="last day to read, YYYY-MM-DD (default today, UTC)",
    )
    backfill.add_argument("--thing", action="append", default=None, help="only this thing (repeatable)")
    backfill.add_argument(
        "--replace",
        action="store_true",
        help="also fans the detector already scores (their forests start over)",
    )
    backfill.add_argument("--endpoint-url", default=None, help="an AWS stand-in, e.g. http://127.0.0.1:5000")
    backfill.add_argument("--region", default=None, help="AWS region (default: boto3's)")


def run(args: argparse.Namespace) -> int:
    """``fanwatch detector backfill``: warm the fans of the lake's last ``--days`` days and print a line
    per fan; 2 for a missing output or a bad ``--days``, 1 when the lake cannot be read."""
    missing = [
        flag
        for flag, value in (
            ("--lake-bucket", args.lake_bucket),
            ("--model-bucket", args.model_bucket),
            ("--state-table", args.state_table),
        )
        if not value
    ]
    if missing:
        print(f"fanwatch detector backfill: give {', '.join(missing)} (the stack's outputs)", file=sys.stderr)
        return 2
    if args.days < 1:
        print("fanwatch detector backfill: --days must be at least 1", file=sys.stderr)
        return 2
    import boto3

    from fanwatch.cloud.backfill import Backfill, Lake, LakeError, days_back, format_report
    from fanwatch.cloud.detector import thresholder_for
    from fanwatch.cloud.settings import DetectorSettings
    from fanwatch.cloud.stores import FanStateStore, S3ModelStore
    from fanwatch.rcf import ForestManager

    options = {k: v for k, v in (("endpoint_url", args.endpoint_url), ("region_name", args.region)) if v}
    s3 = boto3.client("s3", **options)
    settings = DetectorSettings.from_environment()
    lake = Lake(s3, args.lake_bucket)
    until = args.until or datetime.now(UTC).date()
    things = set(args.thing) if args.thing else None
    try:
        histories = lake.histories(days_back(until, args.days), things)
    except LakeError as exc:
        print(f"fanwatch detector backfill: {exc}", file=sys.stderr)
        return 1
    backfill = Backfill(
        forests=lambda: ForestManager(**settings.forest_shape, store=None, max_hydrated=2),
        models=S3ModelStore(s3, args.model_bucket),
        states=FanStateStore(boto3.client("dynamodb", **options), args.state_table),
        thresholder=thresholder_for(settings),
        settle_seconds=settings.settle_seconds,
    )
    counts = lake.counts
    print(
        f"lake s3://{args.lake_bucket}/{lake.prefix}: {counts['objects']} object(s), "
        f"{counts['rows']:,} row(s) "
        f"over {args.days} day(s) to {until}; {len(histories)} fan(s)"
        + (
            f"; skipped {counts['objects_unreadable']} unreadable object(s)"
            if counts["objects_unreadable"]
            else ""
        )
        + (f", {counts['rows_refused']} bad row(s)" if counts["rows_refused"] else "")
        + (f", {counts['duplicates']} duplicate(s)" if counts["duplicates"] else "")
    )
    for problem in lake.problems:
        print(f"  {problem}")
    reports = [backfill.warm(history, replace=args.replace) for history in histories]
    if reports:
        print(format_report(reports))
    return 0
