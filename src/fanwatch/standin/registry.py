"""The stack as AWS's own APIs describe it, registered in moto: so a tool that asks AWS about a deployed
stack (``fanwatch stack check``, the AWS CLI) gets the same answers from the stand-in.

What is registered, from the :class:`~fanwatch.standin.template.StackModel`: the CloudFormation stack
with its resolved outputs (a stack record only: moto's CloudFormation would deploy the real template
and silently skip Firehose, IoT rules and Glue, so it is given none of it), each Lambda function with its
name, handler and environment (code that moto never runs: :mod:`~fanwatch.standin.functions` runs the
real handlers), each Kinesis event source mapping with its settings, the Glue database and tables,
the Athena workgroups and named queries. moto keeps them as AWS would report them; it runs none.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Final

from fanwatch.standin.endpoint import AwsEndpoint
from fanwatch.standin.model import StackModel

__all__ = ["register"]

#: The role the registered functions name (moto checks that a function's role exists).
FUNCTION_ROLE: Final = "fanwatch-standin-function"


def _placeholder_code(handler: str) -> bytes:
    """A zip whose module says where the code really runs (moto stores it and never runs it)."""
    module = handler.rsplit(".", 1)[0].replace(".", "/") + ".py"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(module, "# run in-process by fanwatch.standin.functions\n")
    return buffer.getvalue()


def _unhook_moto_invocations(endpoint: AwsEndpoint) -> None:
    """moto (in this process) would invoke a Kinesis mapping's function itself on every put_record,
    through Docker; :mod:`~fanwatch.standin.esm` invokes the real handlers instead, so moto's hook goes."""
    from moto.kinesis.models import kinesis_backends

    for stream in kinesis_backends[endpoint.account][endpoint.region].streams.values():
        stream.lambda_event_source_mappings.clear()


def register(model: StackModel, endpoint: AwsEndpoint) -> None:
    """Register ``model``'s stack, functions, mappings, Glue tables and Athena workgroups on ``endpoint``."""
    cloudformation = endpoint.client("cloudformation")
    cloudformation.create_stack(
        StackName=model.name,
        TemplateBody=json.dumps(
            {
                "Description": "fanwatch on the embedded AWS stand-in (outputs only)",
                "Resources": {},
                "Outputs": {key: {"Value": str(value)} for key, value in model.outputs.items()},
            }
        ),
    )

    iam = endpoint.client("iam")
    role = iam.create_role(
        RoleName=FUNCTION_ROLE,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    lambda_ = endpoint.client("lambda")
    for function in model.functions:
        lambda_.create_function(
            FunctionName=function.name,
            Runtime="python3.12",
            Role=role,
            Handler=function.handler,
            Code={"ZipFile": _placeholder_code(function.handler)},
            Environment={"Variables": dict(function.environment)},
            MemorySize=function.memory_mb,
            Timeout=function.timeout_s,
        )
    for mapping in model.mappings:
        lambda_.create_event_source_mapping(
            FunctionName=model.function(mapping.function).name,
            EventSourceArn=mapping.source_arn,
            StartingPosition=mapping.starting_position,
            BatchSize=mapping.batch_size,
            MaximumBatchingWindowInSeconds=int(mapping.batching_window_s),
            Enabled=True,
        )
    _unhook_moto_invocations(endpoint)

    glue = endpoint.client("glue")
    for database in sorted({table.database for table in model.glue_tables}):
        glue.create_database(DatabaseInput={"Name": database})
    for table in model.glue_tables:
        glue.create_table(
            DatabaseName=table.database,
            TableInput={
                "Name": table.name,
                "TableType": "EXTERNAL_TABLE",
                "Parameters": dict(table.parameters),
                "PartitionKeys": [{"Name": c.name, "Type": c.type} for c in table.partition_keys],
                "StorageDescriptor": {
                    "Columns": [{"Name": c.name, "Type": c.type} for c in table.columns],
                    "Location": table.location,
                },
            },
        )

    athena = endpoint.client("athena")
    for workgroup in model.workgroups:
        athena.create_work_group(Name=workgroup)
    for query in model.queries:
        athena.create_named_query(
            Name=query.name,
            Description=query.description,
            Database=query.database,
            QueryString=query.sql,
            **({"WorkGroup": model.workgroups[0]} if model.workgroups else {}),
        )
