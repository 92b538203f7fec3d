from __future__ import annotations

import base64
import json
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import anyio
import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.thread.ports import ImagePart, RunRequest
from actors.thread.records import (
    Concluded,
    Exchange,
    MediaKind,
    MediaRef,
    Outcome,
    PendingInput,
    ThreadKey,
    ThreadRecord,
    Turn,
)
from gateway.exceptions import StoreUnavailableError
from gateway.store.codec import record_from_json, record_to_json
from gateway.store.sqlite import InboxEntry, Store
from providers.chain import FallbackChain, ProviderEntry
from providers.chat_agent import ChatAgent, trim
from providers.http import open_chat_http
from providers.openai_client import ChatClient
from providers.pool import CredentialPool, SavedKeyState
from providers.secrets import ApiKey
from tests.fakes.llm import LLMSimulator, llm_server
from tests.fakes.sink import RecordingSink
from tests.gateway.store.conftest import Location, raw, refuse_inserts

pytestmark = pytest.mark.anyio
KEY = ThreadKey(-100, 2)
__all__ = ["llm_server"]  # the fixture


async def test_thread_records_and_outcomes_round_trip(location: Location) -> None:
    store = Store(location)
    assert await store.load(KEY) is None
    record = ThreadRecord(
        "s1", 3, 7, (PendingInput(1, "a", 1),), (PendingInput(2, "b", parked=True),), True, ("a",)
    )
    await store.save(KEY, record)
    assert await store.load(KEY) == record
    reopened = Store(location)
    assert await reopened.load(KEY) == record
    await store.record_outcome(KEY, 1, Outcome.PARKED, "")
    await store.record_outcome(KEY, 1, Outcome.ANSWERED, "")
    assert await store.outcomes(KEY) == [(1, "parked"), (1, "answered")]
    store.close()
    reopened.close()


async def test_every_session_of_a_thread_is_kept_for_the_record(location: Location) -> None:
    store = Store(location)
    before = time.time()
    await store.save(KEY, ThreadRecord("first"))
    await store.save(KEY, ThreadRecord("first", run_seq=1))  # same session: no new row
    await store.save(KEY, ThreadRecord("second", generation=1))  # a reset
    await store.save(ThreadKey(-100, 3), ThreadRecord("elsewhere"))
    sessions = await store.sessions(KEY)
    assert [session for session, _ in sessions] == ["first", "second"]
    assert all(before - 1 <= at <= time.time() + 1 for _, at in sessions), "wall-clock times"
    store.close()


async def test_inbox_dedupes_and_tracks_unanswered(location: Location) -> None:
    store = Store(location)
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


async def test_a_record_and_the_outcomes_it_concludes_are_one_write(location: Location) -> None:
    counted: list[Outcome] = []
    store = Store(location, on_outcome=lambda key, c: counted.append(c.outcome))
    for update_id, message_id in ((10, 5), (11, 6)):
        payload = {"kind": "message", "message_id": message_id, "text": "hi", "user_id": 1}
        await store.accept(InboxEntry(update_id, KEY, message_id, payload))
    running = ThreadRecord("s1", run_seq=2, in_flight=(PendingInput(6, "hi"),))
    await store.save(KEY, running, [Concluded(5, Outcome.ANSWERED), Concluded(6, Outcome.PARKED)])
    assert await store.load(KEY) == running
    assert await store.outcomes(KEY) == [(5, "answered"), (6, "parked")]
    assert [e.message_id for e in await store.unanswered()] == [6], "answered: closed"
    assert counted == [Outcome.ANSWERED, Outcome.PARKED]
    # Atomic: an outcome that cannot be written leaves the record as it was.
    refuse_inserts(location, "outcomes")
    with pytest.raises(StoreUnavailableError):
        await store.save(KEY, ThreadRecord("s1", run_seq=3), [Concluded(6, Outcome.ANSWERED)])
    assert await store.load(KEY) == running
    assert counted == [Outcome.ANSWERED, Outcome.PARKED]
    store.close()


async def append(store: Store, session: str, turns: Sequence[Turn]) -> None:
    """An answered turn, written as the thread writes it: with its record."""
    await store.save(
        ThreadKey(hash(session)), ThreadRecord(session), (), Exchange(session, (*turns,))
    )


async def test_history_and_pool_state(location: Location) -> None:
    store = Store(location)
    await append(store, "s1", [Turn("user", "q"), Turn("assistant", "a")])
    await append(store, "s2", [Turn("user", "other")])
    assert await store.recent("s1", 100) == [Turn("user", "q"), Turn("assistant", "a")]
    assert await store.recent("s1", 1) == [Turn("assistant", "a")], "the newest that fit"
    assert await store.recent("s1", 0) == []
    saved = [SavedKeyState("key-1", False, 123.0, "HTTP 402", 4, 1)]
    await store.save_pool("llm", saved)
    assert list(await store.load_pool("llm")) == saved
    with raw(location) as db:
        db.execute("DROP TABLE pool_state")
    with pytest.raises(StoreUnavailableError):  # never a raw sqlite3.Error
        await store.save_pool("llm", saved)
    with pytest.raises(StoreUnavailableError):
        await store.load_pool("llm")
    store.close()


@given(
    contents=st.lists(st.text(max_size=30), max_size=12),
    budget=st.integers(min_value=0, max_value=200),
)
@settings(max_examples=60, deadline=None)
def test_the_store_keeps_what_trim_keeps(contents: list[str], budget: int) -> None:
    turns = [Turn("user" if i % 2 else "assistant", c) for i, c in enumerate(contents)]
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "db.sqlite3")
        try:
            anyio.run(append, store, "s", turns)
            assert anyio.run(store.recent, "s", budget) == trim(turns, budget)
        finally:
            store.close()


async def test_a_file_from_before_the_chars_column_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    with sqlite3.connect(path) as old:
        old.execute(
            "CREATE TABLE turns (id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL,"
            " role TEXT NOT NULL, content TEXT NOT NULL)"
        )
        old.execute("INSERT INTO turns (session_id, role, content) VALUES ('s', 'user', 'hello')")
    old.close()
    store = Store(path)
    assert await store.recent("s", 5) == [Turn("user", "hello")]
    assert await store.recent("s", 4) == []
    store.close()


media = st.builds(
    MediaRef,
    kind=st.sampled_from(MediaKind),
    file_id=st.text(min_size=1, max_size=12),
    size=st.none() | st.integers(min_value=0),
    mime_type=st.text(max_size=12),
    file_name=st.text(max_size=12),
    duration=st.none() | st.integers(min_value=0),
)
inputs = st.builds(
    PendingInput,
    message_id=st.integers(min_value=1),
    text=st.text(max_size=20),
    attempts=st.integers(min_value=0, max_value=3),
    parked=st.booleans(),
    regenerate=st.booleans(),
    media=st.lists(media, max_size=3).map(tuple),
    user_id=st.none() | st.integers(),
    reacted=st.booleans(),
)


@given(
    record=st.builds(
        ThreadRecord,
        session_id=st.text(min_size=1, max_size=12),
        generation=st.integers(min_value=0),
        run_seq=st.integers(min_value=0),
        in_flight=st.lists(inputs, max_size=3).map(tuple),
        queued=st.lists(inputs, max_size=3).map(tuple),
        parked=st.booleans(),
        last_inputs=st.lists(st.text(max_size=10), max_size=3).map(tuple),
        model=st.none() | st.text(max_size=10),
        last_media=st.lists(media, max_size=2).map(tuple),
    )
)
def test_a_thread_record_round_trips_through_json(record: ThreadRecord) -> None:
    text = record_to_json(record)
    assert set(json.loads(text)) == {f.name for f in attrs.fields(ThreadRecord)}, "every field"
    assert record_from_json(text) == record


def test_a_record_written_before_inputs_had_a_sender_reads_without_one() -> None:
    old = (
        '{"session_id": "s", "generation": 0, "run_seq": 1, "in_flight": [{"message_id": 5,'
        ' "text": "hi", "attempts": 0, "parked": false, "regenerate": false}], "queued": [],'
        ' "parked": false, "last_inputs": ["hi"], "model": null}'
    )
    [pending] = record_from_json(old).in_flight
    assert (pending.user_id, pending.reacted) == (None, False)
    sent = PendingInput(6, "yo", user_id=77, reacted=True)
    written = json.loads(record_to_json(ThreadRecord("s", queued=(sent,))))
    assert written["queued"][0] | {"user_id": 77, "reacted": True} == written["queued"][0]
    assert (
        "user_id"
        not in json.loads(record_to_json(ThreadRecord("s", queued=(PendingInput(7, "x"),))))[
            "queued"
        ][0]
    )


async def test_a_file_from_before_the_session_and_chat_columns_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    record = ThreadRecord("old-session", generation=2)
    with sqlite3.connect(path) as old:
        old.execute("CREATE TABLE threads (thread_key TEXT PRIMARY KEY, record TEXT NOT NULL)")
        old.execute("INSERT INTO threads VALUES (?, ?)", (str(KEY), record_to_json(record)))
        old.execute(
            "CREATE TABLE outcomes (thread_key TEXT NOT NULL, message_id INTEGER NOT NULL,"
            " outcome TEXT NOT NULL, detail TEXT NOT NULL, at REAL NOT NULL)"
        )
    old.close()
    store = Store(path)
    assert await store.load(KEY) == record
    entry = InboxEntry(1, KEY, 9, {"kind": "message", "message_id": 9, "text": "x"})
    await store.accept(entry)
    await store.record_outcome(KEY, 9, Outcome.ANSWERED, "")
    assert await store.unanswered() == [], "a final outcome closes the inbox entry"
    await store.save(KEY, ThreadRecord("new-session", generation=3))
    sessions = [session for session, _ in await store.sessions(KEY)]
    assert sessions == ["old-session", "new-session"]
    store.close()


async def test_commits_leave_checkpoints_to_the_worker_thread(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite3")
    for _ in range(1500):  # 6 MB: SQLite would checkpoint (and reuse the log) at 4 MB
        await append(store, "s", [Turn("user", "x" * 4000)])
    wal = tmp_path / "db.sqlite3-wal"
    assert wal.stat().st_size > 5_000_000, "nothing was checkpointed inside a commit"
    logged, copied = await store.checkpoint()
    assert logged > 0
    assert copied == logged
    assert len(await store.recent("s", 10_000)) == 2
    store.close()


def committed_turns(location: Location) -> int:
    """Turns another connection sees (what is committed)."""
    with raw(location) as db:
        return int(db.execute("SELECT COUNT(*) FROM turns").fetchone()[0])


async def test_history_is_written_with_the_conclusion_of_its_run(location: Location) -> None:
    store = Store(location)
    exchange = Exchange("s", (Turn("user", "q"), Turn("assistant", "a")))
    await store.save(KEY, ThreadRecord("s", run_seq=1), [Concluded(5, Outcome.ANSWERED)], exchange)
    assert committed_turns(location) == 2, "in the transaction of the run's conclusion"
    again = Exchange("s", (Turn("user", "q"), Turn("assistant", "a2")), replaces_last=True)
    await store.save(KEY, ThreadRecord("s", run_seq=2), [Concluded(6, Outcome.ANSWERED)], again)
    assert await store.recent("s", 100) == [Turn("user", "q"), Turn("assistant", "a2")], (
        "/retry replaces the turn it ran again"
    )
    await store.save(
        KEY,
        ThreadRecord("s", run_seq=3),
        [Concluded(7, Outcome.ANSWERED)],
        Exchange("s", (Turn("user", "q3"), Turn("assistant", "a3"))),
    )
    assert [t.content for t in await store.recent("s", 100)] == ["q", "a2", "q3", "a3"]
    store.close()
    assert committed_turns(location) == 4


async def test_a_failing_history_write_fails_the_whole_conclusion(location: Location) -> None:
    store = Store(location)
    before = ThreadRecord("s", run_seq=1)
    await store.save(KEY, before)
    with raw(location) as db:
        db.execute("DROP TABLE turns")
    exchange = Exchange("s", (Turn("user", "q"), Turn("assistant", "a")))
    with pytest.raises(StoreUnavailableError):
        await store.save(
            KEY, ThreadRecord("s", run_seq=2), [Concluded(5, Outcome.ANSWERED)], exchange
        )
    assert await store.load(KEY) == before, "neither the record nor the outcome was written"
    assert await store.outcomes(KEY) == []
    store.close()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_threads_history_is_not_written_by_another_threads_transaction(
    location: Location, llm_server: LLMSimulator
) -> None:
    """Issue 16, finding 7: history staged by one thread was committed inside another's."""
    store = Store(location)
    a, b = ThreadKey(1), ThreadKey(2)
    async with open_chat_http() as http:
        pool = CredentialPool("p", [ApiKey("k", "sk-test-key-0001")])
        client = ChatClient(llm_server.base_url, http, read_timeout=5)
        agent = ChatAgent(FallbackChain((ProviderEntry("p/m", pool, client, "m"),)), store)
        await agent.run(RunRequest(a, "session-a", 0, ("question a",)), RecordingSink())
    await store.save(b, ThreadRecord(session_id="session-b"))  # another thread's write
    # The process dies here: thread a never recorded how its run ended.
    reopened = Store(location)
    try:
        assert await reopened.recent("session-a", 10_000) == []
    finally:
        reopened.close()
    sink = RecordingSink()
    async with open_chat_http() as http:
        client = ChatClient(llm_server.base_url, http, read_timeout=5)
        agent = ChatAgent(FallbackChain((ProviderEntry("p/m", pool, client, "m"),)), store)
        await agent.run(RunRequest(a, "session-a", 0, ("question a",)), sink)
    exchange = Exchange("session-a", tuple(sink.remembered))
    await store.save(a, ThreadRecord("session-a"), [Concluded(1, Outcome.ANSWERED)], exchange)
    assert [t.role for t in await store.recent("session-a", 10_000)] == ["user", "assistant"]
    store.close()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_history_keeps_media_as_references_and_placeholders_never_bytes(
    location: Location, llm_server: LLMSimulator
) -> None:
    store = Store(location)
    image = b"\x89PNG\r\n\x1a\n" + b"pixel-bytes-" * 100
    ref = MediaRef(MediaKind.IMAGE, "AgACAgIAAxk-file-id", len(image), "image/png")
    turn = RunRequest(
        KEY, "s", 0, ("my cat",), media=((ref,),), parts=((ImagePart("image/png", image),),)
    )
    async with open_chat_http() as http:
        pool = CredentialPool("p", [ApiKey("k", "sk-test-key-0001")])
        client = ChatClient(llm_server.base_url, http, read_timeout=5)
        agent = ChatAgent(FallbackChain((ProviderEntry("p/m", pool, client, "m"),)), store)
        sink = RecordingSink()
        await agent.run(turn, sink)
        exchange = Exchange("s", tuple(sink.remembered))
        await store.save(KEY, ThreadRecord("s"), [Concluded(1, Outcome.ANSWERED)], exchange)
        user, _ = await store.recent("s", 10_000)
        assert user == Turn("user", "[image: my cat]", (ref,))
        await agent.run(RunRequest(KEY, "s", 0, ("and its name?",)), RecordingSink())
    _, later = llm_server.requests[-1]
    assert later["messages"][1] == {"role": "user", "content": "[image: my cat]"}
    store.close()
    with raw(location) as db:
        rows = db.execute("SELECT content, media FROM turns").fetchall()
    stored = repr(rows)
    assert "AgACAgIAAxk-file-id" in stored
    assert "pixel-bytes" not in stored
    assert base64.b64encode(image).decode()[:40] not in stored


async def test_an_answer_with_a_nul_is_kept_on_either_database(location: Location) -> None:
    """PostgreSQL's text holds no NUL: it becomes U+FFFD there, and the write succeeds."""
    store = Store(location)
    exchange = Exchange("n", (Turn("user", "q"), Turn("assistant", "half\x00way")))
    await store.save(KEY, ThreadRecord("n", run_seq=1), [Concluded(5, Outcome.ANSWERED)], exchange)
    [_, answer] = await store.recent("n", 100)
    expected = "half\ufffdway" if store.dialect == "postgresql" else "half\x00way"
    assert answer.content == expected
    assert await store.has_final_outcome(KEY, 5)
    store.close()
