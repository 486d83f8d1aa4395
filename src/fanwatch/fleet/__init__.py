"""Greengrass fleets: publish component versions, roll them out to thing groups with a canary, watch
the devices and roll back, through the ``greengrassv2`` and ``iot`` APIs, against AWS or the local
stand-ins with the same code.

:mod:`~fanwatch.fleet.controlplane` is the local stand-in for the Greengrass service itself.
"""

__all__: list[str] = []
