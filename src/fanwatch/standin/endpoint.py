"""The one place that says how code reaches the embedded AWS stand-in: endpoint, credentials, region.

Everything that talks to the stand-in (the handlers in their function containers, the stand-in's own
parts, the demo, ``fanwatch lake query``) gets its boto3 clients or its environment from here, so the
only difference from AWS is the endpoint. boto3 honours ``AWS_ENDPOINT_URL`` for every client that
does not pass ``endpoint_url`` itself, which is how the unchanged handlers find the stand-in.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import Any, Final

from botocore.config import Config

from fanwatch.limits import DEFAULT_REGION  # the local core's region: both sides pretend the same

__all__ = ["ACCOUNT", "CREDENTIALS", "AwsEndpoint"]

#: moto's account: ARNs the stand-in builds must name the account moto answers with.
ACCOUNT: Final = "123456789012"
#: Dummy credentials: moto accepts anything; real ones must never reach a local endpoint.
CREDENTIALS: Final = {"aws_access_key_id": "fanwatch-local", "aws_secret_access_key": "fanwatch-local"}

#: What the variables below would otherwise pick up from the developer's machine and send elsewhere.
_CLEARED: Final = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_CONFIG_FILE")


_SESSION_LOCK = threading.Lock()


@functools.cache
def _session() -> Any:
    """One boto3 session for the stand-in's own clients: it loads each service model once (a new
    session per client would parse the models again, about 0.3 s each)."""
    import boto3

    return boto3.session.Session()


@dataclass(frozen=True, slots=True)
class AwsEndpoint:
    """Where the stand-in listens (``http://127.0.0.1:<port>``) and the region it serves."""

    url: str
    region: str = DEFAULT_REGION
    account: str = ACCOUNT

    def environment(self) -> dict[str, str]:
        """The variables that point an unchanged boto3 (a handler, the AWS CLI, gdk) at the stand-in."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }

    @staticmethod
    def cleared() -> tuple[str, ...]:
        """Variables to remove while the stand-in's environment applies (a profile would win over it)."""
        return _CLEARED

    def client(self, service: str, *, retries: int | None = None) -> Any:
        """A boto3 client for ``service`` on the stand-in; ``retries``: the SDK's attempts (standard mode)."""
        config = Config(retries={"mode": "standard", "max_attempts": retries}) if retries else None
        with _SESSION_LOCK:  # creating clients is not thread-safe; using them is
            return _session().client(
                service, endpoint_url=self.url, region_name=self.region, config=config, **CREDENTIALS
            )

    def arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        """An ARN in the stand-in's account and region (S3 and IAM ARNs have neither or no region)."""
        region = self.region if regional else ""
        account = self.account if service not in ("s3",) else ""
        return f"arn:aws:{service}:{region}:{account}:{resource}"
