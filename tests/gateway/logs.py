"""What the gateway logged, for tests that judge its log lines."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from loguru import logger


@contextmanager
def captured_logs(level: str = "INFO") -> Iterator[list[str]]:
    """Collect every log line at ``level`` or above as ``"LEVEL message"`` while inside."""
    lines: list[str] = []
    handler = logger.add(
        lambda message: lines.append(str(message).rstrip("\n")),
        level=level,
        format="{level} {message}",
        diagnose=False,
    )
    try:
        yield lines
    finally:
        logger.remove(handler)
