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
    Command,
    CredentialsAvailable,
    FailureKind,
    KeepaliveTick,
    QueueNoticeTick,
    Recover,
    Resume,
    RetryTick,
    RunFailed,
    RunFinished,
    StatusQuery,
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
from actors.thread.settings import BusyPolicy, ThreadSettings

__all__ = [
    "AgentError",
    "AgentRejectedError",
    "AgentRunner",
    "AgentUnavailableError",
    "BusyPolicy",
    "Command",
    "Concluded",
    "CredentialsAvailable",
    "CredentialsExhaustedError",
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
    "StatusQuery",
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
