"""A local stand-in for the AWS IoT Greengrass V2 service, driven by botocore's model of it.

:class:`~fanwatch.fleet.controlplane.server.LocalControlPlane` serves ``greengrassv2`` (components,
deployments, core devices), the IoT jobs data plane that carries deployments to devices and the
fleet status topic they report on, in front of moto for S3, STS and the IoT registry.
"""

from fanwatch.fleet.controlplane.server import LocalControlPlane

__all__ = ["LocalControlPlane"]
