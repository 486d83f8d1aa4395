"""Athena from a current boto3 (rest-json since botocore 1.44.18) reaches moto's Athena on the stand-in."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import botocore.exceptions
import pytest

from fanwatch.standin import AwsEndpoint
from fanwatch.standin.server import MotoServer


@pytest.fixture
def server() -> Iterator[MotoServer]:
    server = MotoServer()
    server.start()
    urllib.request.urlopen(urllib.request.Request(f"{server.url}/moto-api/reset", method="POST")).close()
    yield server
    server.stop()


def test_work_groups_and_named_queries_round_trip_by_body_path_and_query(server: MotoServer) -> None:
    athena = AwsEndpoint(server.url).client("athena")
    athena.create_work_group(Name="fanwatch", Description="the stack's")  # POST /workgroups, body
    assert athena.get_work_group(WorkGroup="fanwatch")["WorkGroup"]["Description"] == "the stack's"  # path
    names = [w["Name"] for w in athena.list_work_groups(MaxResults=10)["WorkGroups"]]  # query, an integer
    assert "fanwatch" in names and "primary" in names

    created = athena.create_named_query(
        Name="stalls", Database="fanwatch", QueryString="SELECT 1", WorkGroup="fanwatch"
    )
    query = athena.get_named_query(NamedQueryId=created["NamedQueryId"])["NamedQuery"]
    assert (query["Name"], query["QueryString"], query["WorkGroup"]) == ("stalls", "SELECT 1", "fanwatch")
    listed = athena.list_named_queries(WorkGroup="fanwatch")["NamedQueryIds"]
    assert listed == [created["NamedQueryId"]]


def test_moto_s_error_reaches_the_client_as_the_error_it_names(server: MotoServer) -> None:
    athena = AwsEndpoint(server.url).client("athena")
    athena.create_work_group(Name="fanwatch")
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        athena.create_work_group(Name="fanwatch")
    assert raised.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "already exists" in raised.value.response["Error"]["Message"]


def test_a_query_execution_runs_by_its_path_members(server: MotoServer) -> None:
    athena = AwsEndpoint(server.url).client("athena")
    started = athena.start_query_execution(QueryString="SELECT 1", WorkGroup="primary")
    execution = athena.get_query_execution(QueryExecutionId=started["QueryExecutionId"])["QueryExecution"]
    assert execution["Status"]["State"] == "SUCCEEDED"


def test_a_fault_throttles_athena_and_the_sdk_s_retry_gets_through(server: MotoServer) -> None:
    athena = AwsEndpoint(server.url).client("athena", retries=1)
    server.faults.refuse("athena", times=1)
    answer = athena.list_work_groups()
    assert server.faults.refused == 1
    assert answer["ResponseMetadata"]["RetryAttempts"] == 1
    assert [w["Name"] for w in answer["WorkGroups"]] == ["primary"]
