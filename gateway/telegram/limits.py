"""The daily limits and ``/usage``, at delivery (before any thread).

Rules:

* What counts is what starts a turn of the agent: a user message (in a group whose
  activation is ``mention``, only one addressed to the bot: the others get no run), a
  ``/retry``, a reset skill with input (``/cc fix this``) and any command the gateway does
  not know itself (a skill, which the thread hands to the agent). The gateway's own commands
  (``CONTROL_COMMANDS`` and reset skills without input) never count and are never limited.
* A message that counts is counted once its thread's mailbox took it
  (``UsageStore.count_message``), whoever sent it; admins (``telegram.admin_users``) are
  counted and never limited.
* It is refused (:meth:`UsageGate.over`) when its sender already reached a daily limit:
  ``limits.user_daily_messages`` messages counted today, or ``limits.user_daily_tokens``
  tokens used today (all chats and models). A run is never cut off midway: the token limit
  stops the next message. Days are UTC days; the reply says when the limit resets.
* A store that cannot be read lets the message through, with a log line (a budget is not a
  reason to stop answering when the disk is unwell); a count that cannot be written is a log
  line too.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import attrs
from loguru import logger

from actors.thread.messages import Command, UserMessage
from actors.thread.records import ThreadKey
from actors.thread.settings import Activation
from gateway.config import LimitsConfig
from gateway.exceptions import StoreUnavailableError
from gateway.store.sqlite import Store
from gateway.store.usage import UsageStore
from gateway.telegram import usage_texts

CONTROL_COMMANDS = frozenset(
    {"new", "reset", "stop", "status", "help", "start", "model", "activation", "usage"}
)
"""Commands the gateway answers itself, without a turn of the agent."""


@attrs.frozen
class Limited:
    """A message over a daily limit: what its sender is told, and its outcome's detail."""

    reply: str
    """The reply (which limit, when it resets)."""
    detail: str
    """The outcome's detail."""


@attrs.define(eq=False)
class UsageGate:
    """Counts the messages that start turns, refuses those over a daily limit, and answers
    ``/usage``."""

    _usage: UsageStore
    _store: Store
    _limits: LimitsConfig
    _admin_users: frozenset[int]
    _reset_commands: frozenset[str] = frozenset({"new", "reset"})
    """Commands that start a new session (a turn only with input)."""
    _activation: Activation = Activation.MENTION
    """Groups' activation where ``/activation`` chose none."""
    _clock: Callable[[], float] = time.time

    async def counts(self, key: ThreadKey, message: UserMessage | Command) -> bool:
        """Whether ``message`` starts a turn of the agent (see the rules)."""
        if message.user_id is None:
            return False
        if isinstance(message, Command):
            if message.name in self._reset_commands:
                return bool(message.args)
            return message.name not in CONTROL_COMMANDS
        if message.addressed:
            return True
        try:
            chosen = await self._store.load_activation(key)
        except StoreUnavailableError as error:
            logger.warning("activation of {key} not read ({e}): counted", key=key, e=error)
            return True
        return (chosen or self._activation) is Activation.ALWAYS

    async def over(self, key: ThreadKey, message: UserMessage | Command) -> Limited | None:
        """Why ``message`` (one that :meth:`counts`) is refused, if its sender is over a
        daily limit; else ``None``. A message counted already (its thread took it before a
        restart, and it is delivered again) is never refused: it was let through once."""
        limits, user = self._limits, message.user_id
        if not (limits.user_daily_messages or limits.user_daily_tokens):
            return None
        if user is None or user in self._admin_users:
            return None
        try:
            if await self._usage.counted(key, message.message_id):
                return None
            today = await self._usage.user_today(user)
        except StoreUnavailableError as error:
            logger.warning(
                "usage of user {user} not read ({e}): message {id} in {key} let through",
                user=user,
                e=error,
                id=message.message_id,
                key=key,
            )
            return None
        now = self._clock()
        if limits.user_daily_messages and today.messages >= limits.user_daily_messages:
            limit = limits.user_daily_messages
            return Limited(usage_texts.over_messages(limit, now), f"daily messages ({limit})")
        if limits.user_daily_tokens and today.tokens >= limits.user_daily_tokens:
            limit = limits.user_daily_tokens
            reply = usage_texts.over_tokens(limit, today.tokens, now)
            return Limited(reply, f"daily tokens ({limit})")
        return None

    async def count(self, key: ThreadKey, message: UserMessage | Command) -> None:
        """Count ``message`` (one that :meth:`counts`), which its thread took; never raises
        for a store that cannot be written (a log line)."""
        try:
            await self._usage.count_message(key, message.message_id, message.user_id)
        except StoreUnavailableError as error:
            logger.error(
                "message {id} in {key} not counted for user {user}: {e}",
                id=message.message_id,
                key=key,
                user=message.user_id,
                e=error,
            )

    async def answer(self, command: Command) -> tuple[str, str]:
        """``/usage`` (the sender's own) or ``/usage all`` (an admin's): the reply and the
        outcome's detail.

        Raises:
            StoreUnavailableError: the usage could not be read.
        """
        user = command.user_id
        if command.args.strip().lower() == "all":
            if user not in self._admin_users:
                return usage_texts.USAGE_ADMIN_ONLY, "/usage all: not an admin"
            report = await self._usage.report(everyone=True)
            return usage_texts.everyone_report(report), "/usage all"
        if user is None:
            return usage_texts.NO_SENDER, "/usage: no sender"
        report = await self._usage.report(user)
        return usage_texts.own_report(report, user, self._limits, self._clock()), "/usage"
