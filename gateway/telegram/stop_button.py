"""The Stop button under a streaming answer: its callback data, written and read.

The data names the run that wrote the answer (and, for a per-user thread, its member), so a
press stops that run and never a later one: the thread ignores a stop for a run that is not
its current one. Telegram allows 1-64 bytes of callback data; this is at most 36.
"""

from __future__ import annotations

import attrs

from actors.thread.records import ThreadKey

PREFIX = "stop:"
LABEL = "⏹ Stop"


@attrs.frozen
class StopPress:
    """What a pressed Stop button asks for."""

    run_id: int
    """The run whose answer carried the button."""
    user_id: int | None = None
    """The per-user thread's member (``ThreadKey.user_id``); ``None`` for a shared thread."""


def callback_data(key: ThreadKey, run_id: int) -> str:
    """The callback data of the Stop button of run ``run_id``'s answer in ``key``."""
    if key.user_id is None:
        return f"{PREFIX}{run_id}"
    return f"{PREFIX}{run_id}:{key.user_id}"


def parse(data: str | None) -> StopPress | None:
    """The press ``data`` stands for, or ``None`` if it is not a Stop button's data."""
    if not data or not data.startswith(PREFIX):
        return None
    run, _, user = data.removeprefix(PREFIX).partition(":")
    try:
        return StopPress(int(run), int(user) if user else None)
    except ValueError:
        return None
