"""The thread actor: one actor alone owns one chat thread's session, run and queue.

Built on the runtime (:mod:`actors`) and nothing else of ours: it talks to Telegram, the
store and the agents through the protocols in :mod:`actors.thread.ports`, which ``gateway``
and ``providers`` implement.
"""

from __future__ import annotations

from actors.thread.actor import ThreadActor
from actors.thread.exceptions import (
    AgentError,
    AgentRejectedError,
    AgentUnavailableError,
    CredentialsExhaustedError,
    MediaUnusableError,
    ReplyUndeliveredError,
    ThreadError,
)
from actors.thread.messages import (
    ActivationChanged,
    Command,
    CredentialsAvailable,
    DebounceTick,
    FailureKind,
    KeepaliveTick,
    QueueNoticeTick,
    Recover,
    Resume,
    RetryTick,
    RunFailed,
    RunFinished,
    StatusQuery,
    StopRun,
    UserMessage,
)
from actors.thread.ports import (
    AgentRunner,
    DocumentPart,
    ImagePart,
    Outbox,
    Part,
    ReplyStream,
    RunRequest,
    RunSink,
    Siblings,
    TextPart,
    ThreadStore,
)
from actors.thread.records import (
    Concluded,
    Exchange,
    MediaKind,
    MediaRef,
    Outcome,
    PendingInput,
    ThreadKey,
    ThreadPhase,
    ThreadRecord,
    ThreadStatus,
    Turn,
)
from actors.thread.settings import Activation, BusyPolicy, ThreadSettings

__all__ = [
    "Activation",
    "ActivationChanged",
    "AgentError",
    "AgentRejectedError",
    "AgentRunner",
    "AgentUnavailableError",
    "BusyPolicy",
    "Command",
    "Concluded",
    "CredentialsAvailable",
    "CredentialsExhaustedError",
    "DebounceTick",
    "DocumentPart",
    "Exchange",
    "FailureKind",
    "ImagePart",
    "KeepaliveTick",
    "MediaKind",
    "MediaRef",
    "MediaUnusableError",
    "Outbox",
    "Outcome",
    "Part",
    "PendingInput",
    "QueueNoticeTick",
    "Recover",
    "ReplyStream",
    "ReplyUndeliveredError",
    "Resume",
    "RetryTick",
    "RunFailed",
    "RunFinished",
    "RunRequest",
    "RunSink",
    "Siblings",
    "StatusQuery",
    "StopRun",
    "TextPart",
    "ThreadActor",
    "ThreadError",
    "ThreadKey",
    "ThreadPhase",
    "ThreadRecord",
    "ThreadSettings",
    "ThreadStatus",
    "ThreadStore",
    "Turn",
    "UserMessage",
]
