"""The Install step: board detection, pinned plans, the venv made once, clear messages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fanwatch.edge import install

REQUIREMENTS = "awsiotsdk==1.31.0\nawscrt==0.36.1\n"


@pytest.mark.parametrize(
    ("model", "board"),
    [
        ("Raspberry Pi 5 Model B Rev 1.0", "pi5"),
        ("Raspberry Pi 4 Model B Rev 1.4", "pi"),
        ("Raspberry Pi Zero 2 W Rev 1.0", "pi"),
        ("QEMU", "none"),
        (None, "none"),
    ],
)
def test_the_board_picks_the_gpio_library(model: str | None, board: str) -> None:
    assert install.board(model) == board


def test_plans_pin_everything_and_add_the_boards_gpio_library() -> None:
    assert install.plan(REQUIREMENTS, "auto", "Raspberry Pi 5 Model B", (3, 11)) == [
        "awsiotsdk==1.31.0",
        "awscrt==0.36.1",
        "rpi-lgpio==0.6",
        "lgpio==0.2.2.0",
    ]
    assert install.plan(REQUIREMENTS, "auto", "Raspberry Pi 3 Model B", (3, 11))[-1] == "RPi.GPIO==0.7.1"
    assert install.plan(REQUIREMENTS, "none", "Raspberry Pi 5 Model B", (3, 11)) == [
        "awsiotsdk==1.31.0",
        "awscrt==0.36.1",
    ]


def test_an_old_python_or_an_unpinned_requirement_is_refused_with_the_fix() -> None:
    expected = r"Python 3\.11 or later on the device, found 3\.9.*Bookworm"
    with pytest.raises(install.InstallError, match=expected):
        install.plan(REQUIREMENTS, "none", None, (3, 9))
    with pytest.raises(install.InstallError, match="not: awsiotsdk>=1"):
        install.plan("awsiotsdk>=1\n", "none", None, (3, 11))


def test_the_venv_is_made_once_for_the_same_pins(tmp_path: Path) -> None:
    commands: list[list[str]] = []

    def run(command: list[str]) -> None:
        commands.append(command)
        if command[1:3] == ["-m", "venv"]:
            (tmp_path / "venv" / "bin").mkdir(parents=True, exist_ok=True)

    pins = ["awsiotsdk==1.31.0"]
    assert install.install(tmp_path, pins, run=run, python="/usr/bin/python3")
    assert commands[0] == ["/usr/bin/python3", "-m", "venv", "--clear", str(tmp_path / "venv")]
    assert commands[1][0] == str(tmp_path / "venv/bin/python") and commands[1][-1] == "awsiotsdk==1.31.0"
    assert not install.install(tmp_path, pins, run=run)  # same pins: nothing to do
    assert install.install(tmp_path, ["awsiotsdk==1.32.0"], run=run)  # new pins: the venv is rebuilt
    assert len(commands) == 4


def test_the_command_line_reports_failures_instead_of_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("awsiotsdk\n")
    assert install.main(["--work", str(tmp_path), "--requirements", str(req)]) == 1
    assert "must be pinned" in capsys.readouterr().err


def test_the_script_runs_on_a_bare_python_before_fanwatch_is_importable(tmp_path: Path) -> None:
    # The recipe runs this file with the device's python3: no venv, no fanwatch on sys.path (-I drops
    # PYTHONPATH and the user's site-packages, as on a fresh Pi).
    script = Path(install.__file__)
    req = tmp_path / "requirements.txt"
    req.write_text("awsiotsdk\n")
    done = subprocess.run(
        [sys.executable, "-I", str(script), "--work", str(tmp_path), "--requirements", str(req)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "must be pinned" in done.stderr and "Traceback" not in done.stderr
