"""An example plug-in agent with a tool and memory of its own, and no model at all.

Registered in ``pyproject.toml`` under the ``threadgate.agents`` entry-point group as
``notes``. It keeps notes per session: ``note <text>`` stores one, ``notes`` lists them,
anything else is echoed with a count. Files come read, in ``request.parts`` (one tuple per
input): a voice note's transcript counts as what was said, and a note captioned on a photo
or a document names it. A real agent would call a model through
``context.chain`` and keep memory in a store.
"""

from __future__ import annotations

import anyio.lowlevel
import attrs

from actors.thread.exceptions import AgentRejectedError
from actors.thread.ports import (
    AgentRunner,
    DocumentPart,
    ImagePart,
    Part,
    RunRequest,
    RunSink,
    TextPart,
)
from providers.agents import AgentContext
from providers.content import inputs_with_parts


def _said(text: str, parts: tuple[Part, ...]) -> str:
    """The caption, or the transcript of a voice note."""
    return " ".join([text, *(p.text for p in parts if isinstance(p, TextPart))]).strip()


def _files(parts: tuple[Part, ...]) -> list[str]:
    """What files came: ``image/png, 1234 bytes``, ``document notes.txt``."""
    named = []
    for part in parts:
        if isinstance(part, ImagePart):
            named.append(f"[image {part.mime_type}, {len(part.data)} bytes]")
        elif isinstance(part, DocumentPart):
            named.append(f"[document {part.name}, {len(part.text)} characters]")
    return named


@attrs.define
class NotesAgent:
    _notes: dict[str, list[str]] = attrs.Factory(dict)

    async def run(self, request: RunRequest, sink: RunSink) -> None:
        notes = self._notes.setdefault(request.session_id, [])
        for caption, parts in inputs_with_parts(request):
            text, files = _said(caption, parts), _files(parts)
            if text.startswith("note ") or (text == "note" and files):
                notes.append(" ".join([text.removeprefix("note").strip(), *files]).strip())
                await sink.emit(f"Noted ({len(notes)} so far).\n")
            elif text.strip() == "notes":
                if not notes:
                    await sink.emit("No notes in this session.\n")
                for index, note in enumerate(notes, 1):
                    sink.heartbeat()  # a slow tool would report progress like this
                    await anyio.lowlevel.checkpoint()
                    await sink.emit(f"{index}. {note}\n")
            elif files and not text:
                await sink.emit(f"Got {', '.join(files)}; caption it 'note' to keep it.\n")
            elif not text:
                raise AgentRejectedError("empty input")
            else:
                await sink.emit(f"{text} (I keep notes: 'note <text>', 'notes')\n")


def make_agent(context: AgentContext) -> AgentRunner:
    """The entry point: build the agent from the gateway's context."""
    return NotesAgent()
