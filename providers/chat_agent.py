"""The built-in chat agent: session history plus the model, through the credential pools.

It implements the thread actor's ``AgentRunner`` port. It reads the session's history, and
hands the turn it answered to ``RunSink.remember``: the thread writes it with the run's
conclusion if the answer was delivered, and drops it otherwise (failed, cancelled, parked,
cut off), so the history holds each answered turn once and nothing else. A ``/retry`` of
an answered turn (``RunRequest.regenerate``) is asked without that turn, which its answer
replaces.

A turn's files arrive read, as ``RunRequest.parts``: they go to the model as OpenAI content
blocks (``providers.content``), and the history keeps a placeholder of each, never bytes.
When the model cannot see (``vision`` off, or the provider answers a request with images
with HTTP 400), the text of the turn is answered without them and the user is told so first.

Each model call's usage (``providers.usage``) is recorded in ``usage``, attributed to the
turn's chat, the sender of its last input and the model asked: also a call that failed
having reported usage, and one that was stopped once the provider had taken it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol

import attrs

from actors.thread.exceptions import (
    AgentRejectedError,
    AgentUnavailableError,
    CredentialsExhaustedError,
    MediaUnusableError,
)
from actors.thread.ports import RunRequest, RunSink
from actors.thread.records import ThreadKey, Turn
from providers.chain import FallbackChain
from providers.content import has_images, has_text, history_text, user_content
from providers.exceptions import (
    PoolExhaustedError,
    ProviderError,
    ProviderUnavailableError,
    RequestRejectedError,
)
from providers.openai_client import Message
from providers.usage import Tokens, Usage, UsageLedger, record, sender

VISION_OFF = (
    "🖼 I could not look at your image: this model does not take images. "
    "I am answering your text only.\n\n"
)
"""Said before the answer when ``vision`` is off and a turn came with images."""
VISION_REFUSED = (
    "🖼 I could not look at your image: the model refused it. I am answering your text only.\n\n"
)
"""Said before the answer when the provider refused the turn's images (HTTP 400)."""
IMAGE_ONLY_OFF = (
    "This model does not take images, so I cannot see your photo. "
    "Describe it or ask your question in text (I can read text, voice messages and documents)."
)
"""The reply to a turn of images alone when ``vision`` is off."""
IMAGE_ONLY_REFUSED = (
    "The model refused your image, so I cannot see it. "
    "Describe it or ask your question in text (I can read text, voice messages and documents)."
)
"""The reply to a turn of images alone when the provider refused them."""
IMAGE_REFUSAL_STATUSES = frozenset({400, 413})
"""HTTP statuses of a provider's refusal that, to a request with images, mean it will not
take them (a 400 from a text-only model; a 413 for images too large for it)."""


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
    vision: bool = True
    """Whether the model takes images (``llm.vision``); off: images are left out, and the
    user told."""
    usage: UsageLedger | None = None
    """Where each model call's usage is recorded (``None``: nowhere)."""

    def prompt_for(self, key: ThreadKey) -> str:
        """The topic's prompt, else the chat's, else the default."""
        return (
            self.prompts.get(str(key)) or self.prompts.get(str(key.chat_id)) or self.system_prompt
        )

    async def run(self, request: RunRequest, sink: RunSink) -> None:
        refs = tuple(ref for refs in request.media for ref in refs)
        user = Turn("user", history_text(request), refs)
        past: Sequence[Turn] = (
            await self.history.recent(request.session_id, self.context_budget)
            if self.context_budget > 0
            else ()
        )
        if request.regenerate:
            past = without_last_exchange(past)
        messages: list[Message] = [{"role": "system", "content": self.prompt_for(request.key)}]
        messages += [{"role": t.role, "content": t.content} for t in past]
        calls: list[tuple[str, Tokens]] = []
        try:
            text = await self._answer(request, sink, messages, calls)
        finally:
            await self._record(request, calls)
        sink.remember([user, Turn("assistant", text)])

    async def _answer(
        self,
        request: RunRequest,
        sink: RunSink,
        messages: Sequence[Message],
        calls: list[tuple[str, Tokens]],
    ) -> str:
        try:
            if has_images(request) and not self.vision:
                return await self._ask_without_images(request, sink, messages, calls, refused=False)
            try:
                return await self._ask(request, sink.emit, messages, calls, images=True)
            except RequestRejectedError as error:
                if not has_images(request) or error.status not in IMAGE_REFUSAL_STATUSES:
                    raise
                return await self._ask_without_images(request, sink, messages, calls, refused=True)
        except ProviderError as error:
            raise _as_agent_error(error) from None

    async def _record(self, request: RunRequest, calls: Sequence[tuple[str, Tokens]]) -> None:
        """Record the usage of a run's model calls (shielded: a stopped run's too)."""
        if self.usage is None or not calls:
            return
        user = sender(request)
        usages = [Usage(request.key.chat_id, user, model, tokens) for model, tokens in calls]
        await record(self.usage, usages)

    async def _ask(
        self,
        request: RunRequest,
        emit: Callable[[str], Awaitable[None]],
        messages: Sequence[Message],
        calls: list[tuple[str, Tokens]],
        *,
        images: bool,
    ) -> str:
        content = user_content(request, images=images)
        return await self.chain.stream(
            [*messages, {"role": "user", "content": content}],
            emit,
            request.model,
            on_usage=lambda model, tokens: calls.append((model, tokens)),
        )

    async def _ask_without_images(
        self,
        request: RunRequest,
        sink: RunSink,
        messages: Sequence[Message],
        calls: list[tuple[str, Tokens]],
        *,
        refused: bool,
    ) -> str:
        """Answer the turn's text without its images, saying so before the answer; when the
        images are all the turn says, end it with a reply saying why."""
        if not has_text(request):
            raise MediaUnusableError(IMAGE_ONLY_REFUSED if refused else IMAGE_ONLY_OFF)
        notice = VISION_REFUSED if refused else VISION_OFF
        told = False

        async def emit(delta: str) -> None:
            nonlocal told
            if not told:
                told = True
                await sink.emit(notice)
            await sink.emit(delta)

        return await self._ask(request, emit, messages, calls, images=False)


def _as_agent_error(error: ProviderError) -> Exception:
    if isinstance(error, PoolExhaustedError):
        return CredentialsExhaustedError(str(error), error.retry_after)
    if isinstance(error, RequestRejectedError):
        return AgentRejectedError(str(error))
    if isinstance(error, ProviderUnavailableError):
        return AgentUnavailableError(str(error))
    return AgentUnavailableError(str(error))
