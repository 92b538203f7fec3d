"""Downloading a file a user sent: ``getFile``, then its bytes from the Bot API's file URL.

Rules:

* A file over its kind's limit (``MediaLimits.max_bytes``) is refused before anything is
  downloaded when Telegram declared its size, and otherwise as soon as more bytes arrived
  than the limit allows (the download is cut there): nothing over the limit is held.
* A file Telegram will not serve (over its 20 MB cap, an expired or unknown file id), a
  download that fails twice, or one that takes longer than ``download_timeout`` is a
  :class:`MediaUnusableError` with a plain reason: the run fails, the user is told, the
  message is concluded.
* The file URL carries the bot token: it never appears in a log line or an error.
"""

from __future__ import annotations

import anyio
import attrs
import httpx
from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramNotFound
from loguru import logger

from actors.thread.exceptions import MediaUnusableError
from actors.thread.records import MediaRef
from gateway.media.checks import MediaLimits, megabytes, noun, too_big

ATTEMPTS = 2
"""Tries of a download whose connection broke."""

EXPIRED = (
    "This {what} is no longer available from Telegram (its file id expired). Please send it again."
)
UNREACHABLE = (
    "I could not download this {what} from Telegram ({why}). Please send it again in a moment."
)


@attrs.frozen
class Fetcher:
    """Downloads files through the bot's Bot API server, within ``limits``."""

    _bot: Bot
    _http: httpx.AsyncClient
    _limits: MediaLimits

    async def fetch(self, ref: MediaRef) -> bytes:
        """The bytes of ``ref``, or :class:`MediaUnusableError` saying why not."""
        limit = self._limits.max_bytes(ref.kind)
        if ref.size is not None and ref.size > limit:
            raise MediaUnusableError(too_big(ref, limit))
        timeout = self._limits.download_timeout
        with anyio.move_on_after(timeout):
            return await self._fetch(ref, limit)
        logger.warning("download of {kind} {id} timed out", kind=ref.kind.value, id=_short(ref))
        raise MediaUnusableError(
            UNREACHABLE.format(what=noun(ref), why=f"it took longer than {timeout:.0f} s")
        )

    async def _fetch(self, ref: MediaRef, limit: int) -> bytes:
        try:
            file = await self._bot.get_file(ref.file_id)
        except (TelegramBadRequest, TelegramNotFound) as error:
            logger.warning(
                "getFile of {kind} {id} refused: {e}",
                kind=ref.kind.value,
                id=_short(ref),
                e=error.message,
            )
            if "too big" in error.message.lower():
                raise MediaUnusableError(too_big(ref, min(limit, 20 * 1024 * 1024))) from None
            raise MediaUnusableError(EXPIRED.format(what=noun(ref))) from None
        except TelegramAPIError as error:
            logger.warning(
                "getFile of {kind} {id} failed: {kind_e}",
                kind=ref.kind.value,
                id=_short(ref),
                kind_e=type(error).__name__,
            )
            raise MediaUnusableError(
                UNREACHABLE.format(what=noun(ref), why="Telegram did not answer")
            ) from None
        if file.file_size is not None and file.file_size > limit:
            raise MediaUnusableError(too_big(attrs.evolve(ref, size=file.file_size), limit))
        if not file.file_path:
            raise MediaUnusableError(EXPIRED.format(what=noun(ref)))
        api = self._bot.session.api
        if api.is_local:  # a local Bot API server gives a path on this machine
            return await self._read_local(ref, str(api.wrap_local_file.to_local(file.file_path)))
        url = api.file_url(self._bot.token, file.file_path)
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return await self._download(ref, url, limit)
            except httpx.TransportError as error:
                logger.warning(
                    "download of {kind} {id} broke ({e}), attempt {n} of {m}",
                    kind=ref.kind.value,
                    id=_short(ref),
                    e=type(error).__name__,
                    n=attempt,
                    m=ATTEMPTS,
                )
        raise MediaUnusableError(UNREACHABLE.format(what=noun(ref), why="the connection broke"))

    async def _download(self, ref: MediaRef, url: str, limit: int) -> bytes:
        chunks: list[bytes] = []
        received = 0
        async with self._http.stream("GET", url, timeout=httpx.Timeout(30.0)) as response:
            if response.status_code in (400, 404):
                raise MediaUnusableError(EXPIRED.format(what=noun(ref)))
            if response.status_code != 200:
                logger.warning(
                    "download of {kind} {id}: HTTP {status}",
                    kind=ref.kind.value,
                    id=_short(ref),
                    status=response.status_code,
                )
                raise MediaUnusableError(
                    UNREACHABLE.format(what=noun(ref), why=f"HTTP {response.status_code}")
                )
            async for chunk in response.aiter_bytes():
                received += len(chunk)
                if received > limit:
                    raise MediaUnusableError(too_big(attrs.evolve(ref, size=received), limit))
                chunks.append(chunk)
        logger.info(
            "downloaded {kind} {id}: {size}",
            kind=ref.kind.value,
            id=_short(ref),
            size=megabytes(received) if received else "0 bytes",
        )
        return b"".join(chunks)

    async def _read_local(self, ref: MediaRef, path: str) -> bytes:
        file = anyio.Path(path)
        try:
            size = (await file.stat()).st_size
            if size > self._limits.max_bytes(ref.kind):
                raise MediaUnusableError(
                    too_big(attrs.evolve(ref, size=size), self._limits.max_bytes(ref.kind))
                )
            return await file.read_bytes()
        except OSError as error:
            logger.warning("local file of {id} unreadable: {e}", id=_short(ref), e=error)
            raise MediaUnusableError(EXPIRED.format(what=noun(ref))) from None


def _short(ref: MediaRef) -> str:
    """A file id, shortened for logs (they are long)."""
    return ref.file_id if len(ref.file_id) <= 16 else f"{ref.file_id[:12]}…"
