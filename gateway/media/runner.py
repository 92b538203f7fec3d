"""The agent wrapper that gives a run the content of its files.

The thread actor passes references only (``RunRequest.media``); this wrapper downloads each
file (``gateway.media.fetch``), reads it (``providers.media.read``) and calls the agent with
``RunRequest.parts`` filled in. A download is thus part of the run: a crash during one is an
interrupted run, resumed after the restart by the thread's own rules (the references are in
its record), and a file that cannot be used is a :class:`MediaUnusableError`, which fails
the run with a reply that says why.

With ``echo``, what a voice message, audio file or video note was transcribed to is shown
first, as a quote above the answer, so the user sees what was understood.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs

from actors.thread.ports import AgentRunner, Part, RunRequest, RunSink, TextPart
from actors.thread.records import MediaRef
from gateway.media.checks import SOUND

Fetch = Callable[[MediaRef], Awaitable[bytes]]
"""A file's bytes (``Fetcher.fetch``)."""
Read = Callable[[MediaRef, bytes], Awaitable[tuple[Part, ...]]]
"""A file's content parts (``providers.media.read``)."""


def quote(text: str) -> str:
    """``text`` as a Markdown quote, then a blank line (what the answer follows)."""
    lines = text.strip().splitlines() or [""]
    return "\n".join(f"> {line}" if line.strip() else ">" for line in lines) + "\n\n"


@attrs.frozen
class MediaRunner:
    """An ``AgentRunner``: resolves ``request.media`` into ``request.parts``, then runs
    ``agent``."""

    _agent: AgentRunner
    _fetch: Fetch
    _read: Read
    _echo: bool = True

    async def run(self, request: RunRequest, sink: RunSink) -> None:
        if not any(request.media):
            await self._agent.run(request, sink)
            return
        parts: list[tuple[Part, ...]] = []
        heard: list[str] = []
        for refs in request.media:
            found: list[Part] = []
            for ref in refs:
                sink.heartbeat()
                data = await self._fetch(ref)
                sink.heartbeat()
                read = await self._read(ref, data)
                if ref.kind in SOUND:
                    heard.extend(p.text for p in read if isinstance(p, TextPart) and p.text)
                found.extend(read)
            parts.append(tuple(found))
        if self._echo and heard:
            await sink.emit(quote("\n".join(heard)))
        await self._agent.run(attrs.evolve(request, parts=tuple(parts)), sink)
