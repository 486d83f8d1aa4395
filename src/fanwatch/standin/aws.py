"""``EmbeddedAws``: the cloud stack on 127.0.0.1, started by the demo, the tests and ``fanwatch stack up``.

::

    rules = broker.observer_endpoint(Observer.RULES)  # the engine's own identity on the broker
    with EmbeddedAws.start(broker=rules, clock=clock, lake_dir=out / "lake") as aws:
        aws.endpoint.url                 # http://127.0.0.1:<port>, for boto3 (aws.client("kinesis"))
        aws.names                        # resource names: streams, queue, topic, buckets, tables…
        aws.rules.ingest(topic, payload) # the IoT rules engine (also subscribed to the broker)
        aws.wait_idle()                  # until every stream has been read and processed
        aws.inbox.receive()              # notifications the alert topic sent (typed)
        aws.dead_letters()               # what reached the dead-letter queue, parsed
        aws.flush_lake()                 # write what Firehose buffers now (the end of a run)
        aws.lake().query("SELECT count(*) FROM readings")

``async with EmbeddedAws.start(...)`` works too (start and stop run in a thread). Everything comes from
the synthesized template (:mod:`fanwatch.standin.template`); moto serves the APIs
(:mod:`fanwatch.standin.server`); the parts moto lacks are :mod:`~fanwatch.standin.rules`,
:mod:`~fanwatch.standin.esm`, :mod:`~fanwatch.standin.firehose` and :mod:`~fanwatch.standin.inbox`, and
the handlers run in :mod:`~fanwatch.standin.functions` containers. moto keeps its state per process, so
one stand-in runs per process at a time.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from fanwatch import environment as variables
from fanwatch.core.mqtt.endpoint import BrokerEndpoint
from fanwatch.edge.clock import Clock, MonotonicClock
from fanwatch.errors import FanwatchError
from fanwatch.standin.endpoint import AwsEndpoint
from fanwatch.standin.esm import EventSourcePoller
from fanwatch.standin.firehose import FirehoseDelivery
from fanwatch.standin.functions import FunctionContainer, Handler
from fanwatch.standin.inbox import Inbox
from fanwatch.standin.model import StackModel
from fanwatch.standin.provision import provision
from fanwatch.standin.registry import register
from fanwatch.standin.rules import RuleClients, RulesEngine
from fanwatch.standin.server import Faults, MotoServer
from fanwatch.standin.template import TEMPLATE, build_model, load_template

__all__ = ["EmbeddedAws", "Names", "StandinError"]

#: The handler module each piece of the stack runs, as the template's functions name them.
DETECTOR: Final = "fanwatch.cloud.detector.lambda_handler"
NOTIFIER: Final = "fanwatch.cloud.notifier.lambda_handler"
#: The inbox's queue: subscribed to the alert topic like an operator's e-mail address.
INBOX_QUEUE: Final = "fanwatch-local-inbox"

_RUNNING = threading.Lock()  # moto's state is per process: one stand-in at a time


class StandinError(FanwatchError, RuntimeError):
    """The stand-in could not start (a second one in the process, a template it cannot run)."""


@dataclass(frozen=True, slots=True)
class Names:
    """What the demo and ``fanwatch stack up`` print: the stand-in's names of the stack's resources."""

    telemetry_stream: str
    anomaly_stream: str
    lake_bucket: str
    model_bucket: str
    alert_topic_arn: str
    dead_letter_queue_url: str
    inbox_queue_url: str
    rules: tuple[str, ...]
    deliveries: tuple[str, ...]
    tables: tuple[str, ...]

    def lines(self) -> list[str]:
        return [
            f"telemetry stream   {self.telemetry_stream}",
            f"anomalies stream   {self.anomaly_stream}",
            f"IoT rules          {', '.join(self.rules)}",
            f"Firehose           {', '.join(self.deliveries)}",
            f"lake bucket        s3://{self.lake_bucket}/",
            f"models bucket      s3://{self.model_bucket}/",
            f"tables             {', '.join(self.tables)}",
            f"alert topic        {self.alert_topic_arn}",
            f"dead-letter queue  {self.dead_letter_queue_url}",
            f"inbox queue        {self.inbox_queue_url}",
        ]


class EmbeddedAws:
    """The stand-in: moto server, the stack's resources, and the parts that make it run.

    Use :meth:`start` (a context manager). ``clock`` paces the buffering windows, batching windows
    and polling (a :class:`fanwatch.edge.clock.ScaledClock` runs them as fast as the demo's fans);
    ``parameters`` override the template's defaults; ``handlers`` replace a function's handler by its
    template name (``"fanwatch.cloud.notifier.lambda_handler"``), e.g. one built with the demo's clock;
    ``lake_dir`` is a folder where Firehose also writes every object, so the lake outlives the stand-in;
    ``inbox_filter`` is the inbox subscription's filter policy (None: every notification).
    """

    def __init__(
        self,
        *,
        template: Mapping[str, Any] | Path = TEMPLATE,
        broker: BrokerEndpoint | None = None,
        clock: Clock | None = None,
        parameters: Mapping[str, Any] | None = None,
        handlers: Mapping[str, Handler] | None = None,
        lake_dir: Path | None = None,
        inbox_filter: Mapping[str, Any] | None = None,
        poll_s: float = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._template = load_template(template) if isinstance(template, Path) else dict(template)
        self._broker = broker
        self.clock = clock or MonotonicClock()
        self._parameters = dict(parameters or {})
        self._handlers = dict(handlers or {})
        self.lake_dir = lake_dir
        self._inbox_filter = inbox_filter
        self._poll_s = poll_s
        self.server = MotoServer(host=host, port=port)
        self.endpoint: AwsEndpoint = AwsEndpoint("http://unstarted")
        self.model: StackModel | None = None
        self.containers: dict[str, FunctionContainer] = {}
        self.mappings: dict[str, EventSourcePoller] = {}
        self.deliveries: dict[str, FirehoseDelivery] = {}
        self.rules: RulesEngine | None = None
        self.inbox: Inbox | None = None
        self.names: Names | None = None
        self._clients: dict[str, Any] = {}
        self._owns_lock = False

    # --- life cycle ----------------------------------------------------------------------------

    @classmethod
    def start(cls, **options: Any) -> EmbeddedAws:
        """An unstarted stand-in; ``with``/``async with`` it to start it (options as in the class)."""
        return cls(**options)

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(self.open)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.close)

    def open(self) -> None:
        if not _RUNNING.acquire(blocking=False):
            raise StandinError(
                "an embedded AWS stand-in already runs in this process (moto's state is global)"
            )
        self._owns_lock = True
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        self.server.start()
        self.endpoint = AwsEndpoint(self.server.url)
        urllib.request.urlopen(
            urllib.request.Request(f"{self.server.url}/moto-api/reset", method="POST")
        ).close()
        model = self.model = build_model(self._template, self.endpoint, parameters=self._parameters)
        provision(model, self.endpoint)
        register(model, self.endpoint)
        for function in model.functions:
            self.containers[function.logical_id] = FunctionContainer(
                function, self.endpoint, handler=self._handlers.get(function.handler)
            )
        for mapping in model.mappings:
            stream = model.stream(mapping.source_arn)
            container = self.containers[mapping.function]
            on_failure = None
            if mapping.on_failure_arn:
                url = model.queue(mapping.on_failure_arn).url
                on_failure = self._sender(url)
            self.mappings[container.function.handler] = EventSourcePoller(
                mapping,
                stream_name=stream.name,
                function_arn=container.function.arn,
                invoke=container.invoke,
                kinesis=self.client("kinesis", retries=2),
                on_failure=on_failure,
                clock=self.clock,
                poll_s=self._poll_s,
            )
        for delivery in model.deliveries:
            transform = self.containers[delivery.processor].invoke if delivery.processor else None
            self.deliveries[delivery.name] = FirehoseDelivery(
                delivery,
                stream_name=model.stream(delivery.source_arn).name,
                kinesis=self.client("kinesis", retries=2),
                s3=self.client("s3", retries=2),
                transform=transform,
                clock=self.clock,
                mirror=self.lake_dir,
                poll_s=self._poll_s,
            )
        self.rules = RulesEngine(
            model.rules,
            RuleClients(
                kinesis=self.client("kinesis"),
                s3=self.client("s3"),
                sqs=self.client("sqs"),
                sns=self.client("sns"),
                invoke=lambda name, event: self.containers[model.function_named(name).logical_id].invoke(
                    event
                ),
            ),
            clock=self.clock,
        )
        notifier = model.function_with_handler(NOTIFIER)
        alert_topic = notifier.environment[variables.ALERT_TOPIC_VARIABLE]
        self.inbox = Inbox(
            sns=self.client("sns"),
            sqs=self.client("sqs"),
            topic_arn=alert_topic,
            queue_name=INBOX_QUEUE,
            filter_policy=self._inbox_filter,
        )
        detector = model.function_with_handler(DETECTOR)
        lake = next(iter(model.deliveries)).bucket if model.deliveries else ""
        self.names = Names(
            telemetry_stream=model.stream(model.mapping_for(DETECTOR).source_arn).name,
            anomaly_stream=detector.environment[variables.ANOMALY_STREAM_VARIABLE],
            lake_bucket=lake,
            model_bucket=detector.environment[variables.MODEL_BUCKET_VARIABLE],
            alert_topic_arn=alert_topic,
            dead_letter_queue_url=detector.environment[variables.DEAD_LETTER_QUEUE_VARIABLE],
            inbox_queue_url=self.inbox.url,
            rules=tuple(r.name for r in model.rules),
            deliveries=tuple(d.name for d in model.deliveries),
            tables=tuple(t.name for t in model.tables),
        )
        for poller in self.mappings.values():
            poller.start()
        for firehose in self.deliveries.values():
            firehose.start()
        if self._broker is not None:
            self.rules.connect(self._broker)
        self.server.published = self.rules.ingest  # iot-data Publish goes through the rules, as in IoT Core

    def _sender(self, queue_url: str) -> Callable[[str], None]:
        sqs = self.client("sqs")
        return lambda body: sqs.send_message(QueueUrl=queue_url, MessageBody=body)

    def close(self) -> None:
        self.server.published = None
        if self.rules is not None:
            self.rules.close()
        for poller in self.mappings.values():
            poller.stop()
        for firehose in self.deliveries.values():
            firehose.stop()
        for container in self.containers.values():
            container.close()
        self.server.stop()
        if self._owns_lock:
            self._owns_lock = False
            _RUNNING.release()

    # --- using it ------------------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        """Switch AWS faults on: ``aws.faults.refuse("kinesis", "GetRecords", seconds=2)``."""
        return self.server.faults

    def client(self, service: str, *, retries: int | None = None) -> Any:
        """A boto3 client on the stand-in (shared per service and retry setting)."""
        key = f"{service}/{retries}"
        if key not in self._clients:
            self._clients[key] = self.endpoint.client(service, retries=retries)
        return self._clients[key]

    @property
    def idle(self) -> bool:
        """Every stream read and processed to its end, and the rules engine has nothing waiting."""
        return self.handled and all(d.idle for d in self.deliveries.values())

    @property
    def handled(self) -> bool:
        """The rules engine has nothing waiting and every mapping's function took every record; Firehose
        may still hold records for its transform's buffer time (:meth:`flush_lake` writes them now)."""
        engine_idle = self.rules is None or self.rules.pending == 0
        return engine_idle and all(p.idle for p in self.mappings.values())

    def wait_idle(self, timeout: float = 30.0, *, settle_s: float = 0.2, lake: bool = True) -> bool:
        """Wait (wall time) until :attr:`idle` (``lake`` False: :attr:`handled`) holds twice ``settle_s``
        apart; False on timeout. Not waiting for the lake saves Firehose's buffer time (a minute)."""
        deadline = time.monotonic() + timeout
        done = (lambda: self.idle) if lake else (lambda: self.handled)
        while time.monotonic() < deadline:
            if done():
                time.sleep(settle_s)
                if done():
                    return True
            time.sleep(0.05)
        return False

    def flush_lake(self) -> None:
        """Write everything Firehose holds now (as a run ends; Firehose would after its buffer time)."""
        for firehose in self.deliveries.values():
            firehose.flush()

    def dead_letters(self) -> list[dict[str, Any]]:
        """What reached the dead-letter queue (taken off it), parsed: rejected and on-failure records."""
        assert self.names is not None
        sqs = self.client("sqs")
        out: list[dict[str, Any]] = []
        while True:
            got = sqs.receive_message(QueueUrl=self.names.dead_letter_queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not got:
                return out
            out.extend(json.loads(m["Body"]) for m in got)
            sqs.delete_message_batch(
                QueueUrl=self.names.dead_letter_queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)],
            )

    def lake(self) -> Any:
        """The lake as DuckDB sees it (a :class:`fanwatch.standin.lake.Lake` over the S3 stand-in)."""
        from fanwatch.standin.lake import Lake, S3Objects

        assert self.model is not None and self.names is not None
        return Lake(S3Objects(self.client("s3"), self.names.lake_bucket), self.model.glue_tables)
