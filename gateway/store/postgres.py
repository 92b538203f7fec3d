"""The PostgreSQL side of the store: connections that run the store's statements as they are
written (``?`` placeholders, portable SQL), and errors that never show the URL's password.

Rules:

* A statement's ``?`` become psycopg's ``%s`` (and a literal ``%`` becomes ``%%``), outside
  quoted strings and names; translated once per statement text (cached).
* Connections are in autocommit mode, like the SQLite ones: a statement outside ``BEGIN`` /
  ``COMMIT`` commits alone. Each is used by one worker thread at a time, never on the event
  loop's thread (``gateway.store.connections``).
* A connection that was lost (the server restarted, the network broke) is opened again by
  the next statement outside a transaction; within one, the statement fails (and so does
  the transaction: nothing of it was committed).
* ``psycopg.Error`` becomes :class:`~gateway.exceptions.StoreUnavailableError` naming the
  database by its URL without the password (``redacted``), and with the password removed
  from the error's text, should the driver ever quote it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import psycopg

from gateway.exceptions import StoreUnavailableError
from gateway.store.connections import Dialect

SCHEMES = ("postgresql", "postgres")
CONNECT_TIMEOUT = 10
"""Seconds a connection attempt waits for the server."""
OPTIONS = (
    "-c idle_in_transaction_session_timeout=2000 -c lock_timeout=5000 -c statement_timeout=30000"
)
"""The sessions' limits. A replica paused (SIGSTOP) or cut off in the middle of a
transaction would hold its row locks for as long as its connection lives, and every other
replica's write of those rows (a lease, a usage count) would wait for it: the server ends a
transaction left idle for 2 s instead. A write waits at most 5 s for a lock, and a statement
runs at most 30 s; either then fails as the store being unavailable, never a hang."""


def is_url(location: str) -> bool:
    """Whether ``location`` names a PostgreSQL database (else it is a SQLite file's path)."""
    return urlsplit(location).scheme in SCHEMES if "://" in location else False


def url_secrets(url: str) -> tuple[str, ...]:
    """The password in ``url`` as written (percent-encoded) and as meant: the forms a log
    line could quote it in."""
    if not is_url(url):
        return ()
    try:
        written = urlsplit(url).password or ""
    except ValueError:
        return ()
    return tuple(sorted({written, unquote(written)} - {""}))


def redacted(url: str) -> str:
    """``url`` with its password replaced by ``***`` (how the store names its database)."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.netloc.rpartition("@")[2]
        user = parts.username or ""
    except ValueError:
        return "postgresql://***"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def unavailable(url: str, error: BaseException) -> StoreUnavailableError:
    text = str(error).strip() or type(error).__name__
    for secret in url_secrets(url):
        text = text.replace(secret, "***")
    return StoreUnavailableError(f"{redacted(url)}: {text}")


@functools.lru_cache(maxsize=4096)
def translate(sql: str) -> str:
    """``sql`` with ``?`` placeholders as psycopg's ``%s``."""
    out: list[str] = []
    quote = ""
    for char in sql:
        if quote:
            if char == quote:
                quote = ""
            out.append("%%" if char == "%" else char)
        elif char in "'\"":
            quote = char
            out.append(char)
        elif char == "?":
            out.append("%s")
        elif char == "%":
            out.append("%%")
        else:
            out.append(char)
    return "".join(out)


class PgConnection:
    """One PostgreSQL connection as the store's statements use it (the ``Connection`` of
    ``gateway.store.fence``), opened at its first statement and again after it was lost."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._conn: psycopg.Connection[Any] | None = None
        self._transaction = False

    @property
    def url(self) -> str:
        return self._url

    @property
    def in_transaction(self) -> bool:
        """Whether a ``BEGIN`` was run and no ``COMMIT`` or ``ROLLBACK`` since."""
        return self._transaction

    def _connection(self) -> psycopg.Connection[Any]:
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            if self._transaction:
                raise psycopg.OperationalError("the connection was lost in a transaction")
            if conn is not None:
                conn.close()
            self._conn = conn = psycopg.connect(
                self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT, options=OPTIONS
            )
        return conn

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> psycopg.Cursor[Any]:
        verb = sql.lstrip()[:9].upper()
        if verb.startswith("BEGIN"):
            cursor = self._connection().execute("BEGIN")
            self._transaction = True
            return cursor
        if verb.startswith(("COMMIT", "ROLLBACK")) and "ROLLBACK TO" not in sql.upper():
            try:
                return self._connection().execute(sql)
            finally:
                self._transaction = False
        conn = self._connection()
        if parameters:
            return conn.execute(translate(sql), [_text(value) for value in parameters])
        return conn.execute(sql)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._transaction = False


def _text(value: Any) -> Any:
    """PostgreSQL's text holds no NUL (SQLite's does): one in a model's answer, say,
    becomes U+FFFD rather than failing the write it is in."""
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", "\ufffd")
    return value


def postgres_dialect(url: str) -> Dialect:
    """PostgreSQL's, for the database at ``url``."""
    return Dialect("postgresql", (psycopg.Error,), lambda error: unavailable(url, error), "BEGIN")
