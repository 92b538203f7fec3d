"""Token usage: what one model call used, and the ledger the agents record it in.

Rules:

* A model call's usage comes from the provider (``usage`` in the answer; on a stream, the
  chunk ``stream_options.include_usage`` asks for). Without it, it is estimated: a token
  for every four characters of the prompt's text and of the answer, rounded up, and marked
  ``estimated`` (in ``/usage`` and the metrics).
* The built-in agents record one :class:`Usage` per model call: the call that answered
  (after a fallback, the model that answered), a failed call that reported usage, and a
  stream stopped once the provider had accepted it (estimated: its prompt was paid for).
* :meth:`UsageLedger.record` never raises: a usage that cannot be written is a log line of
  the ledger's, never a failed run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import anyio
import attrs
from loguru import logger

from actors.thread.ports import RunRequest

CHARS_PER_TOKEN = 4
"""Characters per token of the estimate (English text with OpenAI's tokenizers)."""
RECORD_TIMEOUT = 5.0
"""Seconds a run's usage may take to be recorded once the run was stopped (cancelled)."""


def sender(request: RunRequest) -> int | None:
    """Who a turn's usage is counted for: the sender of its last input (``None``: unknown)."""
    return request.user_ids[-1] if request.user_ids else None


def estimate_tokens(chars: int) -> int:
    """Tokens of ``chars`` characters, estimated (rounded up)."""
    return math.ceil(max(0, chars) / CHARS_PER_TOKEN)


def prompt_chars(messages: Iterable[Mapping[str, Any]]) -> int:
    """Characters of a request's text: each message's content, or its ``text`` blocks (an
    image block counts nothing: its tokens are not estimated)."""
    total = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            total += sum(
                len(str(block.get("text", "")))
                for block in content
                if isinstance(block, Mapping) and block.get("type") == "text"
            )
        else:
            total += len(str(content or ""))
    return total


@attrs.frozen
class Tokens:
    """What one model call used."""

    prompt: int
    """Tokens of the request (system prompt, history, the turn)."""
    completion: int
    """Tokens of the answer."""
    estimated: bool = False
    """Estimated from characters: the provider reported nothing."""

    @property
    def total(self) -> int:
        """Prompt and completion."""
        return self.prompt + self.completion

    @classmethod
    def estimate(cls, prompt_chars: int, completion_chars: int) -> Tokens:
        """The estimate for a call of ``prompt_chars`` characters answered with
        ``completion_chars``."""
        return cls(estimate_tokens(prompt_chars), estimate_tokens(completion_chars), True)

    @classmethod
    def reported(cls, usage: object) -> Tokens | None:
        """The provider's ``usage`` object (``prompt_tokens``, ``completion_tokens``), or
        ``None`` when it is missing or malformed."""
        if not isinstance(usage, Mapping):
            return None
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if not isinstance(prompt, int) or not isinstance(completion, int):
            return None
        if isinstance(prompt, bool) or isinstance(completion, bool):
            return None
        return cls(max(0, prompt), max(0, completion))


@attrs.frozen
class Usage:
    """One model call's usage, attributed."""

    chat_id: int
    """The chat whose thread ran it."""
    user_id: int | None
    """Who sent the turn's last input (``None``: unknown)."""
    model: str
    """The model that was asked (after a fallback, the fallback's)."""
    tokens: Tokens
    """What it used."""


class UsageLedger(Protocol):
    """Where agents record the usage of their model calls (the gateway's store)."""

    async def record(self, usage: Usage) -> None:
        """Record ``usage``; never raises (a failure is the ledger's log line)."""


async def record(ledger: UsageLedger, usages: Sequence[Usage]) -> None:
    """Record ``usages`` in ``ledger``, even while their run is being cancelled (a stopped
    run's are recorded too), for at most ``RECORD_TIMEOUT`` seconds (then a log line)."""
    with anyio.CancelScope(shield=True) as scope:
        scope.deadline = anyio.current_time() + RECORD_TIMEOUT
        for usage in usages:
            await ledger.record(usage)
    if scope.cancelled_caught:
        logger.warning(
            "usage of {n} model call(s) in chat {chat} not recorded within {s:g}s",
            n=len(usages),
            chat=usages[0].chat_id if usages else "-",
            s=RECORD_TIMEOUT,
        )
