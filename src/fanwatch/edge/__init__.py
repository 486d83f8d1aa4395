"""The edge half of fanwatch: the ``fanwatch.Tachometer`` and ``fanwatch.EdgeFilter`` components.

Each component is pure logic (``tach``, ``prefilter``) behind a thin runner (``run_tachometer``,
``run_filter``) that speaks Greengrass IPC through :mod:`fanwatch.edge.ipc`, so the same pipeline runs
on a device, on the local core and in-process for the demo and the tests.
"""

__all__: list[str] = []
