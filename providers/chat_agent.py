"""The built-in chat agent: session history plus the model, through the credential pools.

It implements the thread actor's ``AgentRunner`` port. It reads the session's history, and
hands the turn it answered to ``RunSink.remember``: the thread writes it with the run's
conclusion if the answer was delivered, and drops it otherwise (failed, cancelled, parked,
cut off), so the history holds each answered turn once and nothing else. A ``/retry`` of
an answered turn (``RunRequest.regenerate``) is asked without that turn, which its answer
replaces.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import attrs

from actors.thread.exceptions import (
    AgentRejectedError,
    AgentUnavailableError,
    CredentialsExhaustedError,
)
from actors.thread.ports import RunRequest, RunSink
from actors.thread.records import ThreadKey, Turn
from providers.chain import FallbackChain
from providers.exceptions import (
    PoolExhaustedError,
    ProviderError,
    ProviderUnavailableError,
    RequestRejectedError,
)
from providers.openai_client import Message


class SessionHistory(Protocol):
    """Where sessions' histories are read from (the gateway's store, which writes them with
    the thread's record)."""

    async def recent(self, session_id: str, budget: int) -> Sequence[Turn]:
        """The newest turns whose contents fit in ``budget`` characters, oldest first
        (what :func:`trim` keeps)."""


def without_last_exchange(turns: Sequence[Turn]) -> list[Turn]:
    """``turns`` without the last exchange (its user turn and what followed)."""
    users = [i for i, turn in enumerate(turns) if turn.role == "user"]
    return list(turns[: users[-1]]) if users else list(turns)


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
        past: Sequence[Turn] = (
            await self.history.recent(request.session_id, self.context_budget)
            if self.context_budget > 0
            else ()
        )
        if request.regenerate:
            past = without_last_exchange(past)
        messages: list[Message] = [{"role": "system", "content": self.prompt_for(request.key)}]
        messages += [{"role": t.role, "content": t.content} for t in past]
        messages.append({"role": user.role, "content": user.content})
        try:
            text = await self.chain.stream(messages, sink.emit, request.model)
        except ProviderError as error:
            raise _as_agent_error(error) from None
        sink.remember([user, Turn("assistant", text)])


def _as_agent_error(error: ProviderError) -> Exception:
    if isinstance(error, PoolExhaustedError):
        return CredentialsExhaustedError(str(error), error.retry_after)
    if isinstance(error, RequestRejectedError):
        return AgentRejectedError(str(error))
    if isinstance(error, ProviderUnavailableError):
        return AgentUnavailableError(str(error))
    return AgentUnavailableError(str(error))
