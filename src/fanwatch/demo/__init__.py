"""``fanwatch demo`` (``make demo``): a small fleet of simulated fans with faults on local Greengrass cores.

The command lives in :mod:`fanwatch.demo.cli`; the fleet it runs in :mod:`fanwatch.demo.scenario`, the
run on local cores in :mod:`fanwatch.demo.local` and the one without cores in
:mod:`fanwatch.demo.inprocess`; what it reads back in :mod:`fanwatch.demo.observations`, and what it
prints and draws in :mod:`fanwatch.demo.report` and :mod:`fanwatch.demo.plot`. See ``docs/demo.md``.
"""

__all__: list[str] = []
