"""Every environment variable that one part of fanwatch sets and another reads, named once.

The stack gives the Lambdas their settings through the environment and the handlers read them back; the
local core gives a component its thing name and the component reads it; the fleet tools are pointed at
a stack, a bucket or a faster clock by the shell. A name typed twice drifts apart silently (the writer
sets one name, the reader looks for another and takes its default), so both sides import it from here:
the CDK stack, the handlers, the stand-in, the core and the edge alike. This module imports nothing of
fanwatch, and the Lambdas' code asset carries it. ``tests/unit/test_environment.py`` holds the
synthesized template against it and finds any of these names typed out anywhere else in ``src/``.

Variables that only one module reads and nobody of ours sets (boto3's, gdk's ``GDK_CLI``) stay with it.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ALERT_TOPIC_VARIABLE",
    "ANOMALY_STREAM_VARIABLE",
    "ARTIFACTS_BUCKET_VARIABLE",
    "BROKER_PASSWORD_VARIABLE",
    "BROKER_USERNAME_VARIABLE",
    "CHECKPOINT_MINUTES_VARIABLE",
    "COOLDOWN_MINUTES_VARIABLE",
    "COOLDOWN_TABLE_VARIABLE",
    "DEAD_LETTER_QUEUE_VARIABLE",
    "DEBUG_VARIABLE",
    "FAN_STATE_CACHE_VARIABLE",
    "FAN_STATE_TABLE_VARIABLE",
    "HANDLER_VARIABLES",
    "LAKE_BUCKET_VARIABLE",
    "LAMBDA_MEMORY_VARIABLE",
    "METRICS_NAMESPACE",
    "METRICS_NAMESPACE_VARIABLE",
    "MODEL_BUCKET_VARIABLE",
    "RCF_MAX_RESIDENT_VARIABLE",
    "RCF_SAMPLE_SIZE_VARIABLE",
    "RCF_SHINGLE_SIZE_VARIABLE",
    "RCF_TREES_VARIABLE",
    "SCORE_FLOOR_VARIABLE",
    "SCORE_SIGMAS_VARIABLE",
    "SERVICE_NAME_VARIABLE",
    "SETTLE_SECONDS_VARIABLE",
    "STACK_VARIABLE",
    "THING_NAME_VARIABLE",
    "TIME_SCALE_VARIABLE",
]

# --- what the stack gives the handlers: the resources they use ---
#: S3 bucket of the forests' checkpoints (detector; ``fanwatch detector backfill`` writes there too).
MODEL_BUCKET_VARIABLE: Final = "MODEL_BUCKET"
#: DynamoDB table of each fan's detector state (detector, backfill).
FAN_STATE_TABLE_VARIABLE: Final = "FAN_STATE_TABLE"
#: Kinesis stream the detector writes anomalies to (the notifier and the lake read it).
ANOMALY_STREAM_VARIABLE: Final = "ANOMALY_STREAM"
#: SQS queue of the records a handler refused, with the reason (detector, notifier).
DEAD_LETTER_QUEUE_VARIABLE: Final = "DEAD_LETTER_QUEUE_URL"
#: SNS topic the notifier publishes to.
ALERT_TOPIC_VARIABLE: Final = "ALERT_TOPIC_ARN"
#: DynamoDB table of the notifier's cooldowns.
COOLDOWN_TABLE_VARIABLE: Final = "COOLDOWN_TABLE"
#: The Parquet lake's bucket (only ``fanwatch detector backfill`` reads it; named like its siblings).
LAKE_BUCKET_VARIABLE: Final = "LAKE_BUCKET"

# --- what the stack gives the handlers: the operator's settings (CloudFormation parameters) ---
COOLDOWN_MINUTES_VARIABLE: Final = "COOLDOWN_MINUTES"
SCORE_FLOOR_VARIABLE: Final = "SCORE_FLOOR"
SCORE_SIGMAS_VARIABLE: Final = "SCORE_SIGMAS"
SETTLE_SECONDS_VARIABLE: Final = "SETTLE_SECONDS"
CHECKPOINT_MINUTES_VARIABLE: Final = "CHECKPOINT_MINUTES"
FAN_STATE_CACHE_VARIABLE: Final = "FAN_STATE_CACHE"
# The forest's shape: the stack leaves them at the detector's defaults; a test or a bench sets them.
RCF_SHINGLE_SIZE_VARIABLE: Final = "RCF_SHINGLE_SIZE"
RCF_TREES_VARIABLE: Final = "RCF_TREES"
RCF_SAMPLE_SIZE_VARIABLE: Final = "RCF_SAMPLE_SIZE"
RCF_MAX_RESIDENT_VARIABLE: Final = "RCF_MAX_RESIDENT"

# --- Powertools' and the Lambda runtime's, with the values fanwatch gives them ---
#: Powertools' service name: each handler's ``service`` dimension and log field.
SERVICE_NAME_VARIABLE: Final = "POWERTOOLS_SERVICE_NAME"
#: Powertools' metrics namespace; the stack sets :data:`METRICS_NAMESPACE`, which its dashboard reads.
METRICS_NAMESPACE_VARIABLE: Final = "POWERTOOLS_METRICS_NAMESPACE"
METRICS_NAMESPACE: Final = "Fanwatch"
#: Set by the Lambda runtime (and the stand-in's containers): the detector sizes its cache by it.
LAMBDA_MEMORY_VARIABLE: Final = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"

#: Every variable the stack may give a function (the template test holds each function to this set).
HANDLER_VARIABLES: Final = frozenset(
    {
        MODEL_BUCKET_VARIABLE,
        FAN_STATE_TABLE_VARIABLE,
        ANOMALY_STREAM_VARIABLE,
        DEAD_LETTER_QUEUE_VARIABLE,
        ALERT_TOPIC_VARIABLE,
        COOLDOWN_TABLE_VARIABLE,
        LAKE_BUCKET_VARIABLE,
        COOLDOWN_MINUTES_VARIABLE,
        SCORE_FLOOR_VARIABLE,
        SCORE_SIGMAS_VARIABLE,
        SETTLE_SECONDS_VARIABLE,
        CHECKPOINT_MINUTES_VARIABLE,
        FAN_STATE_CACHE_VARIABLE,
        RCF_SHINGLE_SIZE_VARIABLE,
        RCF_TREES_VARIABLE,
        RCF_SAMPLE_SIZE_VARIABLE,
        RCF_MAX_RESIDENT_VARIABLE,
        SERVICE_NAME_VARIABLE,
        METRICS_NAMESPACE_VARIABLE,
    }
)

# --- the device: what the nucleus gives every component's processes ---
#: The thing the component runs on (the local core sets it as the nucleus does; the edge reads it).
THING_NAME_VARIABLE: Final = "AWS_IOT_THING_NAME"

# --- the fanwatch commands ---
#: Fleet seconds per wall second for the fleet tools and the local control plane (1 when unset).
TIME_SCALE_VARIABLE: Final = "FANWATCH_TIME_SCALE"
#: The bucket components are published to, for a stack deployed under another name (or none).
ARTIFACTS_BUCKET_VARIABLE: Final = "FANWATCH_ARTIFACTS_BUCKET"
#: The deployed stack's name, whose outputs the fleet and stack commands read.
STACK_VARIABLE: Final = "FANWATCH_STACK"
#: A user name and password for the local MQTT broker (both, or neither): the embedded broker then
#: refuses anonymous clients, and the cores, the rules engine and the demo's observer log in with them.
#: In the environment, not on the command line, where every local user could read the password.
BROKER_USERNAME_VARIABLE: Final = "FANWATCH_BROKER_USERNAME"
BROKER_PASSWORD_VARIABLE: Final = "FANWATCH_BROKER_PASSWORD"
#: Set it to see the traceback behind a command's one-line error.
DEBUG_VARIABLE: Final = "FANWATCH_DEBUG"
