"""An example plug-in agent with a tool and memory of its own, and no model at all.

Registered in ``pyproject.toml`` under the ``threadgate.agents`` entry-point group as
``notes``. It keeps notes per session: ``note <text>`` stores one, ``notes`` lists them,
anything else is echoed with a count. A real agent would call a model through
``context.chain`` and keep memory in a store.
"""

from __future__ import annotations

import anyio.lowlevel
import attrs

from actors.thread.exceptions import AgentRejectedError
from actors.thread.ports import AgentRunner, RunRequest, RunSink
from providers.agents import AgentContext


@attrs.define
class NotesAgent:
    _notes: dict[str, list[str]] = attrs.Factory(dict)

    async def run(self, request: RunRequest, sink: RunSink) -> None:
        notes = self._notes.setdefault(request.session_id, [])
        for text in request.inputs:
            if text.startswith("note "):
                notes.append(text.removeprefix("note ").strip())
                await sink.emit(f"Noted ({len(notes)} so far).\n")
            elif text.strip() == "notes":
                if not notes:
                    await sink.emit("No notes in this session.\n")
                for index, note in enumerate(notes, 1):
                    sink.heartbeat()  # a slow tool would report progress like this
                    await anyio.lowlevel.checkpoint()
                    await sink.emit(f"{index}. {note}\n")
            elif not text.strip():
                raise AgentRejectedError("empty input")
            else:
                await sink.emit(f"{text} (I keep notes: 'note <text>', 'notes')\n")


def make_agent(context: AgentContext) -> AgentRunner:
    """The entry point: build the agent from the gateway's context."""
    return NotesAgent()
