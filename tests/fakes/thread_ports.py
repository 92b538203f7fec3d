"""In-memory stand-ins for the thread actor's ports: a store, an outbox, a scriptable agent.

They record everything, so tests can assert on what a user would have seen. The gateway's
end-to-end tests use the real adapters over HTTP instead.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

import anyio
import attrs

from actors.thread.exceptions import (
    AgentRejectedError,
    AgentUnavailableError,
    CredentialsExhaustedError,
)
from actors.thread.ports import RunRequest, RunSink
from actors.thread.records import Concluded, Outcome, ThreadKey, ThreadRecord


class StoreFailedError(Exception):
    """The fake store's injected failure."""


@attrs.define
class MemoryStore:
    records: dict[ThreadKey, ThreadRecord] = attrs.Factory(dict)
    outcomes: list[tuple[ThreadKey, int, Outcome, str]] = attrs.Factory(list)
    generations: dict[ThreadKey, list[int]] = attrs.Factory(lambda: defaultdict(list))
    fail_saves: int = 0

    async def load(self, key: ThreadKey) -> ThreadRecord | None:
        return self.records.get(key)

    async def save(
        self, key: ThreadKey, record: ThreadRecord, concluded: Sequence[Concluded] = ()
    ) -> None:
        if self.fail_saves:
            self.fail_saves -= 1
            raise StoreFailedError("injected store failure")
        self.records[key] = record
        self.generations[key].append(record.generation)
        self.outcomes += [(key, c.message_id, c.outcome, c.detail) for c in concluded]

    async def record_outcome(
        self, key: ThreadKey, message_id: int, outcome: Outcome, detail: str
    ) -> None:
        self.outcomes.append((key, message_id, outcome, detail))

    def final_outcomes(self) -> Counter[tuple[ThreadKey, int]]:
        return Counter((k, m) for k, m, o, _ in self.outcomes if o.final)

    def outcome_of(self, key: ThreadKey, message_id: int) -> list[Outcome]:
        return [o for k, m, o, _ in self.outcomes if (k, m) == (key, message_id)]


@attrs.define(eq=False)
class RecordedStream:
    key: ThreadKey
    reply_to: int | None
    chunks: list[str] = attrs.Factory(list)
    state: str = "open"
    keepalives: int = 0

    async def append(self, text: str) -> None:
        assert self.state == "open"
        self.chunks.append(text)

    async def finish(self) -> None:
        self.state = "finished"

    async def abort(self) -> None:
        self.state = "aborted"

    def keepalive(self) -> None:
        assert self.state == "open", "keepalive after the run ended"
        self.keepalives += 1

    @property
    def text(self) -> str:
        return "".join(self.chunks)


@attrs.define
class RecordingOutbox:
    notices: list[tuple[ThreadKey, str, int | None]] = attrs.Factory(list)
    streams: list[RecordedStream] = attrs.Factory(list)

    async def notice(self, key: ThreadKey, text: str, *, reply_to: int | None = None) -> None:
        self.notices.append((key, text, reply_to))

    def open_stream(self, key: ThreadKey, *, reply_to: int | None = None) -> RecordedStream:
        stream = RecordedStream(key, reply_to)
        self.streams.append(stream)
        return stream

    def texts(self, key: ThreadKey) -> list[str]:
        """Everything the thread showed, notices and finished answers, in order of opening."""
        return [t for k, t, _ in self.notices if k == key]

    def answers(self, key: ThreadKey) -> list[str]:
        return [s.text for s in self.streams if s.key == key and s.state == "finished"]


@attrs.define
class ScriptedAgent:
    """Behaves as the last input asks: ``#slow:N``, ``#hang``, ``#stuck``, ``#silent``, ``#fail``,
    ``#bad``, ``#bug``; and raises CredentialsExhaustedError while ``exhausted`` (the pool is dry).
    ``#slow`` runs check the pool again before every chunk (the last key dies mid-run)."""

    exhausted: bool = False
    retry_after: float | None = 60.0
    chunk_delay: float = 1.0
    active: Counter[ThreadKey] = attrs.Factory(Counter)
    max_active: Counter[ThreadKey] = attrs.Factory(Counter)
    requests: list[RunRequest] = attrs.Factory(list)

    async def run(self, request: RunRequest, sink: RunSink) -> None:
        key = request.key
        self.active[key] += 1
        self.max_active[key] = max(self.max_active[key], self.active[key])
        self.requests.append(request)
        try:
            await self._behave(request, sink)
        finally:
            self.active[key] -= 1

    async def _behave(self, request: RunRequest, sink: RunSink) -> None:
        last = request.inputs[-1]
        self._check_pool()
        if "#hang" in last:
            await anyio.sleep_forever()
        if "#stuck" in last:  # some output, then nothing
            await sink.emit("[0]")
            await anyio.sleep_forever()
        if "#silent" in last:
            while True:
                await anyio.sleep(self.chunk_delay)
                sink.heartbeat()
        if "#fail" in last:
            raise AgentUnavailableError("HTTP 500 after 3 attempts")
        if "#bad" in last:
            raise AgentRejectedError("HTTP 400: context too long")
        if "#bug" in last:
            raise RuntimeError("agent bug")
        chunks = 1
        if "#slow:" in last:
            chunks = int(last.split("#slow:")[1].split()[0])
        for i in range(chunks):
            if i:
                await anyio.sleep(self.chunk_delay)
                self._check_pool()
            await sink.emit(f"[{i}]")
        await sink.emit(f" answer to {' | '.join(request.inputs)}")

    def _check_pool(self) -> None:
        if self.exhausted:
            raise CredentialsExhaustedError(
                "credential pool: no available entries (HTTP 402)", self.retry_after
            )
