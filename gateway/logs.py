"""Logging setup: human-readable by default, JSON lines with ``--json-logs``.

Tracebacks never show local variables (loguru's ``diagnose``), so a key held in a local
variable cannot leak into a log.
"""

from __future__ import annotations

import sys

from loguru import logger


def setup(*, json: bool = False, level: str = "INFO") -> None:
    logger.remove()
    logger.add(sys.stderr, level=level, serialize=json, diagnose=False, backtrace=False)
