"""The gateway for real between the Bot API simulator and the LLM simulator."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import attrs

from gateway.app import Gateway, open_gateway
from gateway.config import (
    AdminConfig,
    Config,
    FallbackConfig,
    LLMConfig,
    MediaConfig,
    StoreConfig,
    SttConfig,
    TelegramConfig,
    ThreadsConfig,
)
from gateway.demo.botapi_sim import BotAPISimulator, SentMessage
from gateway.demo.model_sim import LLMSimulator
from gateway.store.postgres import PgConnection

TOKEN = "123456:TEST-token-for-the-simulator"
KEYS = ("sk-test-key-one-123456", "sk-test-key-two-654321")
ADMIN = 777


def test_config(
    telegram: BotAPISimulator,
    llm: LLMSimulator,
    data_dir: Path,
    bot: dict[str, object] | None,
    fallbacks: tuple[FallbackConfig, ...],
    media: dict[str, object] | None,
    stt: dict[str, object] | None,
    **threads: object,
) -> Config:
    return Config(
        telegram=TelegramConfig(
            token=TOKEN,
            api_base=telegram.base_url,
            poll_timeout=1,
            admin_users=(ADMIN,),
            **(bot or {}),  # type: ignore[arg-type]
        ),
        llm=LLMConfig(
            base_url=llm.base_url,
            model="scripted",
            api_keys=KEYS,
            read_timeout=10,
            fallbacks=fallbacks,
        ),
        threads=ThreadsConfig(
            **{
                "reset_skills": ("cc",),
                "stall_timeout": 20,
                "run_timeout": 60,
                "group_activation": "always",  # the tests written before issue 19
                **threads,
            }  # type: ignore[arg-type]
        ),
        admin=AdminConfig(addr="127.0.0.1:0"),
        media=MediaConfig(**(media or {})),  # type: ignore[arg-type]
        stt=SttConfig(**(stt or {})),  # type: ignore[arg-type]
        data_dir=str(data_dir),
    )


@attrs.define
class Running:
    gateway: Gateway
    telegram: BotAPISimulator
    llm: LLMSimulator
    data_dir: Path
    store_url: str = ""
    """The PostgreSQL store's URL (``""``: the SQLite file in ``data_dir``)."""

    def query(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[Any]:
        """Rows of a query of the gateway's store, on a connection of its own."""
        if self.store_url:
            pg = PgConnection(self.store_url)
            try:
                return pg.execute(sql, parameters).fetchall()
            finally:
                pg.close()
        with contextlib.closing(sqlite3.connect(self.data_dir / "threadgate.sqlite3")) as db:
            return db.execute(sql, parameters).fetchall()

    def bot_messages(self, chat_id: int, topic: int | None = None) -> list[SentMessage]:
        return [m for m in self.telegram.sent if (m.chat_id, m.thread_id) == (chat_id, topic)]

    def replies_to(self, message_id: int) -> list[SentMessage]:
        return [m for m in self.telegram.sent if m.reply_to == message_id]

    def unanswered_in_inbox(self) -> list[int]:
        rows = self.query("SELECT message_id FROM inbox WHERE outcome IS NULL")
        return [r[0] for r in rows]

    def outcome(self, message_id: int) -> str | None:
        rows = self.query("SELECT outcome FROM inbox WHERE message_id = ?", (message_id,))
        return None if not rows or rows[0][0] is None else str(rows[0][0])

    async def quiet(self, timeout: float = 30) -> None:
        """Until every thread is idle, nothing is queued, and the inbox is all answered."""

        def calm() -> bool:
            children = self.gateway.thread_status().children
            idle = all(
                dict(c.detail).get("phase") == "idle" and not c.mailbox_depth for c in children
            )
            return idle and not self.telegram.unconfirmed and not self.unanswered_in_inbox()

        await wait_until(calm, timeout)


async def wait_until(condition: Callable[[], bool], timeout: float = 20) -> None:
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.05)


@asynccontextmanager
async def running_gateway(
    tmp_path: Path,
    telegram: BotAPISimulator | None = None,
    llm: LLMSimulator | None = None,
    bot: dict[str, object] | None = None,
    fallbacks: tuple[FallbackConfig, ...] = (),
    media: dict[str, object] | None = None,
    stt: dict[str, object] | None = None,
    store_url: str = "",
    **threads: object,
) -> AsyncIterator[Running]:
    """The gateway between the simulators; ``bot`` overrides ``[telegram]`` settings,
    ``media`` the ``[media]`` ones, ``stt`` the ``[stt]`` ones (``base_url="llm"``: the LLM
    simulator's own speech-to-text endpoint); ``store_url``: a PostgreSQL store."""
    telegram = telegram or BotAPISimulator()
    llm = llm or LLMSimulator()
    with telegram.serving_in_thread(), llm.serving_in_thread():
        if stt is not None and stt.get("base_url") == "llm":
            stt = {**stt, "base_url": llm.base_url}
        config = test_config(telegram, llm, tmp_path, bot, fallbacks, media, stt, **threads)
        config = attrs.evolve(config, store=StoreConfig(url=store_url))
        async with open_gateway(config) as gateway:
            yield Running(gateway, telegram, llm, tmp_path, store_url)
