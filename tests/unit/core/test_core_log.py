"""The core's log lines: one record, one line, whatever a client put in the strings it logs."""

from __future__ import annotations

import logging
from pathlib import Path

from fanwatch.core.runtime.core_log import CoreLog


def test_a_newline_in_a_logged_topic_cannot_forge_a_log_line(tmp_path: Path) -> None:
    """Issue 14: topics were logged raw, so a newline in one wrote a second, forged line."""
    logger = logging.getLogger("fanwatch.core.runtime.test-thing")
    log = CoreLog("test-thing", tmp_path / "greengrass.log", logger)
    log.open()
    try:
        forged = "fanwatch/x\n2026-11-27 19:35:17,123 [ERROR] fanwatch.core: deployment FAILED\x1b[2J"
        logger.warning("IPC call denied: publish to %s", forged)
        try:
            raise RuntimeError("a traceback keeps its lines")
        except RuntimeError:
            logger.exception("internal error")
    finally:
        log.close()
    lines = (tmp_path / "greengrass.log").read_text().splitlines()
    denied = [line for line in lines if "IPC call denied" in line]
    assert len(denied) == 1 and "fanwatch/x\\n2026-11-27" in denied[0] and "\\x1b[2J" in denied[0]
    assert not any(line.startswith("2026-11-27 19:35:17,123") for line in lines)
    assert any(line.startswith("Traceback") for line in lines)
