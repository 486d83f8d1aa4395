"""The components' Install step: a venv in the component's work folder with pinned dependencies.

Run by the recipe with the device's ``python3`` (standard library only, so it runs before any venv
exists). It checks the Python version and the ``venv`` module first and says what to install when
they are missing, picks the GPIO library for the board (rpi-lgpio on a Raspberry Pi 5, RPi.GPIO on
older Pis, none elsewhere), and skips the work when the venv already holds exactly these pins.
Only syntax that Python 3.7 parses is used here, so an old python3 gets the version message, not a
SyntaxError.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = [
    "GPIO_PINS",
    "MIN_PYTHON",
    "InstallError",
    "board",
    "install",
    "main",
    "plan",
    "read_model",
    "stamp_of",
]

MIN_PYTHON = (3, 11)
MODEL_FILE = Path("/proc/device-tree/model")
#: GPIO library pins per board family (the rpi-lgpio shim provides the same RPi.GPIO module on a Pi 5)
GPIO_PINS = {
    "pi5": ["rpi-lgpio==0.6", "lgpio==0.2.2.0"],
    "pi": ["RPi.GPIO==0.7.1"],
    "none": [],
}
STAMP = ".fanwatch-requirements"


class InstallError(RuntimeError):
    """The Install step cannot go on; the message says what to do.

    Not a FanwatchError: the device's python3 runs this file alone, before fanwatch is importable.
    """


def board(model: str | None) -> str:
    """``pi5``, ``pi`` or ``none`` from the device-tree model string (None: no device tree)."""
    if not model or "Raspberry Pi" not in model:
        return "none"
    return "pi5" if "Raspberry Pi 5" in model else "pi"


def read_model(path: Path = MODEL_FILE) -> str | None:
    """The device-tree model string, which says what board this is; None where there is no device tree."""
    try:
        return path.read_bytes().decode(errors="replace").strip("\x00\n ")
    except OSError:
        return None


def plan(
    requirements: str, gpio: str, model: str | None, version: tuple[int, int] = sys.version_info[:2]
) -> list[str]:
    """The exact package pins to install (raises InstallError when this Python cannot run fanwatch)."""
    if tuple(version[:2]) < MIN_PYTHON:
        raise InstallError(
            f"fanwatch needs Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or later on the device, found "
            f"{version[0]}.{version[1]}: use Raspberry Pi OS Bookworm (or later) or install a newer python3"
        )
    pins = [line.strip() for line in requirements.splitlines() if line.strip() and not line.startswith("#")]
    unpinned = [p for p in pins if "==" not in p]
    if unpinned:
        raise InstallError(f"requirements must be pinned with ==, these are not: {', '.join(unpinned)}")
    if gpio == "auto":
        pins += GPIO_PINS[board(model)]
    return pins


def stamp_of(pins: Sequence[str], version: tuple[int, int] = sys.version_info[:2]) -> str:
    """A digest of the pins and the Python version, kept in the venv so that a later Install with the same
    ones does nothing."""
    text = f"python {version[0]}.{version[1]}\n" + "\n".join(pins)
    return hashlib.sha256(text.encode()).hexdigest()


def install(
    work: Path,
    pins: Sequence[str],
    run: Callable[[list[str]], object] = subprocess.check_call,
    python: str = sys.executable,
) -> bool:
    """Create ``work/venv`` and install ``pins`` unless the venv already holds exactly them."""
    venv = work / "venv"
    stamp = venv / STAMP
    wanted = stamp_of(pins)
    if stamp.is_file() and stamp.read_text().strip() == wanted:
        print("fanwatch install: the venv already has these pins; nothing to do", flush=True)
        return False
    if importlib.util.find_spec("ensurepip") is None:
        raise InstallError(
            "python3 cannot create a venv here (no ensurepip): sudo apt-get install python3-venv"
        )
    print(f"fanwatch install: creating {venv} with {', '.join(pins) or 'no packages'}", flush=True)
    run([python, "-m", "venv", "--clear", str(venv)])
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "--no-input"]
    if pins:
        run([*pip, "install", "--no-cache-dir", *pins])
    stamp.write_text(wanted + "\n")
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """The Install step as the recipes run it (``install.py --work DIR --requirements FILE``, the
    Tachometer's with ``--gpio auto``); what stops it is said in one line, exit 1."""
    parser = argparse.ArgumentParser(description="Install step of the fanwatch components")
    parser.add_argument("--work", required=True, type=Path, help="the component's work folder ({work:path})")
    parser.add_argument("--requirements", required=True, type=Path, help="the pinned requirements file")
    parser.add_argument(
        "--gpio", choices=["auto", "none"], default="none", help="add the board's GPIO library"
    )
    args = parser.parse_args(argv)
    try:
        pins = plan(args.requirements.read_text(), args.gpio, read_model())
        install(args.work, pins)
    except InstallError as exc:
        print(f"fanwatch install: {exc}", file=sys.stderr, flush=True)
        return 1
    except subprocess.CalledProcessError as exc:
        print(
            f"fanwatch install: {exc.cmd[0]} failed with exit code {exc.returncode} (on 32-bit Raspberry "
            "Pi OS awscrt builds from source: sudo apt-get install cmake build-essential, and allow time)",
            file=sys.stderr,
            flush=True,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
