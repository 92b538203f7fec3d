"""Thread actors under a real supervisor, with the fake ports, for scenario tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import attrs

from actors import DeadLetter, Supervisor, SupervisorConfig
from actors.thread.actor import ThreadActor
from actors.thread.messages import Command, StatusQuery, UserMessage
from actors.thread.records import MediaRef, ThreadKey, ThreadPhase, ThreadStatus
from actors.thread.settings import ThreadSettings
from tests.fakes.thread_ports import MemoryStore, RecordingOutbox, ScriptedAgent


@attrs.define
class Threads:
    supervisor: Supervisor[ThreadKey]
    store: MemoryStore
    outbox: RecordingOutbox
    agent: ScriptedAgent
    letters: list[DeadLetter]
    next_id: int = 1

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    async def say(self, key: ThreadKey, text: str, media: tuple[MediaRef, ...] = ()) -> int:
        message_id = self._id()
        await self.supervisor.ref_for(key).send(UserMessage(message_id, text, media=media))
        await anyio.wait_all_tasks_blocked()
        return message_id

    async def command(self, key: ThreadKey, name: str, args: str = "") -> int:
        message_id = self._id()
        await self.supervisor.ref_for(key).send(Command(name, args, message_id))
        await anyio.wait_all_tasks_blocked()
        return message_id

    async def status(self, key: ThreadKey) -> ThreadStatus:
        answer = await self.supervisor.ref_for(key).ask(StatusQuery(), timeout=5, control=True)
        assert isinstance(answer, ThreadStatus)
        return answer

    async def wait_idle(self, *keys: ThreadKey, timeout: float = 60) -> None:
        """Wait until every given thread is idle with an empty queue."""
        with anyio.fail_after(timeout):
            for key in keys:
                while True:
                    status = await self.status(key)
                    if status.phase is ThreadPhase.IDLE and not status.queued:
                        break
                    await anyio.sleep(0.05)


@asynccontextmanager
async def open_threads(
    settings: ThreadSettings | None = None,
    config: SupervisorConfig | None = None,
    agent: ScriptedAgent | None = None,
    store: MemoryStore | None = None,
) -> AsyncIterator[Threads]:
    """A supervisor of thread actors; pass the ``store`` of an earlier one to restart."""
    store, outbox = store or MemoryStore(), RecordingOutbox()
    agent = agent or ScriptedAgent(chunk_delay=0.05)
    settings = settings or ThreadSettings(stall_timeout=5, run_timeout=30)
    letters: list[DeadLetter] = []
    supervisor: Supervisor[ThreadKey] = Supervisor(
        lambda key: ThreadActor(key, agent, outbox, store, settings),
        config or SupervisorConfig(idle_ttl=None, stall_timeout=5, drain_timeout=1),
        on_dead_letter=letters.append,
    )
    async with supervisor:
        yield Threads(supervisor, store, outbox, agent, letters)
