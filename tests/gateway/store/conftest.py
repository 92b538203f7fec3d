"""The store's tests run on both databases: ``location`` is a SQLite file, or a fresh
PostgreSQL database (``tests.postgres``); ``raw`` opens a connection of its own on it, for
what a test sees or breaks behind the store's back. Tests of what only SQLite has (its
write-ahead log, its file locks, migrations of old files) keep ``tmp_path``."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.store.fence import Connection
from gateway.store.postgres import PgConnection, is_url

Location = str | Path


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Location:
    """Where a test's store is: a SQLite file, or a new PostgreSQL database's URL."""
    if request.param == "sqlite":
        return tmp_path / "db.sqlite3"
    url: str = request.getfixturevalue("postgres_url")
    return url


@contextlib.contextmanager
def raw(location: Location) -> Iterator[Connection]:
    """A connection of its own on the store at ``location`` (each statement committed)."""
    if isinstance(location, str) and is_url(location):
        pg = PgConnection(location)
        try:
            yield pg
        finally:
            pg.close()
        return
    db = sqlite3.connect(location, isolation_level=None)
    try:
        yield db
    finally:
        db.close()


def refuse_inserts(location: Location, table: str) -> None:
    """Make every insert into ``table`` fail (a database error, as a full disk would)."""
    with raw(location) as db:
        if isinstance(db, PgConnection):
            db.execute(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
                " $$ BEGIN RAISE EXCEPTION 'no'; END $$"
            )
            db.execute(
                f"CREATE TRIGGER refuse BEFORE INSERT ON {table}"
                " FOR EACH ROW EXECUTE FUNCTION refuse()"
            )
        else:
            db.execute(
                f"CREATE TRIGGER refuse BEFORE INSERT ON {table}"
                " BEGIN SELECT RAISE(ABORT, 'no'); END"
            )
