"""The agent wrapper that gives a run the content of its files.

The thread actor passes references only (``RunRequest.media``); this wrapper downloads each
file (``gateway.media.fetch``), reads it (``providers.media.read``) and calls the agent with
``RunRequest.parts`` filled in. A download is thus part of the run: a crash during one is an
interrupted run, resumed after the restart by the thread's own rules (the references are in
its record). A file that cannot be used (:class:`MediaUnusableError`) is left out alone;
the run fails with a reply only when nothing of it is usable (the rules below).

With ``echo``, what a voice message, audio file or video note was transcribed to is shown
first, as a quote above the answer, so the user sees what was understood.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import attrs

from actors.thread.exceptions import MediaUnusableError
from actors.thread.ports import AgentRunner, Part, RunRequest, RunSink, TextPart
from actors.thread.records import MediaRef
from gateway.media.checks import SOUND, noun

Fetch = Callable[[MediaRef], Awaitable[bytes]]
"""A file's bytes (``Fetcher.fetch``)."""
Read = Callable[[MediaRef, bytes], Awaitable[tuple[Part, ...]]]
"""A file's content parts (``providers.media.read``)."""


def quote(text: str) -> str:
    """``text`` as a Markdown quote, then a blank line (what the answer follows)."""
    lines = text.strip().splitlines() or [""]
    return "\n".join(f"> {line}" if line.strip() else ">" for line in lines) + "\n\n"


HEARTBEAT = 5.0
"""Seconds between two heartbeats while a download or a transcription is under way: the
run makes progress, though nothing is emitted, and the stall watchdog must not take it for
hung (a long recording takes a while)."""


@attrs.frozen
class MediaRunner:
    """An ``AgentRunner``: resolves ``request.media`` into ``request.parts``, then runs
    ``agent``.

    Rules:

    * A file that cannot be used (``MediaUnusableError``) is left out, and only it: the
      model is told in its input's parts, the user in a line above the answer (``image 2
      of 3: ...`` in an album). The other files and inputs of the run are answered.
    * An input is usable if it is text only or at least one of its files could be read. When
      no input of the run is, the run fails with every reason (one reply says them all).
    """

    _agent: AgentRunner
    _fetch: Fetch
    _read: Read
    _echo: bool = True
    _heartbeat: float = HEARTBEAT

    async def run(self, request: RunRequest, sink: RunSink) -> None:
        if not any(request.media):
            await self._agent.run(request, sink)
            return
        parts: list[tuple[Part, ...]] = []
        heard: list[str] = []
        refused: list[str] = []
        usable = False
        for refs in request.media:
            found: list[Part] = []
            for number, ref in enumerate(refs, 1):
                read = await self._resolve(ref, sink)
                if isinstance(read, MediaUnusableError):
                    kind = noun(attrs.evolve(ref, file_name=""))  # the reason names the file
                    which = f"{kind} {number} of {len(refs)}: " if len(refs) > 1 else ""
                    refused.append(which + read.reason)
                    found.append(TextPart(f"[{which or 'the file: '}not readable: {read.reason}]"))
                    continue
                if ref.kind in SOUND:
                    heard.extend(p.text for p in read if isinstance(p, TextPart) and p.text)
                found.extend(read)
                usable = True
            usable = usable or not refs  # a text-only input
            parts.append(tuple(found))
        if not usable:
            raise MediaUnusableError(" ".join(refused))
        if refused:
            await sink.emit("".join(f"⚠️ {reason}\n" for reason in refused) + "\n")
        if self._echo and heard:
            await sink.emit(quote("\n".join(heard)))
        await self._agent.run(attrs.evolve(request, parts=tuple(parts)), sink)

    async def _resolve(self, ref: MediaRef, sink: RunSink) -> tuple[Part, ...] | MediaUnusableError:
        """Fetch and read ``ref``, with heartbeats meanwhile; the error that says why the file
        cannot be used is returned (a task group would wrap it), any other is raised."""
        async with anyio.create_task_group() as beats:
            beats.start_soon(_beat, sink, self._heartbeat)
            try:
                data = await self._fetch(ref)
                sink.heartbeat()
                result: tuple[Part, ...] | MediaUnusableError = await self._read(ref, data)
            except MediaUnusableError as error:
                result = error
            finally:
                beats.cancel_scope.cancel()
        return result


async def _beat(sink: RunSink, interval: float) -> None:
    while True:
        sink.heartbeat()
        await anyio.sleep(interval)
