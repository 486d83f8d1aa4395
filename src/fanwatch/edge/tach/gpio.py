"""The Raspberry Pi GPIO backend, and the preflight that says what is wrong instead of a stack trace.

RPi.GPIO is imported only when this backend opens (it does not install off a Pi). On a Pi 5 the
original RPi.GPIO cannot reach the RP1 GPIO chip; the ``rpi-lgpio`` package provides the same
``RPi.GPIO`` module on top of lgpio, so the same code runs there once it replaces RPi.GPIO.
"""

from __future__ import annotations

import contextlib
import grp
import importlib
import os
import pwd
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

from fanwatch.errors import FanwatchError

__all__ = ["GpioPreflightError", "GpioPulseSource", "Host", "preflight"]

#: BCM numbers of the user GPIOs on the 40-pin header.
BCM_PINS = range(2, 28)


class GpioPreflightError(FanwatchError, RuntimeError):
    """The GPIO backend cannot run here; the message says why and what to do."""


def _read_text(path: Path) -> str | None:
    try:
        return path.read_bytes().decode(errors="replace").strip("\x00\n ")
    except OSError:
        return None


def _installed(dist: str) -> bool:
    try:
        metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        return False
    return True


def _current_user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def _current_groups() -> set[str]:
    names = set()
    for gid in {os.getegid(), *os.getgroups()}:
        try:
            names.add(grp.getgrgid(gid).gr_name)
        except KeyError:
            continue
    return names


@dataclass(frozen=True)
class Host:
    """What the preflight looks at; tests build one that describes another machine."""

    model: str | None = field(default_factory=lambda: _read_text(Path("/proc/device-tree/model")))
    user: str = field(default_factory=_current_user)
    groups: frozenset[str] = field(default_factory=lambda: frozenset(_current_groups()))
    gpio_devices: tuple[Path, ...] = field(
        default_factory=lambda: (*tuple(sorted(Path("/dev").glob("gpiochip*"))), Path("/dev/gpiomem"))
    )
    has_lgpio_shim: bool = field(default_factory=lambda: _installed("rpi-lgpio"))
    has_rpi_gpio: bool = field(default_factory=lambda: _installed("RPi.GPIO") or _installed("rpi-lgpio"))
    can_access: Callable[[Path], bool] = lambda p: p.exists() and os.access(p, os.R_OK | os.W_OK)

    @property
    def is_pi(self) -> bool:
        return self.model is not None and "Raspberry Pi" in self.model

    @property
    def is_pi5(self) -> bool:
        return self.model is not None and "Raspberry Pi 5" in self.model


def preflight(pin: int, host: Host | None = None) -> list[str]:
    """Everything that stops the GPIO backend from reading ``pin`` here, as sentences (empty: all good)."""
    host = host or Host()
    problems = []
    if pin not in BCM_PINS:
        problems.append(
            f"pin {pin} is not a user GPIO: use a BCM number from 2 to 27 (GPIO17 is header pin 11)"
        )
    if not host.is_pi:
        seen = f"the device tree says {host.model!r}" if host.model else "there is no /proc/device-tree/model"
        problems.append(
            f"this is not a Raspberry Pi ({seen}): set backend to 'simulated' or 'replay' to run without one"
        )
        return problems
    if not host.has_rpi_gpio:
        problems.append(
            "the RPi.GPIO module is not installed in the component's venv: redeploy the component so its "
            "Install step runs (on a Pi 5 it installs rpi-lgpio, elsewhere RPi.GPIO)"
        )
    elif host.is_pi5 and not host.has_lgpio_shim:
        problems.append(
            "this is a Raspberry Pi 5, where RPi.GPIO cannot reach the RP1 GPIO chip: install rpi-lgpio in "
            "the component's venv instead (pip uninstall RPi.GPIO; pip install rpi-lgpio)"
        )
    if not any(host.can_access(d) for d in host.gpio_devices):
        if "gpio" not in host.groups and host.user != "root":
            problems.append(
                f"user {host.user!r} may not open the GPIO devices: add it to the 'gpio' group "
                f"(sudo usermod -aG gpio {host.user}, then restart Greengrass) rather than setting "
                "RequiresPrivilege, which would run the whole component as root"
            )
        else:
            names = ", ".join(str(d) for d in host.gpio_devices) or "none found"
            problems.append(f"no GPIO device can be opened ({names}): is the gpio driver loaded?")
    return problems


class GpioPulseSource:
    """Falling edges on a BCM pin with the internal pull-up, timestamped in the edge callback.

    ``gpio`` is the ``RPi.GPIO`` module (imported here when not given). The timestamps use
    ``time.monotonic``, the same timebase as :class:`fanwatch.edge.clock.MonotonicClock`.
    """

    simulated = False

    def __init__(self, pin: int, *, gpio: ModuleType | Any | None = None, host: Host | None = None) -> None:
        problems = preflight(pin, host)
        if problems:
            raise GpioPreflightError(f"GPIO backend on pin {pin}: " + "; ".join(problems))
        self.pin = pin
        self._edges: deque[float] = deque()
        self._lock = threading.Lock()
        try:
            self._gpio = gpio or importlib.import_module("RPi.GPIO")
        except (ImportError, RuntimeError) as exc:
            raise GpioPreflightError(
                f"GPIO backend on pin {pin}: RPi.GPIO does not load here ({exc})"
            ) from None
        g = self._gpio
        try:
            g.setmode(g.BCM)
            g.setup(pin, g.IN, pull_up_down=g.PUD_UP)
            g.add_event_detect(pin, g.FALLING, callback=self._on_edge)
        except RuntimeError as exc:  # RPi.GPIO says "Failed to add edge detection" for a pin in use
            self._release()
            raise GpioPreflightError(
                f"GPIO backend on pin {pin}: the pin is busy ({exc}); another process or a device-tree "
                "overlay (w1-gpio, gpio-fan, ...) holds it: free it or choose another pin"
            ) from None

    def _on_edge(self, _channel: int) -> None:
        t = time.monotonic()
        with self._lock:
            self._edges.append(t)

    def pulses(self, until: float) -> Sequence[float]:
        out = []
        with self._lock:
            while self._edges and self._edges[0] <= until:
                out.append(self._edges.popleft())
        return out

    def label_at(self, t: float) -> None:
        return None

    def target_at(self, t: float) -> None:
        return None  # a real or recorded fan: the configured target, if any

    def _release(self) -> None:
        with contextlib.suppress(RuntimeError, ValueError):
            self._gpio.remove_event_detect(self.pin)
        self._gpio.cleanup(self.pin)

    def close(self) -> None:
        self._release()
