"""Chat senders for real over the Bot API simulator, driven through ``TelegramOutbox``.

No thread actor: a test writes an answer's chunks and endings itself, as a run would, so it
can open answers with a run id, react, and time what it does against what Telegram shows.
The real aiogram ``Bot`` talks to the simulator over HTTP, at the default pacing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import attrs

from actors import Supervisor, SupervisorConfig
from actors.thread.records import ThreadKey
from gateway.config import TelegramConfig
from gateway.demo.botapi_sim import BotAPISimulator, SentMessage
from gateway.ops.metrics import Metrics
from gateway.telegram.bot import make_bot
from gateway.telegram.chat_sender import ChatSender
from gateway.telegram.outbox import TelegramOutbox, TelegramReplyStream
from gateway.telegram.pacing import GlobalPace
from tests.gateway.harness import TOKEN

DM, FORUM = 5301, -1009200
CUT = "[answer cut off]"


def words(n: int, tag: str = "w", start: int = 0) -> str:
    return " ".join(f"{tag}{i}" for i in range(start, start + n))


@attrs.define
class Sending:
    outbox: TelegramOutbox
    telegram: BotAPISimulator
    senders: Supervisor[int]

    def messages(self, key: ThreadKey) -> list[SentMessage]:
        where = (key.chat_id, key.thread_id)
        return [m for m in self.telegram.sent if (m.chat_id, m.thread_id) == where]

    async def stream(
        self,
        stream: TelegramReplyStream,
        text: str,
        delay: float = 0.05,
        every: int = 1,
        *,
        more: bool = False,
    ) -> None:
        """Append ``text`` word by word (``every`` words a chunk), one chunk every ``delay``
        (``more``: after what is written, a space between)."""
        parts = text.split(" ")
        for start in range(0, len(parts), every):
            chunk = " ".join(parts[start : start + every])
            await stream.append(" " + chunk if start or more else chunk)
            await anyio.sleep(delay)


async def until(condition: Callable[[], bool], timeout: float = 15) -> None:
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.02)


@asynccontextmanager
async def sending(
    telegram: BotAPISimulator | None = None,
    *,
    streaming: str = "edit",
    reactions: bool = False,
    group_per_minute: int = 20,
    draft_refresh: float = 20.0,
    sendable: Callable[[int], bool | None] = lambda chat_id: True,
) -> AsyncIterator[Sending]:
    """Chat senders (``telegram.streaming`` = ``streaming``, ``telegram.reactions`` =
    ``reactions``) behind an outbox, over ``telegram`` (by default one that enforces
    Telegram's limits)."""
    telegram = telegram or BotAPISimulator(enforce_limits=True)
    metrics = Metrics()
    with telegram.serving_in_thread():
        bot = make_bot(TelegramConfig(token=TOKEN, api_base=telegram.base_url))
        pace = GlobalPace()

        def sender(chat_id: int) -> ChatSender:
            return ChatSender(
                chat_id, bot, pace, metrics,
                group_per_minute=group_per_minute,
                streaming=streaming,
                reactions_on=reactions,
                draft_refresh=draft_refresh,
                sendable=sendable,
            )  # fmt: skip

        senders: Supervisor[int] = Supervisor(sender, SupervisorConfig(drain_timeout=2))
        try:
            async with senders:
                yield Sending(TelegramOutbox(senders, metrics), telegram, senders)
        finally:
            await bot.session.close()
