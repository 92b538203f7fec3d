from __future__ import annotations

import sys
from pathlib import Path

import pytest
from loguru import logger

from gateway import logs


def test_to_file_sends_the_console_log_to_a_file_while_inside(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.setup()  # the console log, on this test's stderr
    try:
        logger.info("before the demo")
        with logs.to_file(tmp_path / "data" / "demo.log") as path:
            logger.info("while the demo runs")
        logger.info("after the demo")
    finally:
        logger.remove()
        logger.add(_stderr)  # as loguru starts: to stderr
    console = capsys.readouterr().err
    assert "before the demo" in console
    assert "after the demo" in console
    assert "while the demo runs" not in console
    assert "while the demo runs" in path.read_text()
    assert "before the demo" not in path.read_text()


def _stderr(message: str) -> None:
    sys.stderr.write(message)
