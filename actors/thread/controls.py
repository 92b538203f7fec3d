"""Group activation: when a thread in a group or forum topic answers its users.

Rules:

* Private chats (chat id > 0) always answer. A group thread whose activation is
  ``MENTION`` concludes a message not addressed to the bot (``UserMessage.addressed``)
  ``NOT_ADDRESSED``: accepted (so a retry is recognized), a debug log line, no reply, no run.
  Commands always act.
* The activation belongs to the conversation (``ThreadKey.conversation``: the group, or one
  forum topic), not to a per-user thread of it. The thread loads it when it starts
  (``ThreadStore.load_activation``; ``ThreadSettings.activation`` if none was chosen).
* ``/activation`` shows it; ``/activation always|mention`` from an admin
  (``Command.admin``) switches it: persisted (``save_activation``) before the reply, then
  told to the conversation's other live threads (``Siblings``, per-user sessions only), which
  take it as ``ActivationChanged``. From anyone else: a reply saying it is for admins.
"""

from __future__ import annotations

import attrs
from loguru import logger

from actors.thread import texts
from actors.thread.messages import ActivationChanged, Command, UserMessage
from actors.thread.ports import Siblings, ThreadStore
from actors.thread.records import ThreadKey
from actors.thread.settings import Activation


@attrs.define(eq=False)
class Activations:
    """One thread's activation, and the ``/activation`` command."""

    _key: ThreadKey
    _store: ThreadStore
    _siblings: Siblings | None
    _mode: Activation

    @property
    def group(self) -> bool:
        """Whether the thread is in a group (private chats have no activation)."""
        return self._key.chat_id < 0

    @property
    def mode(self) -> Activation | None:
        """The activation, for a group thread (``None`` in a private chat)."""
        return self._mode if self.group else None

    async def load(self) -> None:
        """Read the conversation's chosen activation (raises if the store cannot be read)."""
        if self.group:
            chosen = await self._store.load_activation(self._key.conversation)
            self._mode = chosen or self._mode

    def answers(self, message: UserMessage) -> bool:
        """Whether ``message`` is for the agent (see the rules)."""
        if message.addressed or not self.group or self._mode is Activation.ALWAYS:
            return True
        logger.debug(
            "thread {key}: message {id} not addressed to the bot; not answered",
            key=self._key,
            id=message.message_id,
        )
        return False

    def concerns(self, message: ActivationChanged) -> bool:
        """Whether ``message`` is about this thread's conversation."""
        return self.group and message.conversation == self._key.conversation

    def changed(self, message: ActivationChanged) -> None:
        """A sibling switched the conversation's activation."""
        if self.concerns(message) and message.activation is not self._mode:
            self._mode = message.activation
            logger.info(
                "thread {key}: activation now {mode} (switched in a sibling thread)",
                key=self._key,
                mode=message.activation.value,
            )

    async def command(self, command: Command) -> str:
        """``/activation [always|mention]``: the reply (raises if the choice is not saved)."""
        if not self.group:
            return texts.ACTIVATION_PRIVATE
        wanted = command.args.strip().lower()
        if not wanted:
            return texts.activation_shown(self._mode, topic=self._key.thread_id is not None)
        choices = {mode.value: mode for mode in Activation}
        if wanted not in choices:
            return texts.activation_usage(self._mode)
        if not command.admin:
            logger.info(
                "thread {key}: /activation from {user}, who is not an admin: refused",
                key=self._key,
                user=command.user_id,
            )
            return texts.activation_admins_only(self._mode)
        mode = choices[wanted]
        conversation = self._key.conversation
        await self._store.save_activation(conversation, mode)
        self._mode = mode
        logger.info(
            "thread {key}: activation of {conv} switched to {mode} by {user}",
            key=self._key,
            conv=conversation,
            mode=mode.value,
            user=command.user_id,
        )
        if self._siblings is not None:
            self._siblings.tell(conversation, ActivationChanged(conversation, mode))
        return texts.activation_switched(mode, topic=self._key.thread_id is not None)
