"""A ``RunSink`` that records what an agent streamed and asked to remember, and a session
history in memory that keeps what the sink remembered."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from actors.thread.records import Turn
from providers.chat_agent import trim


@attrs.define
class RecordingSink:
    chunks: list[str] = attrs.Factory(list)
    heartbeats: int = 0
    remembered: list[Turn] = attrs.Factory(list)

    async def emit(self, text: str) -> None:
        self.chunks.append(text)

    def heartbeat(self) -> None:
        self.heartbeats += 1

    def remember(self, turns: Sequence[Turn]) -> None:
        self.remembered = list(turns)


@attrs.define
class MemoryHistory:
    """``SessionHistory`` in memory."""

    sessions: dict[str, list[Turn]] = attrs.Factory(dict)

    async def recent(self, session_id: str, budget: int) -> Sequence[Turn]:
        return trim(self.sessions.get(session_id, []), budget)

    def answered(self, session_id: str, sink: RecordingSink) -> None:
        """What the thread does when it concludes a run answered: write its turn."""
        self.sessions.setdefault(session_id, []).extend(sink.remembered)
