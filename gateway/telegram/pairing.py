"""Who may talk to the agent: ``telegram.dm_policy``, the allowlists, and approved users.

Intake asks :meth:`Admission.check` before routing a message; the callback handler asks
:meth:`Admission.admits` about the user who pressed a button.

Policies (``allowed_chats`` and ``allowed_users``: empty means no restriction, except where
said):

* ``allowlist`` (the default): a chat outside ``allowed_chats`` or a user outside
  ``allowed_users`` is ignored with a log line, private chats and groups alike.
* ``pairing``: only ``allowed_users``, ``admin_users`` and the users an operator approved
  (``threadgate pairing approve CODE``) are admitted, in private chats and groups; an empty
  ``allowed_users`` admits nobody else. In a private chat a stranger gets a
  one-time code and how to be admitted, and no run; ``allowed_chats`` does not apply to
  private chats (the pairing decides them). In a group a stranger is ignored with a log line.
* ``open``: private chats from anyone, whatever ``allowed_users`` and ``allowed_chats`` say;
  groups as under ``allowlist``.

A message refused here is not written to the inbox (it is no message of a thread): it is an
``Ignored`` with a log line naming the user, never the code, and with the code as its reply.
A stranger is sent their code at most once a minute (later messages: a log line each); past
1,000 pending codes a new stranger gets no code and no reply, and the log says pairing is full.
Approvals are read from the store per message of a user outside ``allowed_users`` (one
indexed read, in a worker thread, only under ``pairing``): ``threadgate pairing approve`` and
``revoke`` take effect at the user's next message, with no restart and no cache to go stale.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import attrs
from aiogram.types import Message, Update, User
from loguru import logger

from gateway.config import TelegramConfig
from gateway.store.pairing import MAX_PENDING, REPLY_INTERVAL, Issue, Pairings
from gateway.store.sqlite import Store
from gateway.telegram.routing import Ignored, thread_key

ALLOWLIST, PAIRING, OPEN = "allowlist", "pairing", "open"


def code_reply(code: str, expires_at: float, now: float) -> str:
    """What a stranger is told in a private chat under ``pairing``."""
    minutes = max(1, round((expires_at - now) / 60))
    return (
        "🔒 This bot answers approved users only.\n"
        f"Your pairing code: `{code}` (valid for {minutes} min).\n"
        f"Ask the operator to run: `threadgate pairing approve {code}`\n"
        "Then write again."
    )


def display_name(user: User | None) -> str:
    """A user's name for the operator: first (and last) name, and @username if any; as UTF-8
    can carry it (a lone surrogate becomes ``?``, NUL is removed), at most 200 characters."""
    if user is None:
        return ""
    name = " ".join(part for part in (user.first_name, user.last_name) if part)
    name = f"{name} (@{user.username})" if user.username else name
    return name.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")[:200]


@attrs.define(eq=False)
class Admission:
    """Decides whether a message's sender may talk to the agent (see the module's rules).

    Holds nothing that changes: approvals live in the store, read when needed.
    """

    _store: Store
    _config: TelegramConfig
    _clock: Callable[[], float] = time.time
    """The wall clock of code expiry (the CLI approving them runs in another process)."""
    _users: frozenset[int] = attrs.field(init=False)
    _chats: frozenset[int] = attrs.field(init=False)
    _pairings: Pairings = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._users = frozenset(self._config.allowed_users)
        if self.policy == PAIRING:  # else the operator would have to pair with their own bot
            self._users |= frozenset(self._config.admin_users)
        self._chats = frozenset(self._config.allowed_chats)
        self._pairings = Pairings(self._store)

    @property
    def policy(self) -> str:
        return self._config.dm_policy

    async def admits(self, user_id: int | None, chat_id: int) -> bool:
        """Whether ``user_id`` may use the bot in ``chat_id`` (a private chat: ``chat_id >
        0``); never issues a code. Raises ``StoreUnavailableError`` if approvals cannot be
        read."""
        private = chat_id > 0
        if self.policy == OPEN and private:
            return True
        if self._chats and chat_id not in self._chats and not (private and self.policy == PAIRING):
            return False
        if self.policy != PAIRING:
            return not self._users or user_id in self._users
        if user_id in self._users:
            return True
        return user_id is not None and await self._pairings.is_approved(user_id)

    async def check(self, update: Update) -> Ignored | None:
        """``None`` if ``update`` goes on to routing; else why not (and, for a stranger in a
        private chat under ``pairing``, the reply with their code). Raises
        ``StoreUnavailableError`` if the store cannot be read or written (the update is then
        not confirmed, and comes again)."""
        message = update.message
        if message is None:
            return None  # not a message: routing says what it is
        user = message.from_user
        user_id = user.id if user is not None else None
        key = thread_key(message)
        private = message.chat.type == "private"
        if private and self.policy == PAIRING and user_id is not None:
            if user_id in self._users:
                return None
            return await self._stranger(update.update_id, message, user_id)
        if await self.admits(user_id, key.chat_id):
            return None
        if self._chats and key.chat_id not in self._chats:
            return Ignored(update.update_id, f"chat {key.chat_id} is not allowed")
        return Ignored(update.update_id, f"user {user_id} is not allowed in {key}")

    async def _stranger(self, update_id: int, message: Message, user_id: int) -> Ignored | None:
        """A private message under ``pairing`` from a user outside ``allowed_users``."""
        now = self._clock()
        known = await self._pairings.stranger(user_id, now)
        if known.approved:
            return None
        key = thread_key(message)
        if known.replied_at is not None and now - known.replied_at < REPLY_INTERVAL:
            return Ignored(update_id, f"user {user_id} is not paired (code sent already)")
        name = display_name(message.from_user)
        issued = await self._pairings.issue(user_id, key.chat_id, name, now)
        if issued.issue is Issue.APPROVED:
            return None
        if issued.issue is Issue.QUIET:
            return Ignored(update_id, f"user {user_id} is not paired (code sent already)")
        if issued.issue is Issue.FULL:
            # No reply: nothing would limit them (a stranger past the cap has no row), and a
            # thousand pending codes is an operator's matter. The warning says what to do.
            logger.warning(
                "pairing is full ({n} codes pending): user {user} ({name}) got no code and no "
                "reply; approve some or wait for them to expire",
                n=MAX_PENDING,
                user=user_id,
                name=name,
            )
            return Ignored(update_id, f"user {user_id} is not paired (pairing is full)")
        what = "a new pairing code" if issued.issue is Issue.NEW else "their pairing code again"
        return Ignored(
            update_id,
            f"user {user_id} ({name}) is not paired; sent {what}",
            key,
            code_reply(issued.code, issued.expires_at, now),
            message.message_id,
        )
