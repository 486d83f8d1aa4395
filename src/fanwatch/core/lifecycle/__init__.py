"""One component's lifecycle on a core: the nucleus' state machine, and the processes it drives.

:class:`Service` runs a component version described by a :class:`ServiceSpec` (its lifecycle already
interpolated) through NEW, INSTALLED, STARTING, RUNNING/FINISHED, ERRORED and BROKEN. The rules of
those states are :mod:`.states`; the steps' processes are :mod:`.process`.
"""

from fanwatch.core.lifecycle.service import Service, ServiceSpec

__all__ = ["Service", "ServiceSpec"]
