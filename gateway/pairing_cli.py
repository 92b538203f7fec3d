"""``threadgate pairing list | approve CODE | revoke USER_ID``: admit strangers, or remove them.

They work on the data directory's SQLite file, while the gateway runs or not (WAL lets both
use it; a write waits for the gateway's up to ``busy_timeout``). The running gateway reads
approvals per message, so an approval or a revocation takes effect at the user's next
message, with no restart.

The file is opened with a plain connection, not a ``Store``: opening a store makes the
schema's triggers again, which must not happen under the running gateway's writes. A file
the gateway never opened (or one of a version before pairing) is refused with one line.

With ``store.url`` (PostgreSQL) they open the store (``gateway.store.open_store``: its schema
is made under an advisory lock, safe beside running replicas) and run the same statements
through it, each command in one transaction.
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import TextIO, TypeVar

import anyio
import httpx

from gateway.exceptions import (
    PairedUserUnknownError,
    PairingCodeUnknownError,
    StoreUnavailableError,
)
from gateway.store import open_store
from gateway.store.connections import connect
from gateway.store.fence import Connection
from gateway.store.pairing import (
    ApprovedUser,
    PendingCode,
    approve_code,
    read_approved,
    read_pending,
    revoke_user,
)

STORE_FILE = "threadgate.sqlite3"
WELCOME = "✅ You're in: the operator approved you. Write your message again."
"""What an approved user is told in their private chat."""
T = TypeVar("T")


def store_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / STORE_FILE


@contextlib.contextmanager
def _opened(data_dir: str | Path) -> Iterator[sqlite3.Connection]:
    path = store_path(data_dir)
    if not path.is_file():
        raise StoreUnavailableError(
            f"no store at {path}: start the gateway once with this data_dir (see --config)"
        )
    try:
        db = connect(path, busy_timeout=5.0)
    except sqlite3.Error as error:
        raise StoreUnavailableError(f"cannot open {path}: {error}") from None
    try:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        if "pairing_approved" not in tables:
            raise StoreUnavailableError(
                f"{path} has no pairing tables yet: start the gateway once with this version"
            )
        yield db
    except sqlite3.Error as error:
        raise StoreUnavailableError(f"{path}: {error}") from None
    finally:
        db.close()


def _on_store(url: str, data_dir: str | Path, func: Callable[[Connection], T]) -> T:
    """``func`` in one transaction of the PostgreSQL store at ``url``."""
    store = open_store(url, Path(data_dir))
    try:

        async def run() -> T:
            return await store.write(func, atomic=True)

        return anyio.run(run)
    finally:
        store.close()


def _read(data_dir: str | Path, url: str, func: Callable[[Connection], T]) -> T:
    if url:
        return _on_store(url, data_dir, func)
    with _opened(data_dir) as db:
        return func(db)


def _write(data_dir: str | Path, url: str, func: Callable[[Connection], T]) -> T:
    """``func`` in one transaction that takes the write lock first (waiting for the gateway's
    writes up to ``busy_timeout``), so a read in it is never of a snapshot gone stale."""
    if url:
        return _on_store(url, data_dir, func)
    with _opened(data_dir) as db:
        db.execute("BEGIN IMMEDIATE")
        try:
            result = func(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} d"


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(at))


def list_pairing(
    data_dir: str | Path,
    *,
    url: str = "",
    now: float | None = None,
    out: TextIO | None = None,
) -> int:
    """Print the pending codes and the approved users; exit status 0."""
    out, now = out or sys.stdout, time.time() if now is None else now
    pending: list[PendingCode]
    approved: list[ApprovedUser]
    pending, approved = _read(data_dir, url, lambda db: (read_pending(db, now), read_approved(db)))
    print(f"Pending codes ({len(pending)}):", file=out)
    for code in pending:
        print(
            f"  {code.code}  user {code.user_id} {code.name or '(no name)'}, asked "
            f"{_ago(now - code.created_at)} ago, expires in {_ago(code.expires_at - now)}",
            file=out,
        )
    if pending:
        print("  Admit one with: threadgate pairing approve CODE", file=out)
    print(f"Approved users ({len(approved)}):", file=out)
    for user in approved:
        print(
            f"  {user.user_id} {user.name or '(no name)'}, approved {_when(user.approved_at)}",
            file=out,
        )
    return 0


def approve_pairing(
    data_dir: str | Path,
    code: str,
    *,
    url: str = "",
    bot: tuple[str, str] | None = None,
    now: float | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Admit the holder of ``code``: exit status 0; 1 (one line) if no live code is ``code``.

    With ``bot`` (the Bot API base URL and the token), the user is told in their private
    chat (:data:`WELCOME`); if that fails, a warning says so (the approval stands).
    """
    out, err, now = out or sys.stdout, err or sys.stderr, time.time() if now is None else now
    try:
        user = _write(data_dir, url, lambda db: approve_code(db, code, now))
    except PairingCodeUnknownError as error:
        print(f"threadgate: {error}", file=err)
        return 1
    print(
        f"approved user {user.user_id} {user.name or '(no name)'}: they can write to the bot now",
        file=out,
    )
    problem = "no bot token here" if bot is None else _tell(*bot, user.user_id)
    if problem:
        print(f"threadgate: warning: the user was not told ({problem})", file=err)
    return 0


def _tell(api_base: str, token: str, chat_id: int) -> str:
    """Send :data:`WELCOME` to ``chat_id`` (a user's private chat has their id); what went
    wrong, if anything (never the URL: it holds the token)."""
    try:
        response = httpx.post(
            f"{api_base}/bot{token}/sendMessage",
            json={"chat_id": chat_id, "text": WELCOME},
            timeout=10,
        )
        answer = response.json()
    except (httpx.HTTPError, ValueError) as error:
        return f"{type(error).__name__} from the Bot API"
    if not isinstance(answer, dict) or answer.get("ok") is not True:
        description = answer.get("description") if isinstance(answer, dict) else None
        return f"the Bot API answered {response.status_code}: {description or 'not ok'}"
    return ""


def revoke_pairing(
    data_dir: str | Path,
    user_id: int,
    *,
    url: str = "",
    allowed_users: Collection[int] = (),
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Remove an approved user: exit status 0; 1 (one line) if nobody approved them. A user
    also in ``allowed_users`` (the config's) is still allowed: said on stderr."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        user = _write(data_dir, url, lambda db: revoke_user(db, user_id))
    except PairedUserUnknownError as error:
        print(f"threadgate: {error}", file=err)
        return 1
    print(f"revoked user {user.user_id} {user.name or '(no name)'}", file=out)
    if user_id in allowed_users:
        print(
            f"threadgate: warning: user {user_id} is in telegram.allowed_users too, so still "
            "allowed; remove them there",
            file=err,
        )
    return 0
