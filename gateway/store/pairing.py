"""Pairing in the store: the one-time codes strangers got, and the users an operator approved.

Used by the gateway (``gateway.telegram.pairing``: a stranger's private message under
``telegram.dm_policy = "pairing"``) and by ``threadgate pairing list | approve | revoke``, in
another process on the same file (WAL lets both read and write it).

Rules:

* A code is :data:`LENGTH` characters of :data:`ALPHABET` (no 0/O, 1/I/L), drawn with
  ``secrets``, and valid :data:`VALIDITY` seconds. It is looked up exactly (its primary key),
  by the operator only: a stranger never submits one, so guessing one has nowhere to happen.
* A stranger who writes again while a code is live gets that code again; a new one only once
  the newest has less than :data:`RENEW_BEFORE` seconds left, and never more than
  :data:`MAX_LIVE_PER_USER` live at once. They are sent a code at most once every
  :data:`REPLY_INTERVAL` seconds (``Issue.QUIET`` otherwise), and past :data:`MAX_PENDING`
  pending codes in all nobody new gets one (``Issue.FULL``).
* Issuing is one transaction that re-checks everything, so two messages of one stranger
  handled at once give one reply; expired codes are deleted by each issue and approval.
* Approving a code admits its user (for good, until revoked) and deletes their codes.

The statements are plain functions of a connection (``issue_code``, ``approve_code``, ...):
the gateway runs them through ``Store.read`` / ``Store.write``, and the CLI on a connection
of its own in one transaction (opening a second ``Store`` would make the schema's triggers
again under the running gateway's writes).
"""

from __future__ import annotations

import enum
import secrets

import attrs

from gateway.exceptions import PairedUserUnknownError, PairingCodeUnknownError
from gateway.store.fence import Connection
from gateway.store.store import Store

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
"""The characters of a code: no 0/O, 1/I/L (31 symbols; 8 of them are ~40 bits)."""
LENGTH = 8
VALIDITY = 3600.0
"""Seconds a code is valid."""
RENEW_BEFORE = 600.0
"""A stranger writing when their newest code has less than this left gets a new one."""
MAX_LIVE_PER_USER = 3
REPLY_INTERVAL = 60.0
"""Seconds between two replies to one stranger at least (the others are log lines)."""
MAX_PENDING = 1000
"""Live codes in all at most; past it, new strangers get none until some expire."""


def new_code() -> str:
    """A fresh code, from ``secrets``."""
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def normalized(code: str) -> str:
    """A code as typed (any case, spaces or dashes) as it is stored."""
    return code.strip().upper().replace("-", "").replace(" ", "")


class Issue(enum.Enum):
    """What a stranger's private message got."""

    NEW = "new"
    """A new code: send it."""
    REPEATED = "repeated"
    """Their live code again: send it."""
    QUIET = "quiet"
    """They were sent their code less than ``REPLY_INTERVAL`` ago: no reply, a log line."""
    FULL = "full"
    """``MAX_PENDING`` codes are pending: none for them now."""
    APPROVED = "approved"
    """They are approved (since the caller looked): admit the message."""


@attrs.frozen
class Issued:
    """The answer to a stranger's private message."""

    issue: Issue
    """What happened."""
    code: str = ""
    """The code to send (``NEW`` and ``REPEATED``)."""
    expires_at: float = 0.0
    """When it expires (wall clock)."""


@attrs.frozen
class Stranger:
    """What the store knows of a user outside the config's allowlist (one read)."""

    approved: bool
    """Whether an operator approved them."""
    replied_at: float | None
    """When they were last sent a live code (``None``: they hold none)."""


@attrs.frozen
class PendingCode:
    """A live code, for ``threadgate pairing list``."""

    code: str
    """The code."""
    user_id: int
    """Who got it."""
    chat_id: int
    """Where (their private chat)."""
    name: str
    """Their name as Telegram gave it (first name, and @username if any)."""
    created_at: float
    """When it was issued (wall clock)."""
    expires_at: float
    """When it expires (wall clock)."""


@attrs.frozen
class ApprovedUser:
    """A user an operator admitted."""

    user_id: int
    """Their Telegram user id."""
    name: str
    """Their name when they asked."""
    approved_at: float
    """When (wall clock)."""
    code: str
    """The code approved (spent)."""


@attrs.define(eq=False)
class Pairings:
    """The pairing tables of ``store``; every time is the caller's wall clock ``now``."""

    _store: Store

    async def stranger(self, user_id: int, now: float) -> Stranger:
        """Whether ``user_id`` is approved, and when they were last sent a live code."""

        def read(db: Connection) -> Stranger:
            approved = db.execute(
                "SELECT 1 FROM pairing_approved WHERE user_id = ?", (user_id,)
            ).fetchone()
            (replied,) = db.execute(
                "SELECT MAX(replied_at) FROM pairing_codes WHERE user_id = ? AND expires_at > ?",
                (user_id, now),
            ).fetchone()
            return Stranger(approved is not None, None if replied is None else float(replied))

        return await self._store.read(read)

    async def is_approved(self, user_id: int) -> bool:
        def read(db: Connection) -> bool:
            row = db.execute("SELECT 1 FROM pairing_approved WHERE user_id = ?", (user_id,))
            return row.fetchone() is not None

        return await self._store.read(read)

    async def issue(self, user_id: int, chat_id: int, name: str, now: float) -> Issued:
        """The code for a stranger's private message (see the module's rules)."""
        return await self._store.write(
            lambda db: issue_code(db, user_id, chat_id, name, now), atomic=True
        )

    async def approve(self, code: str, now: float) -> ApprovedUser:
        """Admit the holder of ``code`` (any case); ``PairingCodeUnknownError`` if no live
        code is ``code``."""
        return await self._store.write(lambda db: approve_code(db, code, now), atomic=True)

    async def revoke(self, user_id: int) -> ApprovedUser:
        """Remove an approved user; ``PairedUserUnknownError`` if nobody approved them."""
        return await self._store.write(lambda db: revoke_user(db, user_id), atomic=True)

    async def pending(self, now: float) -> list[PendingCode]:
        """The live codes, oldest first."""
        return await self._store.read(lambda db: read_pending(db, now))

    async def approved(self) -> list[ApprovedUser]:
        """The approved users, in the order they were approved."""
        return await self._store.read(read_approved)


def read_pending(db: Connection, now: float) -> list[PendingCode]:
    rows = db.execute(
        "SELECT code, user_id, chat_id, name, created_at, expires_at FROM pairing_codes"
        " WHERE expires_at > ? ORDER BY created_at, code",
        (now,),
    ).fetchall()
    return [PendingCode(*row) for row in rows]


def read_approved(db: Connection) -> list[ApprovedUser]:
    rows = db.execute(
        "SELECT user_id, name, approved_at, code FROM pairing_approved"
        " ORDER BY approved_at, user_id"
    ).fetchall()
    return [ApprovedUser(*row) for row in rows]


def issue_code(db: Connection, user_id: int, chat_id: int, name: str, now: float) -> Issued:
    db.execute("DELETE FROM pairing_codes WHERE expires_at <= ?", (now,))
    if db.execute("SELECT 1 FROM pairing_approved WHERE user_id = ?", (user_id,)).fetchone():
        return Issued(Issue.APPROVED)
    live = db.execute(
        "SELECT code, expires_at, replied_at FROM pairing_codes WHERE user_id = ?"
        " ORDER BY created_at DESC, expires_at DESC",
        (user_id,),
    ).fetchall()
    if live and now - max(replied for _, _, replied in live) < REPLY_INTERVAL:
        return Issued(Issue.QUIET)
    if live and (live[0][1] - now >= RENEW_BEFORE or len(live) >= MAX_LIVE_PER_USER):
        code, expires_at, _ = live[0]
        db.execute("UPDATE pairing_codes SET replied_at = ? WHERE code = ?", (now, code))
        return Issued(Issue.REPEATED, code, expires_at)
    (pending,) = db.execute("SELECT COUNT(*) FROM pairing_codes").fetchone()
    if pending >= MAX_PENDING:
        return Issued(Issue.FULL)
    expires_at = now + VALIDITY
    while True:  # a collision (one in ~10^12 per pending code) draws again
        code = new_code()
        inserted = db.execute(
            "INSERT INTO pairing_codes (code, user_id, chat_id, name, created_at,"
            " expires_at, replied_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (code) DO NOTHING",
            (code, user_id, chat_id, name, now, expires_at, now),
        )
        if inserted.rowcount == 1:
            return Issued(Issue.NEW, code, expires_at)


def approve_code(db: Connection, code: str, now: float) -> ApprovedUser:
    code = normalized(code)
    db.execute("DELETE FROM pairing_codes WHERE expires_at <= ?", (now,))
    row = db.execute(
        "SELECT user_id, name FROM pairing_codes WHERE code = ? AND expires_at > ?", (code, now)
    ).fetchone()
    if row is None:
        raise PairingCodeUnknownError(code)
    user_id, name = row
    db.execute(
        "INSERT INTO pairing_approved (user_id, name, approved_at, code) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (user_id) DO UPDATE SET name = excluded.name,"
        " approved_at = excluded.approved_at, code = excluded.code",
        (user_id, name, now, code),
    )
    db.execute("DELETE FROM pairing_codes WHERE user_id = ?", (user_id,))
    return ApprovedUser(user_id, name, now, code)


def revoke_user(db: Connection, user_id: int) -> ApprovedUser:
    row = db.execute(
        "SELECT user_id, name, approved_at, code FROM pairing_approved WHERE user_id = ?",
        (user_id,),
    ).fetchone()
    if row is None:
        raise PairedUserUnknownError(user_id)
    db.execute("DELETE FROM pairing_approved WHERE user_id = ?", (user_id,))
    return ApprovedUser(*row)
