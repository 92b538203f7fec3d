"""The built-in chat agent: session history plus the model, through the credential pools.

It implements the thread actor's ``AgentRunner`` port. A turn is recorded in the session
history only when it ended normally; a failed or cancelled turn records what the user said
and an explicit marker, never a half answer as if complete.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import anyio
import attrs

from actors.thread.exceptions import (
    AgentRejectedError,
    AgentUnavailableError,
    CredentialsExhaustedError,
)
from actors.thread.ports import RunRequest, RunSink
from actors.thread.records import ThreadKey
from providers.chain import FallbackChain
from providers.exceptions import (
    PoolExhaustedError,
    ProviderError,
    ProviderUnavailableError,
    RequestRejectedError,
)
from providers.openai_client import Message


@attrs.frozen
class Turn:
    """One message of a session's history."""

    role: str
    """``user``, ``assistant`` or ``system``."""
    content: str
    """Its text."""


class SessionHistory(Protocol):
    """Where sessions' histories live (the gateway's SQLite store)."""

    async def recent(self, session_id: str, budget: int) -> Sequence[Turn]:
        """The newest turns whose contents fit in ``budget`` characters, oldest first
        (what :func:`trim` keeps)."""

    async def append(self, session_id: str, turns: Sequence[Turn]) -> None:
        """Add turns at the end of the session."""


INTERRUPTED = "[no answer: {why}]"


def trim(turns: Sequence[Turn], budget: int) -> list[Turn]:
    """The newest turns whose contents fit in ``budget`` characters (oldest dropped first)."""
    kept: list[Turn] = []
    used = 0
    for turn in reversed(turns):
        used += len(turn.content)
        if used > budget:
            break
        kept.append(turn)
    return kept[::-1]


@attrs.frozen
class ChatAgent:
    """Answers with the model, given the session's history."""

    chain: FallbackChain
    """Providers to ask, in order."""
    history: SessionHistory
    """Session histories."""
    system_prompt: str = "You are a helpful assistant in a Telegram chat."
    """The system message, first in every request."""
    context_budget: int = 24_000
    """Characters of history sent at most (oldest turns dropped first)."""
    prompts: Mapping[str, str] = attrs.field(factory=dict)
    """System prompt overrides by thread (``"-100123:2"``) or chat (``"-100123"``)."""

    def prompt_for(self, key: ThreadKey) -> str:
        """The topic's prompt, else the chat's, else the default."""
        return (
            self.prompts.get(str(key)) or self.prompts.get(str(key.chat_id)) or self.system_prompt
        )

    async def run(self, request: RunRequest, sink: RunSink) -> None:
        user = Turn("user", "\n\n".join(request.inputs))
        past = (
            await self.history.recent(request.session_id, self.context_budget)
            if self.context_budget > 0
            else ()
        )
        messages: list[Message] = [{"role": "system", "content": self.prompt_for(request.key)}]
        messages += [{"role": t.role, "content": t.content} for t in past]
        messages.append({"role": user.role, "content": user.content})
        try:
            text = await self.chain.stream(messages, sink.emit, request.model)
        except BaseException as error:
            why = "cancelled" if not isinstance(error, Exception) else type(error).__name__
            with anyio.CancelScope(shield=True):
                marker = Turn("assistant", INTERRUPTED.format(why=why))
                await self.history.append(request.session_id, [user, marker])
            if isinstance(error, ProviderError):
                raise _as_agent_error(error) from None
            raise
        await self.history.append(request.session_id, [user, Turn("assistant", text)])


def _as_agent_error(error: ProviderError) -> Exception:
    if isinstance(error, PoolExhaustedError):
        return CredentialsExhaustedError(str(error), error.retry_after)
    if isinstance(error, RequestRejectedError):
        return AgentRejectedError(str(error))
    if isinstance(error, ProviderUnavailableError):
        return AgentUnavailableError(str(error))
    return AgentUnavailableError(str(error))
