"""Where the running gateway's admin endpoint is: a small file in the data directory.

Rules:

* When its admin endpoint listens, the gateway (the local demo too) writes ``admin.json``
  into its data directory: the address it actually listens on (a random port included), its
  process id, and when it started. The write is atomic (a temporary file, then a rename), so
  a reader never sees half a file.
* At a clean stop it removes the file, but only if the file is still its own (another
  gateway may have started on the same directory since).
* A file whose process is gone (the gateway was killed) is *stale*: ``threadgate status``
  says so and falls back to ``admin.addr``; the next start overwrites it.
* The file holds no secret: the admin token stays in the config.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

import attrs

from gateway.exceptions import AdminAddressUnreadableError

FILE_NAME = "admin.json"
"""The file's name in the data directory."""


@attrs.frozen
class AdminAddress:
    """What ``admin.json`` says."""

    addr: str
    """``host:port`` the admin endpoint listens on (what ``threadgate status --addr`` takes)."""
    pid: int
    """The process id of the gateway that wrote it."""
    started_at: float
    """Wall-clock time (Unix seconds) the endpoint started listening."""
    demo: bool = False
    """Whether the local demo wrote it."""

    @property
    def url(self) -> str:
        return f"http://{self.addr}"

    def alive(self) -> bool:
        """Whether the process that wrote it is still running (else the file is stale)."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # alive, but another user's
            return True
        return True


def host_port(host: str, port: int) -> str:
    """``host:port``, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def write(data_dir: Path, addr: str, *, demo: bool = False) -> AdminAddress:
    """Write ``admin.json`` for this process, atomically; return what was written."""
    entry = AdminAddress(addr, os.getpid(), time.time(), demo)
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / FILE_NAME
    partial = path.with_name(f".{FILE_NAME}.{entry.pid}.tmp")
    partial.write_text(json.dumps(attrs.asdict(entry)) + "\n", encoding="utf-8")
    os.replace(partial, path)
    return entry


def read(data_dir: Path) -> AdminAddress | None:
    """What ``admin.json`` in ``data_dir`` says; ``None`` if there is none.

    Raises:
        AdminAddressUnreadableError: the file is there but is not one the gateway writes.
    """
    path = data_dir / FILE_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise AdminAddressUnreadableError(path, error.strerror or type(error).__name__) from None
    try:
        data = json.loads(text)
        return AdminAddress(
            str(data["addr"]), int(data["pid"]), float(data["started_at"]), bool(data["demo"])
        )
    except (ValueError, KeyError, TypeError):
        raise AdminAddressUnreadableError(path, "not a file the gateway writes") from None


def remove(data_dir: Path, entry: AdminAddress) -> None:
    """Remove ``admin.json`` if it is still ``entry`` (a clean stop)."""
    with contextlib.suppress(AdminAddressUnreadableError):
        if read(data_dir) == entry:
            (data_dir / FILE_NAME).unlink(missing_ok=True)


@attrs.frozen
class Located:
    """Where ``threadgate status`` looks for the gateway, and why there."""

    addr: str
    """``host:port`` to ask."""
    source: str
    """Where the address came from (for error messages): the file, or ``admin.addr``."""
    stale: AdminAddress | None = None
    """A file left by a gateway that is gone (then ``addr`` is ``admin.addr``)."""


def locate(data_dir: Path, default: str) -> Located:
    """The address in ``data_dir``'s ``admin.json`` if its gateway runs, else ``default``.

    Raises:
        AdminAddressUnreadableError: the file is there but cannot be read.
    """
    announced = read(data_dir)
    if announced is not None and announced.alive():
        return Located(announced.addr, str(data_dir / FILE_NAME))
    return Located(default, "admin.addr", stale=announced)
