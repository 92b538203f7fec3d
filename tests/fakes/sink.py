"""A ``RunSink`` that records what an agent streamed and asked to remember."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from actors.thread.records import Turn


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
