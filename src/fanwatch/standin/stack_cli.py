"""``fanwatch stack up``: the cloud stack on this machine, until Ctrl-C.

Starts an embedded MQTT broker (amqtt; ``--mosquitto`` for mutual TLS and per-thing ACLs) standing in
for IoT Core and the embedded AWS stand-in, prints the endpoints, the variables that point boto3 or
the AWS CLI at it, and the resources' names, then a status line now and then. Publish device messages
to the broker (``fanwatch/<thing>/telemetry``, ``…/alerts``) and watch them reach the streams, the
handlers, the inbox and the lake; ``fanwatch lake query --endpoint URL "SQL"`` reads the lake while it
runs, ``--lake`` after (Ctrl-C writes what Firehose still buffers first).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import threading
from pathlib import Path
from typing import Any

from fanwatch.edge.clock import MonotonicClock, ScaledClock
from fanwatch.standin.aws import DETECTOR, NOTIFIER, EmbeddedAws
from fanwatch.standin.endpoint import AwsEndpoint
from fanwatch.standin.model import TemplateError
from fanwatch.standin.template import build_model, load_template

__all__ = ["add_up_arguments", "run"]


def add_up_arguments(up: argparse.ArgumentParser) -> None:
    """The options of ``fanwatch stack up`` (:mod:`fanwatch.stack.cli` holds the other actions)."""
    up.add_argument(
        "--dir", type=Path, default=Path("out/stack"), help="broker log and lake (default out/stack)"
    )
    up.add_argument("--port", type=int, default=0, help="the stand-in's port (default: a free one)")
    up.add_argument("--mosquitto", action="store_true", help="mosquitto with mutual TLS instead of amqtt")
    up.add_argument("--speed", type=float, default=1.0, help="run the stand-in's clock this much faster")
    up.add_argument("--status-every", type=float, default=10.0, help="seconds between status lines")
    up.add_argument(
        "--parameter", action="append", default=[], metavar="NAME=VALUE", help="a stack parameter (repeat)"
    )


def _status(aws: EmbeddedAws) -> str:
    assert aws.rules is not None
    detector = aws.mappings[DETECTOR].stats
    notifier = aws.mappings[NOTIFIER].stats
    rows = sum(d.stats.rows for d in aws.deliveries.values())
    buffered = sum(d.buffered_rows for d in aws.deliveries.values())
    return (
        f"messages {aws.rules.stats.received} · detector records {detector.records} · "
        f"notifier records {notifier.records} · lake rows {rows} (+{buffered} buffered) · "
        f"function errors {detector.function_errors + notifier.function_errors}"
    )


def run(args: argparse.Namespace) -> int:
    """``fanwatch stack up``: the broker and the AWS stand-in running the stack, their endpoints and names,
    a status line now and then until Ctrl-C, then what Firehose buffers written to the lake; 2 for a bad
    ``--parameter``."""
    from fanwatch.core.mqtt import AmqttBroker, LocalBroker, Login, MosquittoBroker, Observer

    parameters: dict[str, Any] = {}
    for item in args.parameter:
        name, sep, value = item.partition("=")
        if not sep:
            print(f"--parameter {item!r}: NAME=VALUE expected", file=sys.stderr)
            return 2
        parameters[name] = value
    try:  # a mistake in the parameters is said before anything starts
        build_model(load_template(), AwsEndpoint("http://check"), parameters=parameters)
    except TemplateError as exc:
        print(f"the stack cannot start: {exc}", file=sys.stderr)
        return 2
    clock = ScaledClock(MonotonicClock(), args.speed) if args.speed != 1.0 else MonotonicClock()
    broker: LocalBroker = (
        MosquittoBroker(args.dir / "broker")
        if args.mosquitto
        else AmqttBroker(args.dir / "broker", login=Login.from_environment())
    )
    stop = threading.Event()
    with (
        broker,
        EmbeddedAws.start(
            broker=broker.observer_endpoint(Observer.RULES),
            clock=clock,
            parameters=parameters,
            lake_dir=args.dir / "lake",
            port=args.port,
        ) as aws,
    ):
        assert aws.names is not None
        print(f"MQTT broker ({broker.name})   {broker.observer_endpoint().url}  (log {broker.log_file})")
        print(f"AWS stand-in        {aws.endpoint.url}  (moto; region {aws.endpoint.region})")
        print("point boto3 / the AWS CLI at it:")
        print("  " + " ".join(f"{k}={shlex.quote(v)}" for k, v in aws.endpoint.environment().items()))
        for line in aws.names.lines():
            print(f"  {line}")
        print(
            f'lake folder         {args.dir / "lake"}  (fanwatch lake query --lake {args.dir / "lake"} "SQL")'
        )
        print("Ctrl-C to stop.", flush=True)
        try:
            while not stop.wait(args.status_every):
                print(_status(aws), flush=True)
        except KeyboardInterrupt:
            print("\nstopping: writing what Firehose buffers to the lake", flush=True)
        aws.wait_idle(10)
        aws.flush_lake()
        print(_status(aws))
    return 0
