"""The SQLite store's schema, its triggers, the migrations from earlier files, and how a
file is opened (PostgreSQL's: ``gateway.store.pg_schema``)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from actors.thread import Outcome
from gateway.cluster.shards import shard_of
from gateway.exceptions import StoreUnavailableError
from gateway.store.connections import connect

SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox (
    update_id INTEGER PRIMARY KEY,
    chat_id INTEGER NOT NULL,
    thread_key TEXT NOT NULL,
    message_id INTEGER NOT NULL,
    payload TEXT NOT NULL,
    received_at REAL NOT NULL,
    outcome TEXT,
    detail TEXT,
    album_of INTEGER, -- an album's item: the message id of its first item (concluded with it)
    shard INTEGER NOT NULL DEFAULT 0 -- its chat's (gateway.cluster.shards)
);
CREATE INDEX IF NOT EXISTS inbox_message ON inbox (chat_id, message_id);
CREATE TABLE IF NOT EXISTS outcomes (
    thread_key TEXT NOT NULL,
    message_id INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    at REAL NOT NULL,
    chat_id INTEGER
);
CREATE TABLE IF NOT EXISTS threads (
    thread_key TEXT PRIMARY KEY, record TEXT NOT NULL, session_id TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY, thread_key TEXT NOT NULL, created_at REAL NOT NULL,
    used_at REAL -- the last answered turn; retention counts from it (else from created_at)
);
-- Every session a thread ever had, kept for the record (a reset starts a new one). Written by
-- the database itself whenever a thread record names a new session: no second statement.
CREATE TRIGGER IF NOT EXISTS thread_session_insert AFTER INSERT ON threads BEGIN
    INSERT OR IGNORE INTO sessions (session_id, thread_key, created_at)
    VALUES (NEW.session_id, NEW.thread_key, (julianday('now') - 2440587.5) * 86400.0);
END;
CREATE TRIGGER IF NOT EXISTS thread_session_update AFTER UPDATE OF session_id ON threads
WHEN NEW.session_id IS NOT OLD.session_id BEGIN
    INSERT OR IGNORE INTO sessions (session_id, thread_key, created_at)
    VALUES (NEW.session_id, NEW.thread_key, (julianday('now') - 2440587.5) * 86400.0);
END;
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    chars INTEGER NOT NULL DEFAULT 0,
    media TEXT
);
CREATE INDEX IF NOT EXISTS turns_session ON turns (session_id, id);
-- A group's or topic's activation, chosen with /activation (shared by its per-user threads).
CREATE TABLE IF NOT EXISTS activations (conversation TEXT PRIMARY KEY, mode TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pool_state (
    pool TEXT NOT NULL, label TEXT NOT NULL, state TEXT NOT NULL, PRIMARY KEY (pool, label)
);
-- pairing: the one-time codes strangers got in a private chat (telegram.dm_policy = pairing;
-- pruned once expired), and the users an operator approved with one.
CREATE TABLE IF NOT EXISTS pairing_codes (
    code TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL,
    chat_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    replied_at REAL NOT NULL -- when the stranger was last sent it (replies are rate limited)
);
CREATE INDEX IF NOT EXISTS pairing_codes_user ON pairing_codes (user_id);
CREATE TABLE IF NOT EXISTS pairing_approved (
    user_id INTEGER PRIMARY KEY, name TEXT NOT NULL, approved_at REAL NOT NULL, code TEXT NOT NULL
);
-- Usage and limits: tokens per UTC day, user (0: unknown), chat and model; and every user
-- message a thread accepted (the daily message limit counts them).
CREATE TABLE IF NOT EXISTS usage_tokens (
    day TEXT NOT NULL,
    user_id INTEGER NOT NULL,
    chat_id INTEGER NOT NULL,
    model TEXT NOT NULL,
    prompt INTEGER NOT NULL DEFAULT 0,
    completion INTEGER NOT NULL DEFAULT 0,
    estimated INTEGER NOT NULL DEFAULT 0, -- of prompt + completion, the tokens estimated
    runs INTEGER NOT NULL DEFAULT 0, -- model calls
    PRIMARY KEY (day, user_id, chat_id, model)
);
CREATE INDEX IF NOT EXISTS usage_tokens_user ON usage_tokens (user_id, day);
CREATE TABLE IF NOT EXISTS usage_messages (
    chat_id INTEGER NOT NULL,
    message_id INTEGER NOT NULL,
    day TEXT NOT NULL,
    user_id INTEGER NOT NULL,
    PRIMARY KEY (chat_id, message_id)
);
CREATE INDEX IF NOT EXISTS usage_messages_user ON usage_messages (user_id, day);
CREATE INDEX IF NOT EXISTS usage_messages_day ON usage_messages (day);
"""


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """Several statements, one commit (the connection commits each statement otherwise)."""
    db.execute("BEGIN")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


FINAL = ", ".join(f"'{outcome.value}'" for outcome in Outcome if outcome.final)
TRIGGERS = """
-- Made again at every open (in one transaction: another process may be writing), as the
-- list of final outcomes grows with new versions.
DROP TRIGGER IF EXISTS outcome_closes_inbox;
DROP TRIGGER IF EXISTS outcome_closes_album;
-- An owner reads its shards' unanswered entries (made here: older files gain the column
-- in ``migrate``, which runs after SCHEMA).
CREATE INDEX IF NOT EXISTS inbox_unanswered ON inbox (shard, update_id) WHERE outcome IS NULL;
-- A final outcome closes its inbox entry in the same statement that records it.
CREATE TRIGGER IF NOT EXISTS outcome_closes_inbox AFTER INSERT ON outcomes
WHEN NEW.outcome IN (FINAL_OUTCOMES) BEGIN
    UPDATE inbox SET outcome = NEW.outcome, detail = NEW.detail
    WHERE chat_id = NEW.chat_id AND message_id = NEW.message_id;
END;
-- An album's other items are concluded with the album (its first item's message).
CREATE TRIGGER IF NOT EXISTS outcome_closes_album AFTER INSERT ON outcomes
WHEN NEW.outcome IN (FINAL_OUTCOMES) BEGIN
    UPDATE inbox SET outcome = NEW.outcome, detail = 'album ' || NEW.message_id
    WHERE chat_id = NEW.chat_id AND album_of = NEW.message_id AND outcome IS NULL;
END;
""".replace("FINAL_OUTCOMES", FINAL)


def migrate(db: sqlite3.Connection) -> None:
    """Bring a file written by an earlier version up to this schema (before 0.1: the
    session only inside the record, the inbox closed by a second statement, history
    lengths counted by SQLite, which stops at a NUL; before retention: no session's last
    use; before media: turns without files; before replicas: inbox entries without their
    chat's shard)."""
    db.create_function("shard_of", 1, shard_of, deterministic=True)
    for table, column, definition, fill in (
        (
            "threads",
            "session_id",
            "TEXT NOT NULL DEFAULT ''",
            "json_extract(record, '$.session_id')",
        ),
        ("outcomes", "chat_id", "INTEGER", None),
        ("turns", "chars", "INTEGER NOT NULL DEFAULT 0", "length(content)"),
        ("sessions", "used_at", "REAL", None),
        ("inbox", "album_of", "INTEGER", None),
        ("turns", "media", "TEXT", None),
        ("inbox", "shard", "INTEGER NOT NULL DEFAULT 0", "shard_of(chat_id)"),
    ):
        columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if column in columns:
            continue
        with transaction(db):
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
            if fill is not None:
                db.execute(f"UPDATE {table} SET {column} = {fill}")  # noqa: S608 - constants


def open_file(path: Path, busy_timeout: float) -> sqlite3.Connection:
    """The writer connection of the file at ``path`` (made with its folder if missing),
    its schema made, migrated and its triggers made again.

    Raises:
        StoreUnavailableError: it cannot be opened.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = connect(path, busy_timeout)
    except (OSError, sqlite3.Error) as error:
        raise StoreUnavailableError(f"cannot open {path}: {error}") from None
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA)
        migrate(db)
        db.executescript(f"BEGIN IMMEDIATE;\n{TRIGGERS}\nCOMMIT;")  # one step for peers
    except sqlite3.Error as error:
        db.close()
        raise StoreUnavailableError(f"cannot open {path}: {error}") from None
    return db
