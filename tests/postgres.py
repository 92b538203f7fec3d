"""A throwaway PostgreSQL server for the tests that need one, started and stopped by them.

Rules:

* One server per test process (per xdist worker), started on first use with ``initdb`` and
  ``pg_ctl`` from the machine's PostgreSQL (``pg_config --bindir``, else Debian's
  ``/usr/lib/postgresql/<version>/bin``), in a temporary folder, on a free loopback port,
  without fsync (nothing here must survive the machine). As root it runs as the
  ``postgres`` user (PostgreSQL refuses to run as root): ``runuser``.
* Every test gets a database of its own (``postgres_url``), made and dropped by
  pytest-postgresql's janitor.
* Without PostgreSQL on the machine the tests that need it skip, saying so, unless
  ``THREADGATE_REQUIRE_POSTGRES=1`` (``.ci/run`` sets it): then they fail.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from pytest_postgresql.janitor import DatabaseJanitor

REQUIRED = os.environ.get("THREADGATE_REQUIRE_POSTGRES", "") == "1"
"""Whether a missing PostgreSQL fails the tests that need it instead of skipping them."""


def bindir() -> Path | None:
    """Where ``initdb``, ``pg_ctl`` and ``postgres`` are, or ``None``."""
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)  # noqa: S603 - the machine's PostgreSQL tools
        found = Path(out.stdout.strip())
        if (found / "pg_ctl").exists():
            return found
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
    )
    for candidate in reversed(candidates):
        if (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@attrs.define
class PostgresServer:
    """A running throwaway server."""

    bindir: Path
    folder: Path
    port: int
    user: str = "postgres"
    _names: Iterator[int] = attrs.field(factory=itertools.count, init=False)

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def url(self, dbname: str) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    @contextlib.contextmanager
    def database(self) -> Iterator[str]:
        """A new empty database, dropped afterwards; yields its URL."""
        name = f"tg_{os.getpid()}_{next(self._names)}"
        janitor = DatabaseJanitor(user=self.user, host=self.host, port=self.port, dbname=name)
        with janitor:
            yield self.url(name)

    @classmethod
    @contextlib.contextmanager
    def started(cls, bindir: Path) -> Iterator[PostgresServer]:
        folder = Path(tempfile.mkdtemp(prefix="threadgate-pg-"))
        as_root = os.geteuid() == 0
        prefix: list[str] = []
        if as_root:
            account = pwd.getpwnam("postgres")
            os.chown(folder, account.pw_uid, account.pw_gid)
            prefix = ["runuser", "-u", "postgres", "--"]
        data, port = folder / "data", _free_port()
        subprocess.run(  # noqa: S603 - the machine's PostgreSQL tools
            [*prefix, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
            check=True,
            capture_output=True,
        )
        log = ["-l", str(folder / "log"), "-w"]
        options = (
            f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        subprocess.run(  # noqa: S603 - the machine's PostgreSQL tools
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-o", options, *log, "start"],
            check=True,
            capture_output=True,
        )
        try:
            yield cls(bindir, folder, port)
        finally:
            subprocess.run(  # noqa: S603 - the machine's PostgreSQL tools
                [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                check=False,
                capture_output=True,
            )
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The test process's PostgreSQL server (skips, or fails under ``.ci/run``, without)."""
    found = bindir()
    if found is None:
        message = (
            "PostgreSQL is not installed (no pg_ctl): `apt-get install postgresql`"
            " (.ci/run does) to run the PostgreSQL tests"
        )
        if REQUIRED:
            pytest.fail(message)
        pytest.skip(message)
    with PostgresServer.started(found) as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A new empty database on the test process's server, dropped after the test."""
    with postgres_server.database() as url:
        yield url
