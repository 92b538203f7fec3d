from __future__ import annotations

from pathlib import Path

import pytest

from actors.thread_records import Outcome, PendingInput, ThreadKey, ThreadRecord
from gateway.store import InboxEntry, Store
from providers.chat_agent import Turn
from providers.pool import SavedKeyState

pytestmark = pytest.mark.anyio
KEY = ThreadKey(-100, 2)


async def test_thread_records_and_outcomes_round_trip(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite3")
    assert await store.load(KEY) is None
    record = ThreadRecord(
        "s1", 3, 7, (PendingInput(1, "a", 1),), (PendingInput(2, "b", parked=True),), True, ("a",)
    )
    await store.save(KEY, record)
    assert await store.load(KEY) == record
    reopened = Store(tmp_path / "db.sqlite3")
    assert await reopened.load(KEY) == record
    await store.record_outcome(KEY, 1, Outcome.PARKED, "")
    await store.record_outcome(KEY, 1, Outcome.ANSWERED, "")
    assert await store.outcomes(KEY) == [(1, "parked"), (1, "answered")]
    store.close()
    reopened.close()


async def test_inbox_dedupes_and_tracks_unanswered(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite3")
    entry = InboxEntry(10, KEY, 5, {"kind": "message", "message_id": 5, "text": "hi", "user_id": 1})
    assert await store.accept(entry) is True
    assert await store.accept(entry) is False
    assert await store.unanswered() == [entry]
    await store.record_outcome(KEY, 5, Outcome.PARKED, "")
    assert await store.unanswered() == [entry], "parked is not final"
    await store.record_outcome(KEY, 5, Outcome.ANSWERED, "")
    assert await store.unanswered() == []
    assert await store.last_update_id() == 10
    store.close()


async def test_history_and_pool_state(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite3")
    await store.append("s1", [Turn("user", "q"), Turn("assistant", "a")])
    await store.append("s2", [Turn("user", "other")])
    assert await store.turns("s1") == [Turn("user", "q"), Turn("assistant", "a")]
    saved = [SavedKeyState("key-1", False, 123.0, "HTTP 402", 4, 1)]
    store.save_pool("llm", saved)
    assert list(store.load_pool("llm")) == saved
    store.close()
