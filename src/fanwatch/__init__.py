"""fanwatch: watch fans on a fleet of Raspberry Pis with AWS IoT Greengrass v2.

The parts, and the one direction data flows through them, are drawn in ``docs/architecture.md``:
:mod:`fanwatch.edge` (the two Greengrass components), :mod:`fanwatch.telemetry` (the message contract
between edge and cloud), :mod:`fanwatch.core` (a local Greengrass core), :mod:`fanwatch.cloud` (the
Lambdas) and :mod:`fanwatch.rcf` (the forest they score with). Every part may use
:mod:`fanwatch.limits` (facts about AWS IoT, Greengrass and fans) and :mod:`fanwatch.errors` (the root
of every exception fanwatch raises).
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
