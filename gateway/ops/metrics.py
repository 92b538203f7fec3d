"""Prometheus metrics: counters bumped where things happen, gauges read from snapshots."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import attrs
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from actors import SupervisorStatus
from providers.pool import KeyState, PoolStatus


class _Snapshots(Collector):
    def __init__(
        self,
        threads: Callable[[], SupervisorStatus | None],
        pools: Callable[[], list[PoolStatus]],
    ) -> None:
        self._threads = threads
        self._pools = pools

    def collect(self) -> Iterator[GaugeMetricFamily]:
        status = self._threads()
        if status is not None:
            stats = status.statistics
            for name, value, text in (
                ("threadgate_threads_live", stats.live, "Thread actors spawned and not passivated"),
                ("threadgate_thread_restarts", stats.restarts, "Thread actor restarts"),
                (
                    "threadgate_thread_stalls",
                    stats.stalls,
                    "Thread actors cancelled by the watchdog",
                ),
                ("threadgate_dead_letters", stats.dead_letters, "Messages given up by the runtime"),
                ("threadgate_passivations", stats.passivations, "Idle thread actors passivated"),
            ):
                yield GaugeMetricFamily(name, text, value=value)
            depth = sum(c.mailbox_depth for c in status.children)
            yield GaugeMetricFamily(
                "threadgate_mailbox_depth", "Messages queued in all mailboxes", value=depth
            )
        keys = GaugeMetricFamily(
            "threadgate_pool_keys", "API keys by state", labels=["pool", "state"]
        )
        for pool in self._pools():
            for state in KeyState:
                count = sum(k.state is state for k in pool.keys)
                keys.add_metric([pool.name, state.value], count)
        yield keys


@attrs.define(eq=False)
class Metrics:
    """The gateway's metrics, in a registry of its own."""

    registry: CollectorRegistry = attrs.field(factory=CollectorRegistry)
    messages_in: Counter = attrs.field(init=False)
    messages_out: Counter = attrs.field(init=False)
    telegram_429: Counter = attrs.field(init=False)
    run_latency: Histogram = attrs.field(init=False)
    outcomes: Counter = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.messages_in = Counter(
            "threadgate_messages_in", "Updates routed to threads", registry=self.registry
        )
        self.messages_out = Counter(
            "threadgate_messages_out", "Messages sent to Telegram", registry=self.registry
        )
        self.telegram_429 = Counter(
            "threadgate_telegram_429", "Flood-control answers from Telegram", registry=self.registry
        )
        self.outcomes = Counter(
            "threadgate_outcomes",
            "How user messages ended (parked ones end again later)",
            ["outcome"],
            registry=self.registry,
        )
        self.run_latency = Histogram(
            "threadgate_run_seconds",
            "From the start of an answer to its last chunk",
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900),
            registry=self.registry,
        )

    def watch(
        self,
        threads: Callable[[], SupervisorStatus | None],
        pools: Callable[[], list[PoolStatus]],
    ) -> None:
        self.registry.register(_Snapshots(threads, pools))

    def render(self) -> bytes:
        return generate_latest(self.registry)
