"""Pictures and pages: a CloudWatch dashboard of the pipeline, and alarms on what needs a person.

Alarms go to the operations topic (subscribe your on-call address or chat webhook to it); fan
alerts go to the alerts topic. Custom metrics are the ones the handlers publish through Powertools
(namespace ``Fanwatch``, dimension ``service``).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from fanwatch.cloud.observability import Count, Service
from fanwatch.environment import METRICS_NAMESPACE
from fanwatch_stack.data import DataPlane
from fanwatch_stack.parameters import Settings

__all__ = ["Monitoring"]

_FIVE_MIN = Duration.minutes(5)
_HOUR = Duration.hours(1)


def _custom(service: Service, name: Count, label: str) -> cw.Metric:
    return cw.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": service},
        statistic="Sum",
        period=_HOUR,
        label=label,
    )


def _firehose(stream: firehose.CfnDeliveryStream, name: str, statistic: str, label: str) -> cw.Metric:
    return cw.Metric(
        namespace="AWS/Firehose",
        metric_name=name,
        statistic=statistic,
        period=_FIVE_MIN,
        dimensions_map={"DeliveryStreamName": stream.ref},
        label=label,
    )


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        prefix: str,
        data: DataPlane,
        settings: Settings,
        detector: lambda_.Function,
        notifier: lambda_.Function,
        functions: list[lambda_.Function],
        deliveries: list[firehose.CfnDeliveryStream],
    ) -> None:
        super().__init__(scope, id)
        page = actions.SnsAction(data.operations)
        ingest = data.telemetry.metric_incoming_records(
            statistic="Sum", period=_FIVE_MIN, label="telemetry messages / 5 min"
        )
        iterator_age = detector.metric(
            "IteratorAge", statistic="Maximum", period=_FIVE_MIN, label="detector iterator age (ms)"
        )
        lag_seconds = cw.MathExpression(
            expression="age / 1000",
            using_metrics={"age": iterator_age},
            label="detector lag (s)",
            period=_FIVE_MIN,
        )
        notifier_age = notifier.metric(
            "IteratorAge", statistic="Maximum", period=_FIVE_MIN, label="notifier iterator age (ms)"
        )
        dead_letters = data.dead_letters.metric_approximate_number_of_messages_visible(
            period=_FIVE_MIN, statistic="Maximum", label="dead letters waiting"
        )

        self.alarms = [
            cw.Alarm(
                self,
                "DetectorLagging",
                metric=lag_seconds,
                threshold=settings.iterator_age_alarm_s.value_as_number,
                evaluation_periods=3,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                alarm_description="The detector is falling behind the telemetry stream: anomalies come late",
            ),
            cw.Alarm(
                self,
                "NoTelemetry",
                metric=ingest,
                threshold=1,
                evaluation_periods=3,
                comparison_operator=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.BREACHING,
                alarm_description="No telemetry from any device for 15 minutes",
            ),
            cw.Alarm(
                self,
                "DeadLetters",
                metric=dead_letters,
                threshold=0,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                alarm_description="Records were rejected or gave up retrying: read the dead-letter queue",
            ),
            *(
                cw.Alarm(
                    self,
                    f"{d.delivery_stream_name}-Stale".replace(f"{prefix}-", ""),
                    metric=_firehose(d, "DeliveryToS3.DataFreshness", "Maximum", "oldest record (s)"),
                    threshold=1800,
                    evaluation_periods=3,
                    comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                    treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                    alarm_description=f"Firehose {d.delivery_stream_name} is not writing to the lake",
                )
                for d in deliveries
            ),
            *(
                cw.Alarm(
                    self,
                    f"{fn.node.id}Errors",
                    metric=fn.metric_errors(period=_FIVE_MIN),
                    threshold=0,
                    evaluation_periods=1,
                    comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                    treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                    alarm_description=f"The {fn.node.id} function is failing whole invocations",
                )
                for fn in functions
            ),
        ]
        for alarm in self.alarms:
            alarm.add_alarm_action(page)
            alarm.add_ok_action(page)

        self.dashboard = cw.Dashboard(
            self, "Dashboard", dashboard_name=f"{prefix}-pipeline", default_interval=Duration.days(1)
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(title="Ingest", left=[ingest], width=8),
            cw.GraphWidget(title="Lag (iterator age)", left=[iterator_age, notifier_age], width=8),
            cw.GraphWidget(
                title="Anomalies and alerts per hour",
                width=8,
                left=[
                    _custom(Service.DETECTOR, Count.ANOMALIES, "detector anomalies"),
                    _custom(Service.DETECTOR, Count.GAPS, "telemetry gaps"),
                    _custom(Service.NOTIFIER, Count.NOTIFICATIONS, "notifications sent"),
                    _custom(Service.NOTIFIER, Count.HELD_BACK, "held back by cooldown"),
                ],
            ),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Lambda errors",
                width=8,
                left=[fn.metric_errors(period=_FIVE_MIN, label=fn.node.id) for fn in functions],
            ),
            cw.GraphWidget(
                title="Duplicates, late messages, dead letters",
                width=8,
                left=[
                    _custom(Service.DETECTOR, Count.DUPLICATES, "duplicates dropped"),
                    _custom(Service.DETECTOR, Count.LATE, "late messages"),
                    _custom(Service.DETECTOR, Count.DEAD_LETTERS, "detector dead letters"),
                    _custom(Service.NOTIFIER, Count.DEAD_LETTERS, "notifier dead letters"),
                ],
                right=[dead_letters],
            ),
            cw.GraphWidget(
                title="Firehose delivery to the lake",
                width=8,
                left=[
                    _firehose(d, "DeliveryToS3.Records", "Sum", f"{d.delivery_stream_name} records")
                    for d in deliveries
                ],
                right=[
                    _firehose(
                        d, "DeliveryToS3.DataFreshness", "Maximum", f"{d.delivery_stream_name} freshness (s)"
                    )
                    for d in deliveries
                ],
            ),
        )
        self.dashboard.add_widgets(cw.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=24))
