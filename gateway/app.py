"""Wiring: config -> store, providers, outbox, thread supervisor, updates in, admin endpoint."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import attrs
import httpx
from aiogram import Bot
from anyio.abc import TaskGroup
from loguru import logger

from actors import (
    ActorFailedError,
    DeadLetter,
    DeadLetterReason,
    MailboxFullError,
    RestartPolicy,
    Supervisor,
    SupervisorConfig,
)
from actors.ports import AgentRunner
from actors.status import SupervisorStatus
from actors.thread_actor import ThreadActor
from actors.thread_messages import Command, CredentialsAvailable, Resume, UserMessage
from actors.thread_records import Outcome, ThreadKey
from actors.thread_settings import BusyPolicy, ThreadSettings
from actors.thread_texts import about
from gateway.admin import AdminServer
from gateway.bot import make_bot
from gateway.chat_sender import ChatSender, GlobalPace
from gateway.config import Config, FallbackConfig
from gateway.exceptions import ConfigInvalidError, StoreUnavailableError
from gateway.intake import Intake
from gateway.metrics import Metrics
from gateway.outbox import TelegramOutbox
from gateway.poller import Poller
from gateway.resequencer import Resequencer
from gateway.routing import Ignored, Routed, from_payload
from gateway.store import Store
from gateway.webhook import WebhookServer
from providers.agents import AgentContext, AgentUnknownError, load_agent
from providers.chain import FallbackChain, ProviderEntry
from providers.openai_client import ChatClient
from providers.pool import CredentialPool, PoolStatus, Strategy
from providers.secrets import ApiKey


def thread_settings(config: Config) -> ThreadSettings:
    return ThreadSettings(
        busy_policy=BusyPolicy(config.threads.busy_policy),
        reset_commands=frozenset({"new", "reset", *config.threads.reset_skills}),
        stall_timeout=config.threads.stall_timeout,
        run_timeout=config.threads.run_timeout,
        allowed_models=config.threads.allowed_models,
    )


@attrs.define(eq=False)
class Gateway:
    """The running gateway: what the admin endpoint and the demo look at."""

    config: Config
    store: Store
    metrics: Metrics
    pools: list[CredentialPool]
    threads: Supervisor[ThreadKey]
    outbox: TelegramOutbox
    _task_group: TaskGroup
    updates: Poller | WebhookServer | None = None
    """Where updates come from: long polling, or the webhook server."""
    admin_url: str = ""

    def thread_status(self) -> SupervisorStatus:
        return self.threads.status()

    def pool_status(self) -> list[PoolStatus]:
        return [pool.status() for pool in self.pools]

    async def deliver(self, routed: Routed) -> None:
        await self.deliver_message(routed.key, routed.message)

    async def deliver_message(self, key: ThreadKey, message: UserMessage | Command) -> None:
        """Hand a message to its thread; tell the user if the thread cannot take it."""
        if (
            isinstance(message, Command)
            and message.name == "status"
            and message.args == "all"
            and message.user_id in self.config.telegram.admin_users
        ):
            await self._status_all(key, message)
            return
        try:
            await self.threads.ref_for(key).send(message)
        except ActorFailedError as error:
            await self._refuse(
                key,
                message,
                "⚠️ This conversation is recovering from repeated internal errors; "
                f"try again in {about(error.retry_after)}.",
            )
        except MailboxFullError:
            await self._refuse(key, message, "⏳ Too many messages at once; wait a moment.")

    async def _status_all(self, key: ThreadKey, command: Command) -> None:
        """``/status all`` from an admin user: every thread and the key pool, as text."""
        lines = []
        for child in self.thread_status().children:
            detail = dict(child.detail)
            lines.append(
                f"{child.key}: {detail.get('phase', child.state.value)}, "
                f"gen {detail.get('generation', '-')}, queued {detail.get('queued', '-')}, "
                f"run {detail.get('run_age', '-')}, restarts {child.restarts}"
            )
        for pool in self.pool_status():
            for entry in pool.keys:
                left = f" ({entry.cooldown_left:.0f}s left)" if entry.cooldown_left else ""
                lines.append(f"{pool.name}/{entry.label}: {entry.state.value}{left}")
        await self.store.record_outcome(key, command.message_id, Outcome.ANSWERED, "/status all")
        await self.outbox.notice(
            key, "\n".join(lines) or "No threads.", reply_to=command.message_id
        )

    async def reply_ignored(self, ignored: Ignored) -> None:
        if ignored.key is not None:
            await self.outbox.notice(ignored.key, ignored.reply, reply_to=ignored.message_id)

    async def _refuse(self, key: ThreadKey, message: UserMessage | Command, text: str) -> None:
        logger.warning(
            "thread {key} refused message {id}: {text}", key=key, id=message.message_id, text=text
        )
        await self.store.record_outcome(key, message.message_id, Outcome.ERROR_REPLIED, "refused")
        await self.outbox.notice(key, text, reply_to=message.message_id)

    def on_dead_letter(self, letter: DeadLetter) -> None:
        """A message the runtime gave up on: tell the user (never silent)."""
        message = letter.message
        if not isinstance(message, UserMessage | Command) or not isinstance(letter.key, ThreadKey):
            logger.warning(
                "dead letter {kind} for {key}: {detail}",
                kind=type(message).__name__,
                key=letter.key,
                detail=letter.detail,
            )
            return
        if letter.reason is DeadLetterReason.SHUTDOWN:
            logger.info(
                "message {id} in {key} left for the next start",
                id=message.message_id,
                key=letter.key,
            )
            return  # still unanswered in the inbox: replayed at the next start
        self._task_group.start_soon(
            self._refuse,
            letter.key,
            message,
            "⚠️ Sorry, this message could not be handled (internal error). Please send it again.",
        )

    async def replay(self) -> int:
        """Deliver inbox messages that never reached their thread's record (after a crash)."""
        replayed = 0
        resumed: set[ThreadKey] = set()
        for entry in await self.store.unanswered():
            record = await self.store.load(entry.key)
            held = {p.message_id for p in (record.in_flight + record.queued)} if record else set()
            if entry.message_id in held:
                resumed.add(entry.key)  # its record has it: starting the actor resumes it
                continue
            await self.deliver_message(entry.key, from_payload(entry.payload))
            replayed += 1
        for key in resumed:
            await self.threads.ref_for(key).send(Resume(), control=True)
        if replayed or resumed:
            logger.info(
                "start-up: replayed {n} unanswered message(s); resumed {m} thread(s)",
                n=replayed,
                m=len(resumed),
            )
        return replayed


HTTP_LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=200)
"""As many idle connections kept as may be open: answers stream for seconds, so more than
httpx's default of 20 are in flight at once, and httpcore then closed every idle connection
on each request (and opened new ones): measured with bench/bench_gateway.py at 20 chats."""


def _providers(config: Config, store: Store, http: httpx.AsyncClient) -> tuple[ProviderEntry, ...]:
    """The primary provider, then the fallbacks, each with its own credential pool."""
    llm = config.llm
    primary = FallbackConfig(
        "llm", llm.base_url, llm.model, llm.api_keys, "", llm.strategy, llm.quota_cooldown
    )
    entries = []
    for provider in (primary, *llm.fallbacks):
        keys = [ApiKey(f"key-{i}", secret) for i, secret in enumerate(provider.api_keys, 1)]
        if not keys:
            keys = [ApiKey("no-key", "")]  # local models (Ollama, llama.cpp) need none
        pool = CredentialPool(
            provider.name,
            keys,
            Strategy(provider.strategy),
            provider.quota_cooldown,
            store=store,
        )
        pool.restore()
        client = ChatClient(provider.base_url, http, read_timeout=llm.read_timeout)
        entries.append(
            ProviderEntry(f"{provider.name}/{provider.model}", pool, client, provider.model)
        )
    return tuple(entries)


def _agent(config: Config, context: AgentContext) -> AgentRunner:
    try:
        return load_agent(config.agent.name, context)
    except AgentUnknownError as error:
        raise ConfigInvalidError("agent.name", str(error)) from None


@contextlib.asynccontextmanager
async def open_gateway(config: Config, bot: Bot | None = None) -> AsyncIterator[Gateway]:
    """Start everything; yield the running gateway; stop everything on exit.

    Shutdown order: stop polling and the pool's timer, let the threads drain (their last
    notices go to the senders), then let the senders drain, then close the store.
    """
    metrics = Metrics()
    store = Store(
        Path(config.data_dir) / "threadgate.sqlite3",
        on_outcome=lambda outcome: metrics.outcomes.labels(outcome.value).inc(),
    )
    bot = bot or make_bot(config.telegram)
    try:
        async with httpx.AsyncClient(limits=HTTP_LIMITS) as http, anyio.create_task_group() as tg:
            entries = _providers(config, store, http)
            pools = [entry.pool for entry in entries]
            agent = _agent(
                config,
                AgentContext(
                    FallbackChain(entries),
                    store,
                    http,
                    config.llm.system_prompt,
                    config.llm.context_budget,
                    {"url": config.agent.url, "token": config.agent.token},
                    config.llm.prompts,
                ),
            )
            telegram = config.telegram
            pace = GlobalPace(1 / telegram.send_rate)
            senders: Supervisor[int] = Supervisor(
                lambda chat_id: ChatSender(
                    chat_id,
                    bot,
                    pace,
                    metrics,
                    telegram.chat_send_interval,
                    telegram.group_sends_per_minute,
                    telegram.edit_interval,
                ),
                SupervisorConfig(stall_timeout=600, idle_ttl=300, drain_timeout=5),
            )
            async with senders:
                outbox = TelegramOutbox(senders, metrics, telegram.edit_interval)
                settings = thread_settings(config)
                dead_letters: list[Callable[[DeadLetter], None]] = []
                threads: Supervisor[ThreadKey] = Supervisor(
                    lambda key: ThreadActor(key, agent, outbox, store, settings),
                    SupervisorConfig(
                        stall_timeout=60,
                        idle_ttl=config.threads.idle_ttl,
                        drain_timeout=5,
                        restart=RestartPolicy(max_restarts=5, within=60, failed_cooldown=60),
                    ),
                    on_dead_letter=lambda letter: dead_letters[0](letter),
                )
                async with threads:
                    gateway = Gateway(config, store, metrics, pools, threads, outbox, tg)
                    dead_letters.append(gateway.on_dead_letter)
                    gateway.updates = await _updates(config, bot, store, gateway)
                    metrics.watch(gateway.thread_status, gateway.pool_status)
                    admin = AdminServer(gateway)
                    await admin.start()
                    gateway.admin_url = admin.url
                    try:
                        await gateway.replay()
                        async with anyio.create_task_group() as background:
                            for pool in pools:
                                background.start_soon(pool.run, _broadcaster(threads))
                            background.start_soon(_checkpoints, store)
                            background.start_soon(gateway.updates.run)
                            try:
                                yield gateway
                            finally:
                                background.cancel_scope.cancel()
                    finally:
                        with anyio.CancelScope(shield=True):
                            await admin.stop()
    finally:
        await bot.session.close()
        store.close()


async def _updates(
    config: Config, bot: Bot, store: Store, gateway: Gateway
) -> Poller | WebhookServer:
    """Long polling, or the webhook server (with its per-thread re-sequencing)."""
    telegram = config.telegram
    intake = Intake(store, telegram, gateway.reply_ignored, gateway.metrics)
    if telegram.mode == "webhook":
        resequencer = Resequencer(
            gateway.deliver, telegram.webhook_reorder_window, await store.last_update_id()
        )
        return WebhookServer(bot, telegram, intake, resequencer)
    return Poller(bot, store, telegram, intake, gateway.deliver)


CHECKPOINT_INTERVAL = 2.0


async def _checkpoints(store: Store) -> None:
    """Keep the SQLite write-ahead log short, off the event loop."""
    while True:
        await anyio.sleep(CHECKPOINT_INTERVAL)
        try:
            await store.checkpoint()
        except StoreUnavailableError as error:
            logger.warning(
                "store checkpoint failed (retried in {s}s): {e}", s=CHECKPOINT_INTERVAL, e=error
            )


def _broadcaster(threads: Supervisor[ThreadKey]) -> Callable[[], None]:
    def wake_parked() -> None:
        count = threads.broadcast(CredentialsAvailable(), control=True)
        logger.info("credentials available: woke {n} thread(s)", n=count)

    return wake_parked


async def serve(config: Config) -> None:
    """Run until cancelled (Ctrl-C)."""
    async with open_gateway(config):
        # Everything built so far (aiogram's many models above all) lives as long as the
        # process: keep it out of the collector's full passes, which would otherwise stop the
        # event loop for a quarter of a second at a time.
        gc.freeze()
        await anyio.sleep_forever()
