import os
import socket
import stat
from pathlib import Path

import pytest

from fanwatch.core.unixsocket import listen_private


def test_the_socket_is_owner_only_and_the_umask_is_given_back(tmp_path: Path) -> None:
    before = os.umask(0o022)
    try:
        sock = listen_private(tmp_path / "run" / "ipc.socket")
        try:
            assert stat.S_IMODE((tmp_path / "run" / "ipc.socket").stat().st_mode) == 0o600
            assert os.umask(0o022) == 0o022  # nothing else created now gets the narrowed umask
        finally:
            sock.close()
    finally:
        os.umask(before)


def test_a_stale_socket_is_replaced_and_any_other_file_refused(tmp_path: Path) -> None:
    stale = tmp_path / "stale.socket"
    left_behind = socket.socket(socket.AF_UNIX)
    left_behind.bind(str(stale))
    left_behind.close()
    listen_private(stale).close()

    precious = tmp_path / "notes.txt"
    precious.write_text("keep me")
    with pytest.raises(FileExistsError, match="is not a socket"):
        listen_private(precious)
    assert precious.read_text() == "keep me"
