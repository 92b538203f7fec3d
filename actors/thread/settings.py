"""How a thread actor behaves: busy policy, reset commands, run timeouts."""

from __future__ import annotations

import enum

import attrs


class BusyPolicy(enum.Enum):
    """What a user message does while a run is active."""

    QUEUE = "queue"
    """Queued (acknowledged once per run); all queued messages form the next turn."""
    INTERRUPT = "interrupt"
    """Cancels the run and starts a new turn with it."""


class Activation(enum.Enum):
    """When a thread in a group answers a user message (private chats always answer)."""

    MENTION = "mention"
    """Only when addressed: an @mention of the bot, or a reply to one of its messages
    (``UserMessage.addressed``). Commands always act."""
    ALWAYS = "always"
    """Every message."""


@attrs.frozen
class ThreadSettings:
    """Settings shared by every thread actor."""

    busy_policy: BusyPolicy = BusyPolicy.QUEUE
    """What a user message does while a run is active."""
    reset_commands: frozenset[str] = frozenset({"new", "reset"})
    """Commands that start a new session, plus configured reset skills such as ``cc``."""
    stall_timeout: float = 120.0
    """A run with no output (or heartbeat) for this long is cancelled."""
    run_timeout: float = 900.0
    """A run longer than this is cancelled."""
    default_retry_after: float = 300.0
    """When exhausted credentials say nothing of when a key is back, retry after this."""
    queue_notice_delay: float = 1.0
    """A message queued behind a run is acknowledged if that run still goes on this long
    after (an answer that comes sooner needs no notice)."""
    max_queued: int = 50
    """Inputs queued per thread at most; beyond it the user is told to wait."""
    max_attempts: int = 2
    """Runs an input may be part of when they end by a restart; then it is error-replied."""
    allowed_models: tuple[str, ...] = ()
    """Models ``/model NAME`` may switch to; empty disables the command."""
    keepalive_delay: float = 0.5
    """A run shows it is alive (``ReplyStream.keepalive``: "typing…") this long after it
    starts; an answer that begins sooner costs no extra request to Telegram."""
    keepalive_interval: float = 4.0
    """Then again this often while it runs (Telegram shows "typing…" for about 5 s)."""
    finalize_timeout: float = 120.0
    """How long finishing or aborting a streamed reply may take, waiting for the chat's
    pacing included (a busy group shows about 20 messages and edits a minute); then the
    answer is reported as not delivered."""
    notice_timeout: float = 10.0
    """How long a notice may take to be handed to the outbox; then it is logged as not
    delivered. It is not cut short by a shutdown: what a thread concluded, it says."""
    activation: Activation = Activation.MENTION
    """A group thread's activation until ``/activation`` switches it
    (``threads.group_activation``)."""
    debounce: float = 0.0
    """Messages one user sends within this many seconds of each other, while no run is
    active, become one turn (0: off; see ``actors.thread.debounce``). The cost is latency:
    every turn then starts this long after its last message, even a lone one."""
    reactions: bool = False
    """React 👀 to a message accepted while the thread is busy (``Outbox.react``), and clear
    the reaction when it is concluded."""
    failure_write_for: float = 10.0
    """How long a thread marked failed keeps trying to write the conclusion of what it held
    (the store may be what failed it)."""
