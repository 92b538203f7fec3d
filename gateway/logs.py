"""Logging setup: human-readable by default, JSON lines with ``--json-logs``.

Tracebacks never show local variables (loguru's ``diagnose``), so a key held in a local
variable cannot leak into a log.

The demo keeps its console for the conversation: while it runs, the log goes to a file
instead of stderr (``to_file``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
from loguru import logger

if TYPE_CHECKING:
    from loguru import Record


@attrs.define
class _Console:
    """How the console log is set up, and whether it is diverted to a file now."""

    json: bool = False
    level: str = "INFO"
    diverted: bool = False


_CONSOLE = _Console()


def setup(*, json: bool = False, level: str = "INFO") -> None:
    logger.remove()
    _CONSOLE.json, _CONSOLE.level = json, level
    logger.add(
        sys.stderr,
        level=level,
        serialize=json,
        diagnose=False,
        backtrace=False,
        filter=_on_console,
    )


def _on_console(record: Record) -> bool:
    del record
    return not _CONSOLE.diverted


@contextmanager
def to_file(path: Path) -> Iterator[Path]:
    """While inside, log to ``path`` (emptied first) instead of stderr; yield ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logger.add(
        path,
        level=_CONSOLE.level,
        serialize=_CONSOLE.json,
        diagnose=False,
        backtrace=False,
        mode="w",
        encoding="utf-8",
    )
    _CONSOLE.diverted = True
    try:
        yield path
    finally:
        _CONSOLE.diverted = False
        with suppress(ValueError):  # gone already: ``setup`` (run again meanwhile) removes all
            logger.remove(handler)
