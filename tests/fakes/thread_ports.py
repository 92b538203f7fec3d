"""In-memory stand-ins for the thread actor's ports: a store, an outbox, a scriptable agent.

They record everything, so tests can assert on what a user would have seen, and each can
fail on demand: the store's writes and reads fail while told to, the outbox's notices fail
or block until cancelled, its streams' keepalives raise and their finish takes time, and
the agent crashes, hangs or fails after output when the input asks. The gateway's
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
from actors.thread.records import Concluded, Exchange, Outcome, ThreadKey, ThreadRecord, Turn
from actors.thread.settings import Activation
from providers.chat_agent import without_last_exchange


class StoreFailedError(Exception):
    """The fake store's injected failure."""


class OutboxFailedError(Exception):
    """The fake outbox's injected failure (a chat sender that failed, a full mailbox)."""


@attrs.define
class MemoryStore:
    records: dict[ThreadKey, ThreadRecord] = attrs.Factory(dict)
    outcomes: list[tuple[ThreadKey, int, Outcome, str]] = attrs.Factory(list)
    generations: dict[ThreadKey, list[int]] = attrs.Factory(lambda: defaultdict(list))
    histories: dict[str, list[Turn]] = attrs.Factory(dict)
    """Session histories, as written with the runs' conclusions."""
    fail_saves: int = 0
    """Writes (saves and outcomes) that fail from now on."""
    lost: list[Concluded] = attrs.Factory(list)
    """The outcomes of the writes that failed."""
    down_until: float = 0.0
    """Every write and load fails until this time (``anyio.current_time``): the disk is gone."""
    fail_after_saves: int = 0
    """Saves that are written, then raise all the same (a commit whose answer was lost)."""
    fail_loads: int = 0
    """Loads that fail from now on."""
    save_delay: float = 0.0
    """Seconds each save takes before it is written (a slow disk)."""

    failures: int = 0
    """How many times it raised (each may crash the thread that called it, once)."""
    journal: list[tuple[str, ThreadKey, tuple[int, ...]]] = attrs.Factory(list)
    """Every load or save of a thread, in order: ``("saved" | "lost" | "load failed", key,
    the message ids concluded ANSWERED in a lost save)``."""

    activations: dict[ThreadKey, Activation] = attrs.Factory(dict)
    """Activations chosen with /activation, by conversation."""
    activation_log: list[tuple[ThreadKey, Activation]] = attrs.Factory(list)
    """Every activation written, in order."""

    async def load_activation(self, conversation: ThreadKey) -> Activation | None:
        if anyio.current_time() < self.down_until:
            raise self._fail("the store is down (load)")
        return self.activations.get(conversation.conversation)

    async def save_activation(self, conversation: ThreadKey, activation: Activation) -> None:
        self._write()
        self.activations[conversation.conversation] = activation
        self.activation_log.append((conversation.conversation, activation))

    def _fail(self, why: str) -> StoreFailedError:
        self.failures += 1
        return StoreFailedError(f"injected: {why}")

    async def load(self, key: ThreadKey) -> ThreadRecord | None:
        if anyio.current_time() < self.down_until:
            self.journal.append(("load failed", key, ()))
            raise self._fail("the store is down (load)")
        if self.fail_loads:
            self.fail_loads -= 1
            self.journal.append(("load failed", key, ()))
            raise self._fail("store failure (load)")
        return self.records.get(key)

    def _write(self) -> None:
        if anyio.current_time() < self.down_until:
            raise self._fail("the store is down")
        if self.fail_saves:
            self.fail_saves -= 1
            raise self._fail("store failure")

    async def save(
        self,
        key: ThreadKey,
        record: ThreadRecord,
        concluded: Sequence[Concluded] = (),
        exchange: Exchange | None = None,
    ) -> None:
        if self.save_delay:
            await anyio.sleep(self.save_delay)
        try:
            self._write()
        except StoreFailedError:
            self.lost += concluded
            answered = tuple(c.message_id for c in concluded if c.outcome is Outcome.ANSWERED)
            self.journal.append(("lost", key, answered))
            raise
        self.journal.append(("saved", key, ()))
        self.records[key] = record
        self._history(exchange)
        self.generations[key].append(record.generation)
        self.outcomes += [(key, c.message_id, c.outcome, c.detail) for c in concluded]
        if self.fail_after_saves:
            self.fail_after_saves -= 1
            raise self._fail("written, but the answer to the commit was lost")

    def _history(self, exchange: Exchange | None) -> None:
        if exchange is not None:
            history = self.histories.setdefault(exchange.session_id, [])
            if exchange.replaces_last:
                history[:] = without_last_exchange(history)
            history.extend(exchange.turns)

    def final_outcomes(self) -> Counter[tuple[ThreadKey, int]]:
        return Counter((k, m) for k, m, o, _ in self.outcomes if o.final)

    def outcome_of(self, key: ThreadKey, message_id: int) -> list[Outcome]:
        return [o for k, m, o, _ in self.outcomes if (k, m) == (key, message_id)]


@attrs.define(eq=False)
class RecordedStream:
    key: ThreadKey
    reply_to: int | None
    outbox: RecordingOutbox
    chunks: list[str] = attrs.Factory(list)
    run_id: int | None = None
    """The run that opened it."""
    state: str = "open"
    """open, finished (shown as complete), aborted (shown cut off)."""
    keepalives: int = 0

    async def append(self, text: str) -> None:
        assert self.state == "open"
        self.chunks.append(text)

    async def finish(self) -> None:
        assert self.state == "open"
        if self.outbox.finish_delay:
            await anyio.sleep(self.outbox.finish_delay)  # Telegram's pacing, a slow edit
        self.state = "finished"

    async def abort(self) -> None:
        self.state = "aborted"  # also after finish: the shown answer is edited as cut off

    def keepalive(self) -> None:
        assert self.state == "open", "keepalive after the run ended"
        if self.outbox.fail_keepalives:
            raise OutboxFailedError("injected: the chat sender's mailbox is full")
        self.keepalives += 1

    @property
    def text(self) -> str:
        return "".join(self.chunks)


@attrs.define
class RecordingOutbox:
    notices: list[tuple[ThreadKey, str, int | None]] = attrs.Factory(list)
    streams: list[RecordedStream] = attrs.Factory(list)
    fail_notices: int = 0
    """Notices that raise from now on (the chat sender failed)."""
    block_notices: bool = False
    """Notices wait until cancelled (a chat sender whose mailbox stays full)."""
    notice_delay: float = 0.0
    """Seconds each notice takes to be taken (a chat sender busy with other topics)."""
    fail_keepalives: bool = False
    """Streams' keepalives raise."""
    finish_delay: float = 0.0
    """Seconds a stream's finish takes."""
    reactions: list[tuple[ThreadKey, int, str | None]] = attrs.Factory(list)
    """Every reaction set (an emoji) or cleared (``None``), in order."""
    fail_reacts: bool = False
    """Reactions raise (the port says they never do: a thread must survive it anyway)."""

    async def notice(self, key: ThreadKey, text: str, *, reply_to: int | None = None) -> None:
        if self.fail_notices:
            self.fail_notices -= 1
            raise OutboxFailedError("injected: the chat sender failed")
        if self.block_notices:
            await anyio.sleep_forever()
        if self.notice_delay:
            await anyio.sleep(self.notice_delay)
        self.notices.append((key, text, reply_to))

    def open_stream(
        self, key: ThreadKey, *, reply_to: int | None = None, run_id: int | None = None
    ) -> RecordedStream:
        stream = RecordedStream(key, reply_to, self)
        stream.run_id = run_id
        self.streams.append(stream)
        return stream

    def react(self, key: ThreadKey, message_id: int, emoji: str | None) -> None:
        if self.fail_reacts:
            raise OutboxFailedError("injected: a reaction failed")
        self.reactions.append((key, message_id, emoji))

    def texts(self, key: ThreadKey) -> list[str]:
        """Everything the thread showed, notices and finished answers, in order of opening."""
        return [t for k, t, _ in self.notices if k == key]

    def answers(self, key: ThreadKey) -> list[str]:
        return [s.text for s in self.streams if s.key == key and s.state == "finished"]


@attrs.define
class ScriptedAgent:
    """Behaves as the last input asks: ``#slow:N``, ``#hang``, ``#stuck``, ``#silent``, ``#fail``,
    ``#late-fail`` (output, then a failure), ``#bad``, ``#bug``; and raises
    CredentialsExhaustedError while ``exhausted`` (the pool is dry).
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
        if "#late-fail" in last:
            await sink.emit("[0]")
            await anyio.sleep(self.chunk_delay)
            raise AgentUnavailableError("the stream broke after output")
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
        answer = f" answer to {' | '.join(request.inputs)}"
        await sink.emit(answer)
        ids = ",".join(map(str, request.message_ids))  # which messages the turn answers
        user = Turn("user", f"[{ids}] " + "\n\n".join(request.inputs))
        sink.remember([user, Turn("assistant", answer)])

    def _check_pool(self) -> None:
        if self.exhausted:
            raise CredentialsExhaustedError(
                "credential pool: no available entries (HTTP 402)", self.retry_after
            )
