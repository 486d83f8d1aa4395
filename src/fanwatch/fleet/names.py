"""Names the fleet tools, the GDK CLI and the cloud stack must agree on, defined once.

``gdk component publish`` uploads to ``<bucket>-<region>-<account>``, where ``<bucket>`` comes from
``gdk-config.json``. The stack names its artifacts bucket the same way, so a plain
``gdk component publish`` lands where the devices' token exchange role may read, in any account and
region. This module imports nothing heavy: the CDK stack imports it too.
"""

from __future__ import annotations

from typing import Final

__all__ = ["DEFAULT_PREFIX", "DEFAULT_STACK", "artifacts_bucket", "gdk_bucket"]

#: The stack's default name prefix, and its default stack name.
DEFAULT_PREFIX: Final = "fanwatch"
DEFAULT_STACK: Final = f"{DEFAULT_PREFIX}-cloud"


def gdk_bucket(prefix: str = DEFAULT_PREFIX) -> str:
    """The ``publish.bucket`` of the gdk projects (gdk appends the region and the account)."""
    return f"{prefix}-components"


def artifacts_bucket(region: str, account: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The artifacts bucket: gdk's ``<bucket>-<region>-<account>``."""
    return f"{gdk_bucket(prefix)}-{region}-{account}"
