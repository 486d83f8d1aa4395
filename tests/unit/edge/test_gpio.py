"""The GPIO backend's preflight names what is wrong; the backend reads falling edges with a pull-up.

RPi.GPIO does not install off a Pi, so these tests describe the machine with a ``Host`` and stand a
recording object in for the ``RPi.GPIO`` module, like gpiozero's mock pins. The real-hardware test
runs only on a Pi with a fan wired to ``FANWATCH_TACH_PIN`` (``FANWATCH_HARDWARE=1``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from fanwatch.edge.tach import GpioPreflightError, GpioPulseSource, Host, preflight

PI4 = "Raspberry Pi 4 Model B Rev 1.4"
PI5 = "Raspberry Pi 5 Model B Rev 1.0"


def host(**changes: Any) -> Host:
    base: dict[str, Any] = dict(
        model=PI4,
        user="ggc_user",
        groups=frozenset({"ggc_group", "gpio"}),
        gpio_devices=(Path("/dev/gpiomem"),),
        has_lgpio_shim=False,
        has_rpi_gpio=True,
        can_access=lambda _p: True,
    )
    base.update(changes)
    return Host(**base)


class FakeGpio(SimpleNamespace):
    """Records what the backend asks of RPi.GPIO; ``edge()`` fires the registered callback."""

    BCM, IN, PUD_UP, FALLING = "BCM", "IN", "PUD_UP", "FALLING"

    def __init__(self, busy: bool = False) -> None:
        super().__init__(calls=[], callback=None, busy=busy)

    def setmode(self, mode: str) -> None:
        self.calls.append(("setmode", mode))

    def setup(self, pin: int, direction: str, pull_up_down: str) -> None:
        self.calls.append(("setup", pin, direction, pull_up_down))

    def add_event_detect(self, pin: int, edge: str, callback: Any) -> None:
        if self.busy:
            raise RuntimeError("Failed to add edge detection")
        self.calls.append(("add_event_detect", pin, edge))
        self.callback = callback

    def remove_event_detect(self, pin: int) -> None:
        self.calls.append(("remove_event_detect", pin))

    def cleanup(self, pin: int) -> None:
        self.calls.append(("cleanup", pin))

    def edge(self, pin: int) -> None:
        self.callback(pin)


def test_a_healthy_pi_passes() -> None:
    assert preflight(17, host()) == []


def test_not_a_pi_is_said_plainly() -> None:
    problems = preflight(17, host(model="QEMU Virtual Machine"))
    assert len(problems) == 1
    assert "not a Raspberry Pi" in problems[0] and "QEMU Virtual Machine" in problems[0]
    assert "'simulated'" in problems[0]
    assert "no /proc/device-tree/model" in preflight(17, host(model=None))[0]


def test_pi5_needs_the_rpi_lgpio_shim() -> None:
    problems = preflight(17, host(model=PI5, has_lgpio_shim=False))
    assert len(problems) == 1 and "Raspberry Pi 5" in problems[0] and "rpi-lgpio" in problems[0]
    assert preflight(17, host(model=PI5, has_lgpio_shim=True)) == []


def test_missing_gpio_library_points_at_the_install_step() -> None:
    problems = preflight(17, host(has_rpi_gpio=False))
    assert len(problems) == 1 and "not installed" in problems[0] and "Install step" in problems[0]


def test_user_outside_the_gpio_group_is_told_how_to_fix_it() -> None:
    problems = preflight(17, host(groups=frozenset({"ggc_group"}), can_access=lambda _p: False))
    assert len(problems) == 1
    assert "sudo usermod -aG gpio ggc_user" in problems[0] and "RequiresPrivilege" in problems[0]


def test_inaccessible_devices_for_a_gpio_member_suggest_the_driver() -> None:
    problems = preflight(17, host(can_access=lambda _p: False))
    assert len(problems) == 1 and "gpio driver" in problems[0]


def test_a_pin_that_is_no_user_gpio_is_refused() -> None:
    assert "not a user GPIO" in preflight(40, host())[0]


def test_the_backend_refuses_to_open_with_every_problem_listed() -> None:
    with pytest.raises(GpioPreflightError) as info:
        GpioPulseSource(
            17, gpio=FakeGpio(), host=host(model=PI5, groups=frozenset(), can_access=lambda _p: False)
        )
    assert "rpi-lgpio" in str(info.value) and "gpio' group" in str(info.value)


def test_a_busy_pin_is_reported_and_released() -> None:
    gpio = FakeGpio(busy=True)
    with pytest.raises(GpioPreflightError, match="pin 17: the pin is busy"):
        GpioPulseSource(17, gpio=gpio, host=host())
    assert ("cleanup", 17) in gpio.calls


def test_falling_edges_with_pull_up_are_timestamped_on_the_monotonic_clock() -> None:
    gpio = FakeGpio()
    source = GpioPulseSource(22, gpio=gpio, host=host())
    assert ("setup", 22, "IN", "PUD_UP") in gpio.calls and ("add_event_detect", 22, "FALLING") in gpio.calls
    before = time.monotonic()
    for _ in range(5):
        gpio.edge(22)
    after = time.monotonic()
    pulses = source.pulses(after)
    assert len(pulses) == 5 and all(before <= p <= after for p in pulses)
    assert source.pulses(after) == []
    source.close()
    assert ("remove_event_detect", 22) in gpio.calls and ("cleanup", 22) in gpio.calls


@pytest.mark.hardware
@pytest.mark.skipif(
    os.environ.get("FANWATCH_HARDWARE") != "1", reason="needs a Pi with a fan: FANWATCH_HARDWARE=1"
)
def test_a_real_fan_on_the_tach_pin_gives_pulses() -> None:  # pragma: no cover - hardware only
    source = GpioPulseSource(int(os.environ.get("FANWATCH_TACH_PIN", "17")))
    try:
        time.sleep(2.0)
        assert len(source.pulses(time.monotonic())) > 10
    finally:
        source.close()
