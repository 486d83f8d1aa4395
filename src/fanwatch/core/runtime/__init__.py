"""The local core on one simulated thing: :class:`LocalCore`, the nucleus the IPC server serves.

It ties the other parts together: it plans deployments (:mod:`fanwatch.core.deployment`), runs each
component's :mod:`~fanwatch.core.lifecycle`, serves IPC (:mod:`fanwatch.core.ipc`) and its control
socket (:mod:`fanwatch.core.control`), and reaches IoT Core through an
:class:`~fanwatch.core.ports.IoTCoreLink`.
"""

from fanwatch.core.runtime.local_core import LocalCore
from fanwatch.core.runtime.nucleus import NUCLEUS_VERSION, nucleus_defaults

__all__ = ["NUCLEUS_VERSION", "LocalCore", "nucleus_defaults"]
