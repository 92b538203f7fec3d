"""The statements of a thread's save that go beyond its record: outcomes and history."""

from __future__ import annotations

from collections.abc import Sequence

from actors.thread.records import Concluded, Exchange, ThreadKey
from gateway.store.codec import key_text, media_to_json
from gateway.store.fence import Connection


def insert_outcomes(
    db: Connection, key: ThreadKey, concluded: Sequence[Concluded], at: float
) -> None:
    """One statement for all of them; a final outcome also closes its inbox entry (trigger)."""
    rows = ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(concluded))
    thread = key_text(key)
    values = [
        v
        for c in concluded
        for v in (thread, c.message_id, c.outcome.value, c.detail, at, key.chat_id)
    ]
    db.execute(
        "INSERT INTO outcomes (thread_key, message_id, outcome, detail, at, chat_id)"  # noqa: S608 - placeholders only
        f" VALUES {rows}",
        values,
    )


def append_exchange(db: Connection, exchange: Exchange, at: float) -> None:
    """Add an answered turn to its session (replacing the last one, for ``/retry``), and
    note the session's last use (what its retention counts from)."""
    session = exchange.session_id
    db.execute("UPDATE sessions SET used_at = ? WHERE session_id = ?", (at, session))
    if exchange.replaces_last:
        db.execute(
            "DELETE FROM turns WHERE session_id = ? AND id >= (SELECT MAX(id) FROM turns"
            " WHERE session_id = ? AND role = 'user')",
            (session, session),
        )
    turns = exchange.turns
    if turns:
        rows = ", ".join(["(?, ?, ?, ?, ?)"] * len(turns))  # one statement
        values = [
            v
            for t in turns
            for v in (session, t.role, t.content, len(t.content), media_to_json(t.media))
        ]
        db.execute(
            f"INSERT INTO turns (session_id, role, content, chars, media) VALUES {rows}",  # noqa: S608 - placeholders only
            values,
        )
