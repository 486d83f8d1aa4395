"""The fallback socket folder in the shared temp folder: made for the core's user alone, or refused."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest

from fanwatch.core.layout import short_socket_path

LONG = Path("/") / ("deep" * 40) / "ipc.socket"


@pytest.fixture
def temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path / f"fw-{os.getuid()}"


def test_the_folder_is_created_0700_for_this_user(temp: Path) -> None:
    path = short_socket_path(LONG)
    assert path.parent == temp and path.name.endswith(".ipc.socket")
    info = temp.lstat()
    assert (stat.S_IMODE(info.st_mode), info.st_uid) == (0o700, os.getuid())
    assert short_socket_path(LONG) == path  # and accepted as it is next time


@pytest.mark.skipif(os.getuid() != 0, reason="giving a folder to another user needs root")
def test_a_folder_another_user_created_first_is_refused_not_taken_over(temp: Path) -> None:
    """Issue 14: a root core chmod-ed such a folder and bound its sockets in it."""
    temp.mkdir(mode=0o700)
    os.chown(temp, 65534, 65534)
    with pytest.raises(PermissionError, match=r"belongs to uid 65534"):
        short_socket_path(LONG)
    assert temp.lstat().st_uid == 65534 and not any(temp.iterdir())


def test_a_folder_others_can_enter_is_refused(temp: Path) -> None:
    temp.mkdir()
    temp.chmod(0o777)
    with pytest.raises(PermissionError, match=r"mode 0777, not 0700"):
        short_socket_path(LONG)
    assert stat.S_IMODE(temp.lstat().st_mode) == 0o777  # refused, not "fixed"


def test_a_symlink_in_its_place_is_refused(temp: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    temp.symlink_to(elsewhere)
    with pytest.raises(PermissionError, match=r"not a folder"):
        short_socket_path(LONG)


def test_a_short_path_is_used_as_it_is(temp: Path) -> None:
    assert short_socket_path(Path("/tmp/x.socket")) == Path("/tmp/x.socket")
    assert not temp.exists()
