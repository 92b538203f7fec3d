"""Reactions to users' messages (``telegram.reactions``), as a chat's sender queues them.

Rules:

* A ``React`` is told to the chat's sender (``TelegramOutbox.react`` never waits). The
  latest reaction for a message wins; clearing one that has not gone out cancels it, and
  nothing is sent.
* Order of service: after notices and final texts, before partial updates. In a group a
  reaction goes only while the minute's budget keeps one request for the final text of
  every open answer (as a partial update does), so reactions never starve the texts that
  complete answers. Each is one request, paced like any other (per chat and bot-wide).
* A reaction is cosmetic: its failure is a log line and never touches an answer. A 400
  saying the chat takes no reactions (``REACTION_INVALID``, reactions disabled or not
  allowed, no rights) is logged once, and the chat gets no more reaction requests from that
  sender (a new incarnation, after it passivated, tries once again). Other errors drop the
  reaction with a log line; a 429 blocks the chat as for any request, and the reaction waits.
"""

from __future__ import annotations

import attrs
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramRetryAfter
from aiogram.types import ReactionTypeEmoji
from loguru import logger

from actors.thread.records import ThreadKey

_REFUSALS = (
    "reaction_invalid",
    "reactions are disabled",
    "reaction is not allowed",
    "reactions_uniq_max",
    "not enough rights",
    "chat_admin_required",
    "not allowed",
)
"""What a 400 says when the chat does not take the bot's reactions."""


@attrs.frozen
class React:
    """Set the bot's reaction to a user's message: told to the chat's sender."""

    key: ThreadKey
    """The thread the message is in."""
    message_id: int
    """The user's message."""
    emoji: str | None
    """The reaction (one emoji), or ``None`` to clear it."""


def refuses(error: TelegramBadRequest) -> bool:
    """Whether ``error`` says the chat takes no reactions from the bot (not just this one)."""
    text = str(error).lower()
    return any(refusal in text for refusal in _REFUSALS)


@attrs.define(eq=False)
class Reactions:
    """One chat's reactions not sent yet, and what the bot has set (see the module's rules)."""

    _pending: dict[int, React] = attrs.field(factory=dict, init=False)
    _set: set[int] | None = attrs.field(default=None, init=False)
    """The messages that show the bot's reaction; ``None`` while none does (every chat's
    sender has one of these: no empty set each)."""
    _refused: bool = attrs.field(default=False, init=False)

    @property
    def pending(self) -> int:
        """How many wait to be sent."""
        return len(self._pending)

    @property
    def refused(self) -> bool:
        """Whether the chat refused the bot's reactions (none are sent any more)."""
        return self._refused

    def take(self, react: React) -> bool:
        """Queue ``react``; ``False`` if nothing needs to be sent for it."""
        if self._refused:
            return False
        mid = react.message_id
        unsent = self._pending.pop(mid, None)
        if react.emoji is None and unsent is not None and not (self._set and mid in self._set):
            return False  # its reaction never went out: nothing to clear
        self._pending[mid] = react
        return True

    def next(self) -> React | None:
        """The oldest reaction waiting, taken off the queue."""
        if not self._pending:
            return None
        mid = next(iter(self._pending))
        return self._pending.pop(mid)

    def again(self, react: React) -> None:
        """``react`` did not go out (a 429): first again, unless a later one replaced it."""
        if not self._refused and react.message_id not in self._pending:
            self._pending = {react.message_id: react, **self._pending}

    def done(self, react: React) -> None:
        """``react`` went out."""
        if react.emoji is None:
            if self._set is not None:
                self._set.discard(react.message_id)
                self._set = self._set or None
        else:
            if self._set is None:
                self._set = set()
            self._set.add(react.message_id)

    def withdraw(self) -> int:
        """Drop those waiting (the chat is not sendable here); returns how many."""
        dropped = len(self._pending)
        self._pending.clear()
        return dropped

    def refuse(self) -> int:
        """The chat refused reactions: drop those waiting; returns how many."""
        self._refused = True
        dropped = len(self._pending)
        self._pending.clear()
        self._set = None
        return dropped


def take(reactions: Reactions, react: React, *, enabled: bool) -> None:
    """Queue ``react`` (``telegram.reactions`` is ``enabled``), or say at debug why not."""
    if not enabled:
        logger.debug("reaction in {key} not sent: reactions are off", key=react.key)
    elif reactions.refused:
        logger.debug("reaction in {key} not sent: the chat refuses them", key=react.key)
    elif not reactions.take(react):
        logger.debug(
            "reaction on {id} in {key}: nothing to clear", id=react.message_id, key=react.key
        )


async def send_next(bot: Bot, chat_id: int, reactions: Reactions) -> TelegramRetryAfter | None:
    """Send the oldest reaction waiting in ``reactions`` (``setMessageReaction``); returns
    the 429 that held it back, if any (it waits again). Never raises (but for cancellation):
    every other failure is a log line."""
    reaction = reactions.next()
    if reaction is None:
        return None
    key, mid = reaction.key, reaction.message_id
    emoji = [] if reaction.emoji is None else [ReactionTypeEmoji(emoji=reaction.emoji)]
    try:
        await bot.set_message_reaction(chat_id, mid, reaction=list(emoji))
    except TelegramRetryAfter as error:
        reactions.again(reaction)
        return error
    except TelegramBadRequest as error:
        if not refuses(error):
            logger.warning("reaction on {id} in {key} not set: {e}", id=mid, key=key, e=error)
            return None
        dropped = reactions.refuse()
        logger.warning(
            "chat {chat} refuses the bot's reactions ({e}): none sent there any more"
            " ({n} dropped)",
            chat=chat_id, e=error, n=dropped,
        )  # fmt: skip
        return None
    except Exception as error:  # noqa: BLE001 - cosmetic: logged, dropped
        logger.warning("reaction on {id} in {key} not set: {e!r}", id=mid, key=key, e=error)
        return None
    reactions.done(reaction)
    return None
