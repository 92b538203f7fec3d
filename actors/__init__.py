"""Threadgate's actor core: a supervised mailbox runtime and the thread actor.

This package imports nothing from ``gateway`` or ``providers``; it talks to the outside world
through the protocols in :mod:`actors.thread.ports`.
"""

from __future__ import annotations

from actors.actor import Actor
from actors.context import ActorContext
from actors.deadletter import DeadLetter, DeadLetterReason, log_dead_letter
from actors.envelope import Envelope, Reply
from actors.exceptions import (
    ActorCrashedError,
    ActorError,
    ActorFailedError,
    ActorStalledError,
    ActorStoppedError,
    AskTimeoutError,
    MailboxClosedError,
    MailboxFullError,
    SupervisorClosedError,
)
from actors.mailbox import Mailbox, MailboxStatistics
from actors.policy import OverflowPolicy, RestartPolicy, SupervisorConfig
from actors.ref import ActorRef
from actors.status import ChildState, ChildStatus, SupervisorStatistics, SupervisorStatus
from actors.supervisor import Supervisor
from actors.timers import Timer

__all__ = [
    "Actor",
    "ActorContext",
    "ActorCrashedError",
    "ActorError",
    "ActorFailedError",
    "ActorRef",
    "ActorStalledError",
    "ActorStoppedError",
    "AskTimeoutError",
    "ChildState",
    "ChildStatus",
    "DeadLetter",
    "DeadLetterReason",
    "Envelope",
    "Mailbox",
    "MailboxClosedError",
    "MailboxFullError",
    "MailboxStatistics",
    "OverflowPolicy",
    "Reply",
    "RestartPolicy",
    "Supervisor",
    "SupervisorClosedError",
    "SupervisorConfig",
    "SupervisorStatistics",
    "SupervisorStatus",
    "Timer",
    "log_dead_letter",
]
