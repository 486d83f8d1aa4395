"""Reading a fan's tachometer: input backends behind one interface, and the RPM estimator.

Backends: :class:`GpioPulseSource` (RPi.GPIO, or rpi-lgpio on a Pi 5), :class:`SimulatedFan` (a
physical model with injectable faults) and :class:`CsvReplay` (a recording).
"""

from fanwatch.edge.tach.estimator import Estimate, RpmEstimator
from fanwatch.edge.tach.gpio import GpioPreflightError, GpioPulseSource, Host, preflight
from fanwatch.edge.tach.replay import CsvReplay, ReplayError
from fanwatch.edge.tach.simfan import FAULT_KINDS, Fault, FaultKind, SimulatedFan
from fanwatch.edge.tach.source import PulseSource
from fanwatch.edge.tach.tachometer import Tachometer

__all__ = [
    "FAULT_KINDS",
    "CsvReplay",
    "Estimate",
    "Fault",
    "FaultKind",
    "GpioPreflightError",
    "GpioPulseSource",
    "Host",
    "PulseSource",
    "ReplayError",
    "RpmEstimator",
    "SimulatedFan",
    "Tachometer",
    "preflight",
]
