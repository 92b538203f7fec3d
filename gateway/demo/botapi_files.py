"""Files in the Bot API simulator: ``getFile`` and ``/file/bot<token>/<path>``, and the
message fields of photos, documents, voice messages, audio files and video notes.

A file can fail on demand, as Telegram's do: ``getFile`` answers "file is too big" (over
20 MB) or "wrong file_id" (an expired id); the download answers 404, breaks off halfway
(the connection is closed), or hangs. ``failures`` says how many requests fail that way
before the file is served normally (a retry, or a restart, then succeeds).
"""

from __future__ import annotations

import asyncio
import enum
import itertools
from collections.abc import Iterator
from typing import Any

import attrs
from aiohttp import web

TELEGRAM_CAP = 20 * 1024 * 1024


class Failure(enum.Enum):
    """How a file's requests fail."""

    NONE = "none"
    TOO_BIG = "too-big"
    """``getFile``: 400 "file is too big"."""
    EXPIRED = "expired"
    """``getFile``: 400 "wrong file_id or the file is temporarily unavailable"."""
    GONE = "gone"
    """The download: 404."""
    BREAK = "break"
    """The download: half the bytes, then the connection is closed."""
    HANG = "hang"
    """The download: headers, then nothing, ever."""


@attrs.define
class SimFile:
    """A file a simulated user sent."""

    file_id: str
    data: bytes = attrs.field(repr=False)
    failure: Failure = Failure.NONE
    failures: int = 1_000_000
    """Requests that fail (as ``failure`` says) before it is served."""
    declared_size: int | None = None
    """The size ``getFile`` and the message report (default: the real size)."""
    get_files: int = 0
    """``getFile`` requests for it."""
    downloads: int = 0
    """Download requests for it (failed ones included)."""

    @property
    def size(self) -> int:
        return len(self.data) if self.declared_size is None else self.declared_size

    def failing(self, *failures: Failure) -> bool:
        """Whether this request fails (and counts it)."""
        if self.failure not in failures or self.failures <= 0:
            return False
        self.failures -= 1
        return True


@attrs.define(eq=False)
class SimFiles:
    """The files, by id; what was asked for them."""

    files: dict[str, SimFile] = attrs.Factory(dict)
    _ids: Iterator[int] = attrs.Factory(lambda: itertools.count(1))

    def add(
        self,
        data: bytes,
        *,
        failure: Failure = Failure.NONE,
        failures: int = 1_000_000,
        declared_size: int | None = None,
    ) -> SimFile:
        file = SimFile(f"FILE-{next(self._ids):04d}-AgACAgIAAxkBAAIB", data, failure, failures)
        file.declared_size = declared_size
        self.files[file.file_id] = file
        return file

    # -- message fields ----------------------------------------------------------------

    @staticmethod
    def photo(file: SimFile) -> dict[str, Any]:
        """A photo's fields: a thumbnail and the full size (the same file, here)."""
        sizes = [
            {
                "file_id": f"{file.file_id}-thumb",
                "file_unique_id": "t",
                "width": 90,
                "height": 60,
                "file_size": 900,
            },
            {
                "file_id": file.file_id,
                "file_unique_id": "u",
                "width": 1280,
                "height": 853,
                "file_size": file.size,
            },
        ]
        return {"photo": sizes}

    @staticmethod
    def document(file: SimFile, name: str, mime_type: str) -> dict[str, Any]:
        return {
            "document": {
                "file_id": file.file_id,
                "file_unique_id": "u",
                "file_name": name,
                "mime_type": mime_type,
                "file_size": file.size,
            }
        }

    @staticmethod
    def voice(file: SimFile, duration: int) -> dict[str, Any]:
        return {
            "voice": {
                "file_id": file.file_id,
                "file_unique_id": "u",
                "duration": duration,
                "mime_type": "audio/ogg",
                "file_size": file.size,
            }
        }

    @staticmethod
    def audio(file: SimFile, duration: int, name: str = "song.mp3") -> dict[str, Any]:
        return {
            "audio": {
                "file_id": file.file_id,
                "file_unique_id": "u",
                "duration": duration,
                "file_name": name,
                "mime_type": "audio/mpeg",
                "file_size": file.size,
            }
        }

    @staticmethod
    def video_note(file: SimFile, duration: int) -> dict[str, Any]:
        return {
            "video_note": {
                "file_id": file.file_id,
                "file_unique_id": "u",
                "length": 240,
                "duration": duration,
                "file_size": file.size,
            }
        }

    # -- the API -----------------------------------------------------------------------

    def get_file(self, params: dict[str, Any]) -> web.Response:
        file = self.files.get(str(params.get("file_id") or ""))
        if file is not None:
            file.get_files += 1
        if file is None or file.failing(Failure.EXPIRED):
            return _error(400, "Bad Request: wrong file_id or the file is temporarily unavailable")
        if file.size > TELEGRAM_CAP or file.failing(Failure.TOO_BIG):
            return _error(400, "Bad Request: file is too big")
        result = {
            "file_id": file.file_id,
            "file_unique_id": "u",
            "file_size": file.size,
            "file_path": f"files/{file.file_id}.bin",
        }
        return web.json_response({"ok": True, "result": result})

    async def download(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["path"].removeprefix("files/").removesuffix(".bin")
        file = self.files.get(name)
        if file is None:
            return _error(404, "Not Found")
        file.downloads += 1
        if file.failing(Failure.GONE):
            return _error(404, "Not Found")
        response = web.StreamResponse(headers={"Content-Length": str(len(file.data))})
        await response.prepare(request)
        if file.failing(Failure.HANG):
            await asyncio.Event().wait()  # until the server stops
        if file.failing(Failure.BREAK):
            await response.write(file.data[: len(file.data) // 2])
            if request.transport is not None:
                request.transport.close()
            return response
        await response.write(file.data)
        await response.write_eof()
        return response


def _error(code: int, description: str) -> web.Response:
    body = {"ok": False, "error_code": code, "description": description}
    return web.json_response(body, status=code)
