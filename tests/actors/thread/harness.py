"""Thread actors under a real supervisor, with the fake ports, for scenario tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import attrs

from actors import DeadLetter, Supervisor, SupervisorConfig
from actors.thread.actor import ThreadActor
from actors.thread.messages import Command, StatusQuery, StopRun, UserMessage
from actors.thread.ports import Siblings
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

    async def say(
        self,
        key: ThreadKey,
        text: str,
        media: tuple[MediaRef, ...] = (),
        *,
        user_id: int | None = None,
        addressed: bool = True,
    ) -> int:
        message_id = self._id()
        message = UserMessage(message_id, text, user_id, media=media, addressed=addressed)
        await self.supervisor.ref_for(key).send(message)
        await anyio.wait_all_tasks_blocked()
        return message_id

    async def say_nowait(self, key: ThreadKey, text: str) -> int:
        """Send a message without waiting for the thread to take it."""
        message_id = self._id()
        await self.supervisor.ref_for(key).send(UserMessage(message_id, text))
        return message_id

    async def command(
        self,
        key: ThreadKey,
        name: str,
        args: str = "",
        *,
        user_id: int | None = None,
        admin: bool = False,
    ) -> int:
        message_id = self._id()
        command = Command(name, args, message_id, user_id, admin=admin)
        await self.supervisor.ref_for(key).send(command)
        await anyio.wait_all_tasks_blocked()
        return message_id

    async def stop(self, key: ThreadKey, run_id: int, user_id: int | None = None) -> bool:
        """Press the Stop button of run ``run_id`` (the callback handler's ask)."""
        ref = self.supervisor.ref_for(key)
        answer = await ref.ask(StopRun(run_id, user_id), timeout=5, control=True)
        assert isinstance(answer, bool)
        await anyio.wait_all_tasks_blocked()
        return answer

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
    siblings: Siblings | None = None,
) -> AsyncIterator[Threads]:
    """A supervisor of thread actors; pass the ``store`` of an earlier one to restart."""
    store, outbox = store or MemoryStore(), RecordingOutbox()
    agent = agent or ScriptedAgent(chunk_delay=0.05)
    settings = settings or ThreadSettings(stall_timeout=5, run_timeout=30)
    letters: list[DeadLetter] = []
    supervisor: Supervisor[ThreadKey] = Supervisor(
        lambda key: ThreadActor(key, agent, outbox, store, settings, siblings=siblings),
        config or SupervisorConfig(idle_ttl=None, stall_timeout=5, drain_timeout=1),
        on_dead_letter=letters.append,
    )
    async with supervisor:
        yield Threads(supervisor, store, outbox, agent, letters)
