"""The ``Siblings`` port over the thread supervisor."""

from __future__ import annotations

import anyio
import pytest

from actors import Supervisor, SupervisorConfig
from actors.thread import (
    Activation,
    ActivationChanged,
    StatusQuery,
    ThreadActor,
    ThreadKey,
    ThreadSettings,
    ThreadStatus,
)
from gateway.telegram.siblings import ThreadSiblings
from tests.fakes.thread_ports import MemoryStore, RecordingOutbox, ScriptedAgent

pytestmark = pytest.mark.anyio

GROUP = ThreadKey(-100)


async def activation(supervisor: Supervisor[ThreadKey], key: ThreadKey) -> Activation | None:
    status = await supervisor.ref_for(key).ask(StatusQuery(), timeout=5, control=True)
    assert isinstance(status, ThreadStatus)
    return status.activation


async def test_the_conversations_live_threads_are_told_and_no_other() -> None:
    siblings, store = ThreadSiblings(), MemoryStore()
    supervisor: Supervisor[ThreadKey] = Supervisor(
        lambda key: ThreadActor(
            key, ScriptedAgent(), RecordingOutbox(), store, ThreadSettings(), siblings=siblings
        ),
        SupervisorConfig(idle_ttl=None, stall_timeout=5, drain_timeout=1),
    )
    members = [ThreadKey(-100, None, user) for user in (1, 2)]
    stranger = ThreadKey(-200, None, 1)
    async with supervisor:
        siblings.tell(GROUP, ActivationChanged(GROUP, Activation.ALWAYS))  # not bound: a log
        siblings.bind(supervisor)
        for key in (*members, stranger):
            assert await activation(supervisor, key) is Activation.MENTION
        siblings.tell(GROUP, ActivationChanged(GROUP, Activation.ALWAYS))
        await anyio.wait_all_tasks_blocked()
        assert [await activation(supervisor, key) for key in members] == [Activation.ALWAYS] * 2
        assert await activation(supervisor, stranger) is Activation.MENTION
        assert "Supervisor" not in repr(siblings), "a traceback's locals would hold every thread"
