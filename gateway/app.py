"""Wiring: config -> store, providers, outbox, thread supervisor, updates in, admin endpoint."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path

import anyio
import attrs
import httpx
from aiogram import Bot
from loguru import logger

from actors import (
    RestartPolicy,
    Supervisor,
    SupervisorConfig,
    SupervisorStatus,
)
from actors.thread.actor import ThreadActor
from actors.thread.records import Concluded, ThreadKey
from actors.thread.settings import Activation
from gateway import jobs
from gateway.cluster.manager import POLLER
from gateway.cluster.schema import ensure
from gateway.cluster.status import ClusterStatus
from gateway.cluster.wiring import Cluster, build, fence_for
from gateway.config import Config
from gateway.media.albums import Albums
from gateway.media.fetch import Fetcher
from gateway.media.runner import MediaRunner
from gateway.media.wiring import media_limits, media_reader
from gateway.ops.admin import AdminServer
from gateway.ops.metrics import Metrics
from gateway.ops.recent import Recent, config_secrets
from gateway.ops.timings import QueueWait
from gateway.parts import (
    CHAT_LIMITS,
    HTTP_LIMITS,
    configured_agent,
    providers,
    started_line,
    thread_settings,
)
from gateway.services import ServiceStatus, ServiceSupervisor
from gateway.store import Store, open_store
from gateway.store.fence import NO_FENCE
from gateway.store.retention import keep_pruned
from gateway.store.usage import UsageStore
from gateway.telegram import commands
from gateway.telegram.bot import make_bot
from gateway.telegram.callbacks import Callbacks
from gateway.telegram.chat_sender import ChatSender
from gateway.telegram.delivery import Delivery
from gateway.telegram.intake import Intake
from gateway.telegram.limits import UsageGate
from gateway.telegram.outbox import TelegramOutbox
from gateway.telegram.pacing import WINDOW, GlobalPace
from gateway.telegram.poller import Poller
from gateway.telegram.refusals import Refusals
from gateway.telegram.resequencer import Resequencer
from gateway.telegram.siblings import ThreadSiblings
from gateway.telegram.webhook import WebhookServer
from providers.http import open_chat_http
from providers.pool import CredentialPool, PoolStatus


@attrs.define(eq=False)
class Gateway:
    """The running gateway: its parts, and what the admin endpoint reads
    (``gateway.ops.admin.Observed``)."""

    config: Config
    store: Store
    metrics: Metrics
    pools: list[CredentialPool]
    threads: Supervisor[ThreadKey]
    outbox: TelegramOutbox
    delivery: Delivery
    supervised: ServiceSupervisor
    """The gateway's own long-running services (updates, replies, checkpoints, ...)."""
    updates: Poller | WebhookServer | None = None
    """Where updates come from: long polling, or the webhook server."""
    admin_url: str = ""
    cluster: Cluster | None = None
    """This replica's parts when the store is shared (PostgreSQL); ``None`` on SQLite."""

    def thread_status(self) -> SupervisorStatus:
        return self.threads.status()

    def pool_status(self) -> list[PoolStatus]:
        return [pool.status() for pool in self.pools]

    def cluster_status(self) -> ClusterStatus | None:
        """The replicas and their shards (``None`` on SQLite: one process holds all)."""
        return None if self.cluster is None else self.cluster.status()

    def render_metrics(self) -> bytes:
        return self.metrics.render()

    def services(self) -> Sequence[ServiceStatus]:
        return self.supervised.status()

    def health(self) -> dict[str, bool]:
        """The gateway's own checks for ``/healthz``: threads accept mail, updates come in."""
        updates, cluster = self.updates, self.cluster
        # A replica that does not hold the poller lease polls nothing, and is well.
        elsewhere = (
            cluster is not None and isinstance(updates, Poller) and not cluster.leases.leads(POLLER)
        )
        checks = {
            "supervisor_running": self.threads.running,
            f"{updates.name if updates else 'updates'}_alive": (
                updates is not None and (elsewhere or updates.alive(anyio.current_time()))
            ),
        }
        if cluster is not None:  # a replica that stood down (a newer process took its id)
            checks["replica_active"] = not cluster.leases.status().leaving
        return checks


@contextlib.asynccontextmanager
async def open_gateway(
    config: Config, bot: Bot | None = None, *, announce: Path | None = None, demo: bool = False
) -> AsyncIterator[Gateway]:
    """Start everything; yield the running gateway; stop everything on exit.

    The admin endpoint's address is written to ``admin.json`` in ``announce`` (default: the
    data directory) for ``threadgate status``; ``demo`` marks it as the local demo's.
    One log line says what started (``started_line``), one that it stopped, and how long it
    ran (a start that failed logs its error instead).
    """
    started: float | None = None
    try:
        async with _open_gateway(config, bot, announce=announce, demo=demo) as gateway:
            logger.info(started_line(config, gateway.admin_url))
            started = anyio.current_time()
            yield gateway
    finally:
        if started is not None:
            logger.info("threadgate stopped after {s:.0f}s", s=anyio.current_time() - started)


@contextlib.asynccontextmanager
async def _open_gateway(
    config: Config, bot: Bot | None, *, announce: Path | None, demo: bool
) -> AsyncIterator[Gateway]:
    """Start everything; yield the running gateway; stop everything on exit.

    Everything is entered in order on one exit stack, and so stopped in the reverse order:
    the services (updates, the pools' timers, checkpoints, the admin endpoint) first; then the
    threads drain (their last notices go to the senders), then the replies the gateway owes
    are sent, then the senders drain; then the HTTP clients close, and the store last.
    The services run supervised (``gateway.services``): a failure restarts one, a
    ``FatalError`` stops the gateway.
    """
    telegram = config.telegram
    metrics = Metrics()
    recent = Recent(config_secrets(config))

    def on_outcome(key: ThreadKey, concluded: Concluded) -> None:
        metrics.outcomes.labels(concluded.outcome.value).inc()
        recent.outcome(key, concluded)

    async with contextlib.AsyncExitStack() as stack:
        stack.enter_context(recent.watching_logs())
        fence = fence_for(config)  # several replicas: every thread write checks its lease
        store = open_store(
            config.store.url, Path(config.data_dir), on_outcome, fence=fence or NO_FENCE
        )
        stack.callback(store.close)
        bot = bot or make_bot(telegram)
        stack.push_async_callback(bot.session.close)
        http = await stack.enter_async_context(httpx.AsyncClient(limits=HTTP_LIMITS))
        chat_http = await stack.enter_async_context(open_chat_http(CHAT_LIMITS))  # aiohttp

        entries = await providers(config, store, chat_http)
        pools = [entry.pool for entry in entries]
        usage = UsageStore(store, metrics.count_usage)
        queue_wait = QueueWait(metrics.queue_wait)
        limits = media_limits(config)
        fetcher = Fetcher(bot, http, limits)
        agent = queue_wait.timed(
            MediaRunner(
                configured_agent(config, entries, store, http, usage),
                fetcher.fetch,
                media_reader(config, http),
                config.stt.echo,
            )
        )
        cluster: Cluster | None = None
        pace = GlobalPace(1 / telegram.send_rate)

        def sendable(chat_id: int) -> bool | None:
            return True if cluster is None else cluster.leases.sendable(chat_id)

        senders_ = chat_senders(config, bot, metrics, pace, sendable)
        senders = await stack.enter_async_context(senders_)
        outbox = TelegramOutbox(senders, metrics)
        services = await stack.enter_async_context(ServiceSupervisor())
        refusals = Refusals(store, outbox)
        services.start_soon("replies", refusals.run)
        stack.push_async_callback(partial(_send_owed, services, refusals))
        settings = thread_settings(config)
        per_user = config.threads.group_sessions == "per_user"
        siblings = ThreadSiblings() if per_user else None
        threads: Supervisor[ThreadKey] = await stack.enter_async_context(
            Supervisor(
                lambda key: ThreadActor(key, agent, outbox, store, settings, siblings=siblings),
                _thread_supervision(config.threads.idle_ttl),
                on_dead_letter=refusals.on_dead_letter,
            )
        )
        if siblings is not None:
            siblings.bind(threads)
        stack.callback(outbox.stop_waiting)  # first thing when the threads drain

        delivery = Delivery(
            threads,
            store,
            refusals,
            frozenset(telegram.admin_users),
            lambda: [pool.status() for pool in pools],
            queue_wait.accepted,
            limits=limits,
            usage=UsageGate(
                usage,
                store,
                config.limits,
                frozenset(telegram.admin_users),
                settings.reset_commands,
                Activation(config.threads.group_activation),
            ),
        )
        gateway = Gateway(config, store, metrics, pools, threads, outbox, delivery, services)
        if fence is not None:
            await ensure(store, "postgresql")  # the lease tables, once for every replica
            cluster = build(
                config, store, fence, threads, senders, delivery, pace=pace, pools=pools
            )
            gateway.cluster = cluster
            await stack.enter_async_context(cluster.replica.shards)
            stack.callback(cluster.close)
        route = delivery.deliver if cluster is None else cluster.replica.route
        albums = Albums(route, store, config.media.album_window)
        gateway.updates, resequencer, callbacks = await _updates(
            config, bot, store, gateway, albums
        )
        stack.callback(callbacks.close)
        if cluster is not None:
            callbacks.elsewhere = cluster.replica.forward_stop
        metrics.watch(
            gateway.thread_status, gateway.pool_status, gateway.services, gateway.cluster_status
        )
        announce = announce or Path(config.data_dir)
        admin = AdminServer(
            gateway, config.admin, recent, announce=announce, demo=demo, usage=usage
        )
        await admin.start()
        stack.push_async_callback(_shielded(admin.stop))
        gateway.admin_url = admin.url

        if cluster is None:
            await delivery.replay()  # a replica replays each shard as it takes it
        started: dict[str, Callable[[], Awaitable[object]]] = {
            "admin": admin.serve,
        }
        if not store.shared:  # SQLite's write-ahead log (PostgreSQL keeps its own)
            started["checkpoints"] = partial(jobs.checkpoints, store)
        for pool in pools:
            started[f"pool {pool.name}"] = partial(pool.run, jobs.waker(threads))
        started["retention"] = partial(keep_pruned, store, config.store)
        if cluster is None:
            started[gateway.updates.name] = gateway.updates.run
        else:
            polls = isinstance(gateway.updates, Poller)
            started |= cluster.services(gateway.updates.run if polls else None)
            if not polls:
                started[gateway.updates.name] = gateway.updates.run
            stack.push_async_callback(_shielded(cluster.leave))  # after the services stop
        if resequencer is not None:
            started["resequencer"] = resequencer.run
        started[albums.name] = albums.run
        started[callbacks.name] = callbacks.run
        started["commands"] = partial(commands.publish, bot, config)
        for name, service in started.items():
            services.start_soon(name, service)
        stack.push_async_callback(_shielded(partial(services.stop, *started)))
        yield gateway


async def _send_owed(services: ServiceSupervisor, refusals: Refusals) -> None:
    """Once the threads stopped: send the replies still owed (for at most
    ``REPLIES_DRAIN_TIMEOUT``; a stop cut short cuts this short too)."""
    refusals.close()
    await services.stop("replies", grace=REPLIES_DRAIN_TIMEOUT)


REPLIES_DRAIN_TIMEOUT = 5.0
"""Seconds the replies still owed at shutdown may take to be sent."""


def _thread_supervision(idle_ttl: float | None) -> SupervisorConfig:
    """How the thread actors are supervised."""
    return SupervisorConfig(
        stall_timeout=60,
        idle_ttl=idle_ttl,
        drain_timeout=5,
        restart=RestartPolicy(max_restarts=5, within=60, failed_cooldown=60),
    )


def chat_senders(
    config: Config,
    bot: Bot,
    metrics: Metrics,
    pace: GlobalPace,
    sendable: Callable[[int], bool | None],
) -> Supervisor[int]:
    """One ``ChatSender`` actor per chat, sharing the bot's global pace; a chat that is not
    ``sendable`` here (its shard's lease lapsed) has its requests withdrawn."""
    telegram = config.telegram
    return Supervisor(
        lambda chat_id: ChatSender(
            chat_id,
            bot,
            pace,
            metrics,
            telegram.chat_send_interval,
            telegram.group_sends_per_minute,
            telegram.edit_interval,
            streaming=telegram.streaming,
            reactions_on=telegram.reactions,
            sendable=sendable,
        ),
        SupervisorConfig(
            stall_timeout=600, idle_ttl=sender_idle_ttl(config.threads.idle_ttl), drain_timeout=5
        ),
    )


SENDER_IDLE_TTL = 300.0
"""The longest a chat's sender stays dormant (its threads may stay longer)."""


def sender_idle_ttl(threads_idle_ttl: float) -> float:
    """Seconds a chat's dormant sender stays: as long as the chat's threads (their
    ``threads.idle_ttl``), at most ``SENDER_IDLE_TTL``, and never less than the chat pace's
    minute (``pacing.WINDOW``), whose requests a successor would not know of (a group's
    budget). A sender with anything queued, or whose chat a 429 blocks, stays anyway
    (``ChatSender.can_passivate``)."""
    return min(SENDER_IDLE_TTL, max(WINDOW, threads_idle_ttl))


def _shielded(stop: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    """``stop``, run to its end even while the gateway is being cancelled."""

    async def shielded() -> None:
        with anyio.CancelScope(shield=True):
            await stop()

    return shielded


async def _updates(
    config: Config, bot: Bot, store: Store, gateway: Gateway, albums: Albums
) -> tuple[Poller | WebhookServer, Resequencer | None, Callbacks]:
    """Long polling, or the webhook server with its per-thread re-sequencing; either hands
    its messages to ``albums`` (which holds an album's items until it is whole), and button
    presses and stopped drafts to the callback handler."""
    telegram = config.telegram
    delivery = gateway.delivery
    intake = Intake(
        store, telegram, delivery.reply_ignored, gateway.metrics, threads=config.threads
    )
    callbacks = Callbacks(bot, gateway.threads, intake.allows, frozenset(telegram.admin_users))
    intake.controls = callbacks.offer
    if telegram.mode == "webhook":
        resequencer = Resequencer(
            albums.take, telegram.webhook_reorder_window, await store.last_update_id()
        )
        return WebhookServer(bot, telegram, intake, resequencer), resequencer, callbacks
    return Poller(bot, store, telegram, intake, albums.take), None, callbacks


async def serve(config: Config, stop: anyio.Event | None = None) -> None:
    """Run until ``stop`` is set (a graceful stop: the threads drain), or until cancelled."""
    async with open_gateway(config):
        # Everything built so far (aiogram's many models above all) lives as long as the
        # process: keep it out of the collector's full passes, which would otherwise stop the
        # event loop for a quarter of a second at a time.
        gc.freeze()
        await (stop or anyio.Event()).wait()
