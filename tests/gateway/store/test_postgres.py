"""What only the PostgreSQL store has: placeholders translated, a versioned schema opened by
several replicas at once, connections lost and found again, errors without the password."""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from actors.thread.records import ThreadKey, ThreadRecord
from gateway.exceptions import StoreUnavailableError
from gateway.setup.doctor import store_check
from gateway.store import open_store
from gateway.store.pg_schema import MIGRATIONS
from gateway.store.postgres import redacted, translate, url_secrets
from gateway.store.sqlite import Store
from tests.gateway.store.conftest import raw

pytestmark = pytest.mark.anyio
KEY = ThreadKey(-1_002_003_004_005, 7)
"""A supergroup's id: beyond 2^31."""


def with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(
        parts._replace(netloc=f"{parts.username}:{password}@{parts.hostname}:{parts.port}")
    )


def test_placeholders_become_psycopgs_outside_quotes() -> None:
    assert translate("SELECT ? WHERE a = ?") == "SELECT %s WHERE a = %s"
    assert translate("SELECT '?', \"a?\" WHERE x LIKE '10%' AND y = ?") == (
        "SELECT '?', \"a?\" WHERE x LIKE '10%%' AND y = %s"
    )
    assert translate("SELECT 5 % ?") == "SELECT 5 %% %s"


def test_the_password_is_redacted_in_every_form() -> None:
    url = "postgresql://tg:p%40ss-word@db:5432/threadgate"
    assert redacted(url) == "postgresql://tg:***@db:5432/threadgate"
    assert set(url_secrets(url)) == {"p%40ss-word", "p@ss-word"}
    assert url_secrets("postgresql://tg@db/x") == ()
    assert url_secrets("") == ()
    assert redacted("postgresql://tg@db/x") == "postgresql://tg@db/x"


def test_an_unreachable_database_is_unavailable_without_its_password() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nobody listens on it once closed
    url = f"postgresql://tg:hunter2-secret@127.0.0.1:{port}/threadgate"
    with pytest.raises(StoreUnavailableError) as caught:
        open_store(url, Path("/nonexistent"))
    text = str(caught.value)
    assert "hunter2-secret" not in text
    assert "postgresql://tg:***@127.0.0.1" in text
    assert caught.value.__cause__ is None


async def test_a_failing_statement_is_unavailable_without_the_password(postgres_url: str) -> None:
    url = with_password(postgres_url, "hunter2-secret")  # trust: any password is taken
    store = Store(url)
    try:
        with raw(url) as db:
            db.execute("DROP TABLE threads CASCADE")
        with pytest.raises(StoreUnavailableError) as caught:
            await store.save(KEY, ThreadRecord("s"))
        assert "hunter2-secret" not in str(caught.value)
        assert "threads" in str(caught.value)
    finally:
        store.close()


def test_replicas_opening_one_database_at_once_migrate_it_once(postgres_url: str) -> None:
    errors: list[BaseException] = []
    stores: list[Store] = []

    def open_one() -> None:
        try:
            stores.append(Store(postgres_url))
        except BaseException as error:  # noqa: BLE001 - checked below
            errors.append(error)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()
    assert errors == []
    assert len(stores) == 6
    with raw(postgres_url) as db:
        versions = [row[0] for row in db.execute("SELECT version FROM store_version").fetchall()]
    assert versions == list(range(1, len(MIGRATIONS) + 1))


def test_a_database_of_a_newer_version_is_refused(postgres_url: str) -> None:
    Store(postgres_url).close()
    with raw(postgres_url) as db:
        db.execute("INSERT INTO store_version (version) VALUES (?)", (len(MIGRATIONS) + 5,))
    with pytest.raises(StoreUnavailableError, match="newer version"):
        Store(postgres_url)


async def test_big_ids_and_times_keep_their_precision(postgres_url: str) -> None:
    store = Store(postgres_url, clock=lambda: 1_800_000_000.123456)
    try:
        record = ThreadRecord("s", run_seq=2**40)
        await store.save(KEY, record)
        assert await store.load(KEY) == record
        assert await store.sessions(KEY) != []
        with raw(postgres_url) as db:
            db.execute(
                "INSERT INTO inbox (update_id, chat_id, thread_key, message_id, payload,"
                " received_at) VALUES (?, ?, ?, ?, '{}', ?)",
                (2**40, KEY.chat_id, str(KEY), 2**33, 1_800_000_000.123456),
            )
            row = db.execute("SELECT chat_id, message_id, received_at FROM inbox").fetchone()
        assert tuple(row) == (KEY.chat_id, 2**33, 1_800_000_000.123456)
    finally:
        store.close()


async def test_a_lost_connection_is_opened_again(postgres_url: str) -> None:
    store = Store(postgres_url)
    try:
        await store.save(KEY, ThreadRecord("s", run_seq=1))
        assert await store.load(KEY) == ThreadRecord("s", run_seq=1)
        with raw(postgres_url) as db:  # the server drops every other connection of the store
            db.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        with contextlib.suppress(StoreUnavailableError):  # the statement that finds it lost
            await store.save(KEY, ThreadRecord("s", run_seq=2))
        await store.save(KEY, ThreadRecord("s", run_seq=3))  # on a new connection
        with contextlib.suppress(StoreUnavailableError):
            await store.load(KEY)
        assert await store.load(KEY) == ThreadRecord("s", run_seq=3)
    finally:
        store.close()


def test_doctor_says_whether_the_store_answers_without_changing_it(postgres_url: str) -> None:
    fresh = store_check(postgres_url)
    assert (fresh.level, "create the schema" in fresh.detail) == ("ok", True)
    with raw(postgres_url) as db:
        assert db.execute("SELECT to_regclass('inbox')").fetchone() == (None,), "read only"
    Store(postgres_url).close()
    made = store_check(postgres_url)
    assert (made.level, made.detail.endswith(f"(schema version {len(MIGRATIONS)})")) == (
        "ok",
        True,
    )
    with raw(postgres_url) as db:
        db.execute("INSERT INTO store_version (version) VALUES (?)", (len(MIGRATIONS) + 1,))
    assert store_check(postgres_url).level == "fail"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gone = store_check(f"postgresql://tg:hunter2-secret@127.0.0.1:{port}/x")
    assert gone.level == "fail"
    assert "hunter2-secret" not in gone.detail + gone.fix
