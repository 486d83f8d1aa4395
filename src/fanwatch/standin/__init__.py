"""The embedded AWS stand-in: the cloud stack of ``cloud-stack/`` running on 127.0.0.1, no account needed.

moto (in server mode, in this process) serves the AWS APIs; the resources come from the synthesized
CloudFormation template; what moto does not do is done by small parts of this package, one job each:

* :mod:`~fanwatch.standin.endpoint` - how anything reaches the stand-in (endpoint, credentials, region)
* :mod:`~fanwatch.standin.template` / :mod:`~fanwatch.standin.intrinsics` - the template, read into
  :mod:`~fanwatch.standin.model`'s types (:mod:`~fanwatch.standin.refresh` keeps the checked-in copy
  current)
* :mod:`~fanwatch.standin.provision` - creates the resources in moto
* :mod:`~fanwatch.standin.server` - moto server, with faults to switch on
* :mod:`~fanwatch.standin.functions` - Lambda containers for the real handlers
* :mod:`~fanwatch.standin.rules` / :mod:`~fanwatch.standin.iotsql` - the IoT rules engine
* :mod:`~fanwatch.standin.esm` / :mod:`~fanwatch.standin.shards` - Kinesis event source mappings
* :mod:`~fanwatch.standin.firehose` / :mod:`~fanwatch.standin.parquet` - Firehose to a Parquet lake
* :mod:`~fanwatch.standin.inbox` - the alert topic's notifications, read back typed
* :mod:`~fanwatch.standin.lake` / :mod:`~fanwatch.standin.athena` - DuckDB over the lake
* :mod:`~fanwatch.standin.stack_cli` / :mod:`~fanwatch.standin.lake_cli` - ``fanwatch stack up``,
  ``fanwatch lake query``

:class:`EmbeddedAws` puts them together. Needs the ``local`` extra (moto, pyarrow, duckdb, paho-mqtt).
"""

from fanwatch.standin.aws import EmbeddedAws, Names, StandinError
from fanwatch.standin.endpoint import AwsEndpoint
from fanwatch.standin.inbox import Inbox, Notification

__all__ = ["AwsEndpoint", "EmbeddedAws", "Inbox", "Names", "Notification", "StandinError"]
