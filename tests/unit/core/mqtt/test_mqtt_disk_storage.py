"""The Disk spool's own promises: what add() accepted survives a killed process, the file is private,
and a corrupt file is set aside instead of stopping the core."""

from __future__ import annotations

import logging
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fanwatch.core.mqtt.spooler import Spooler
from fanwatch.core.mqtt.storage import DiskStorage

WRITER = textwrap.dedent(
    """
    import sys
    from fanwatch.core.mqtt.spooler import Spooler
    from fanwatch.core.mqtt.storage import DiskStorage

    spooler = Spooler(DiskStorage(sys.argv[1]))
    n = 0
    while True:  # until killed
        message = spooler.add("fanwatch/fan-001/telemetry", b"reading-%d" % n, 1)
        print(message.id, flush=True)  # printed only once add() has returned
        n += 1
    """
)


def test_every_message_add_accepted_survives_a_kill(tmp_path: Path) -> None:
    path = tmp_path / "spooler.db"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None
    accepted = [int(writer.stdout.readline()) for _ in range(200)]
    writer.send_signal(signal.SIGKILL)  # mid-write: no close, no flush, no goodbye
    writer.wait()
    accepted += [int(line) for line in writer.stdout.read().split()]

    stored = Spooler(DiskStorage(path)).oldest(100_000)
    ids = [m.id for m in stored]
    assert ids[: len(accepted)] == accepted  # everything acknowledged is there, in order
    assert len(ids) - len(accepted) <= 1  # at most the one committed as the kill came
    assert [m.payload for m in stored] == [b"reading-%d" % n for n in range(len(stored))]


def test_the_spool_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "work" / "spool" / "spooler.db"
    storage = DiskStorage(path)
    Spooler(storage).add("t", b"secret-ish telemetry", 1)
    for file in path.parent.iterdir():
        assert stat.S_IMODE(file.stat().st_mode) & 0o077 == 0, file
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    storage.close()


def test_a_corrupt_spool_is_set_aside_and_a_new_one_begun(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "spooler.db"
    path.write_bytes(b"this was never a SQLite database" * 100)
    with caplog.at_level(logging.ERROR):
        spooler = Spooler(DiskStorage(path))
    assert "unreadable" in caplog.text
    kept = [f for f in os.listdir(tmp_path) if f.startswith("spooler.db.corrupt-")]
    assert len(kept) == 1
    assert (tmp_path / kept[0]).read_bytes().startswith(b"this was never")  # kept for inspection
    spooler.add("t", b"still works", 1)
    assert [m.payload for m in spooler.oldest(5)] == [b"still works"]
