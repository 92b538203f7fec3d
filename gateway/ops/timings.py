"""Queue wait: from a message's acceptance into its thread to the start of its first run.

The thread actor knows nothing of metrics; this sits at its ports. ``Delivery`` calls
:meth:`QueueWait.accepted` when a thread's mailbox took a user message, and the agent the
threads run is wrapped (:meth:`QueueWait.timed`): a run starts when the thread calls
``AgentRunner.run``, whose ``RunRequest`` names the messages it answers.

Rules:

* A message is observed once, at the first run that includes it (a retry after a failure or
  a restart is not a second wait). Messages accepted before a restart are not observed.
* Messages that never start a run (discarded by ``/new``, stopped, refused) are forgotten
  once more than ``LIMIT`` are remembered, oldest first: the memory stays bounded.
"""

from __future__ import annotations

from collections import OrderedDict

import anyio
import attrs
from prometheus_client import Histogram

from actors.thread.ports import AgentRunner, RunRequest, RunSink
from actors.thread.records import ThreadKey

LIMIT = 10_000
"""Accepted messages remembered at most (those still waiting for a run)."""


@attrs.define(eq=False)
class QueueWait:
    """Observes each message's wait in ``histogram``."""

    _histogram: Histogram
    _accepted: OrderedDict[tuple[ThreadKey, int], float] = attrs.field(
        factory=OrderedDict, init=False
    )

    def accepted(self, key: ThreadKey, message_id: int) -> None:
        """The thread ``key`` accepted ``message_id`` (into its mailbox) now."""
        self._accepted[(key, message_id)] = anyio.current_time()
        while len(self._accepted) > LIMIT:
            self._accepted.popitem(last=False)

    def started(self, request: RunRequest) -> None:
        """A run for ``request`` starts now: observe how long each of its messages waited."""
        now = anyio.current_time()
        for message_id in request.message_ids:
            since = self._accepted.pop((request.key, message_id), None)
            if since is not None:
                self._histogram.observe(max(0.0, now - since))

    def timed(self, agent: AgentRunner) -> AgentRunner:
        """``agent``, reporting each run's start here first."""
        return _Timed(agent, self)


@attrs.frozen
class _Timed:
    """An ``AgentRunner`` that reports when each run starts."""

    _agent: AgentRunner
    _wait: QueueWait

    async def run(self, request: RunRequest, sink: RunSink) -> None:
        self._wait.started(request)
        await self._agent.run(request, sink)
