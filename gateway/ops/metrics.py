"""Prometheus metrics: counters bumped where things happen, snapshots read when scraped.

Rules:

* A count that only grows (restarts, stalls, dead letters, passivations, requests per key,
  ...) is a *counter*, whether it is bumped here or read from a snapshot (then it is yielded
  as a ``CounterMetricFamily``: exposed as ``<name>_total``); a level that goes up and down
  (live threads, mailbox depth, keys by state) is a *gauge*.
* Token usage is counted by model as it is recorded (``count_usage``): tokens by kind
  (prompt, completion) and whether they were estimated, and model calls ("runs").
* Durations are histograms in seconds, observed where the thing happens: the queue wait at
  the start of a run (``gateway.ops.timings``), the time to the first token and the run's
  duration in its streamed answer (``gateway.telegram.outbox``).
* docs/operations.md lists every metric; docs/grafana-dashboard.json charts them (a test
  checks that every metric the dashboard names is in a real scrape).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import attrs
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from actors import SupervisorStatus
from gateway.cluster.status import ClusterStatus
from gateway.services import ServiceStatus
from providers.pool import KeyState, PoolStatus
from providers.usage import Usage

CONTENT_TYPE = CONTENT_TYPE_LATEST
"""What ``/metrics`` answers with: the Prometheus text exposition format."""

SUPERVISOR_COUNTERS = (
    ("threadgate_thread_restarts", "restarts", "Thread actor restarts after a crash or stall"),
    ("threadgate_thread_stalls", "stalls", "Thread actors cancelled by the progress watchdog"),
    ("threadgate_dead_letters", "dead_letters", "Messages given up by the runtime (each answered)"),
    ("threadgate_passivations", "passivations", "Idle thread actors passivated"),
    (
        "threadgate_thread_evictions",
        "evictions",
        "Thread actors forgotten at once because their shard moved to another replica",
    ),
    ("threadgate_threads_spawned", "spawned", "Thread actors spawned (respawns included)"),
    (
        "threadgate_thread_failures",
        "failures",
        "Times a thread was marked failed (restarted too often)",
    ),
    (
        "threadgate_mailbox_deliveries",
        "delivered",
        "Messages accepted into thread mailboxes (users', and the threads' own reports, timers)",
    ),
)
"""Counters read from the thread supervisor's statistics: (metric, statistic, help)."""

LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)
"""Seconds: from a tenth of a second (a local model's first token) to five minutes."""


class _Snapshots(Collector):
    def __init__(
        self,
        threads: Callable[[], SupervisorStatus | None],
        pools: Callable[[], Sequence[PoolStatus]],
        services: Callable[[], Sequence[ServiceStatus]],
        cluster: Callable[[], ClusterStatus | None],
    ) -> None:
        self._threads = threads
        self._pools = pools
        self._services = services
        self._cluster = cluster

    def collect(self) -> Iterator[Metric]:
        status = self._threads()
        if status is not None:
            stats = status.statistics
            for name, statistic, text in SUPERVISOR_COUNTERS:
                yield CounterMetricFamily(name, text, value=getattr(stats, statistic))
            yield GaugeMetricFamily(
                "threadgate_threads_live", "Thread actors spawned and not passivated", stats.live
            )
            yield GaugeMetricFamily(
                "threadgate_mailbox_depth",
                "Messages queued in all mailboxes",
                value=sum(child.mailbox_depth for child in status.children),
            )
        yield from self._keys()
        restarts = CounterMetricFamily(
            "threadgate_service_restarts",
            "Restarts of the gateway's own services after a failure",
            labels=["service"],
        )
        for service in self._services():
            restarts.add_metric([service.name], service.restarts)
        yield restarts
        cluster = self._cluster()
        if cluster is not None:
            yield from _replicas(cluster)

    def _keys(self) -> Iterator[Metric]:
        keys = GaugeMetricFamily(
            "threadgate_pool_keys", "API keys by state", labels=["pool", "state"]
        )
        requests = CounterMetricFamily(
            "threadgate_key_requests", "Requests made with each API key", labels=["pool", "key"]
        )
        failures = CounterMetricFamily(
            "threadgate_key_failures",
            "Requests that failed because of the key (rate limits, quota, rejected)",
            labels=["pool", "key"],
        )
        for pool in self._pools():
            for state in KeyState:
                keys.add_metric([pool.name, state.value], sum(k.state is state for k in pool.keys))
            for key in pool.keys:
                requests.add_metric([pool.name, key.label], key.requests)
                failures.add_metric([pool.name, key.label], key.failures)
        yield from (keys, requests, failures)


def _replicas(cluster: ClusterStatus) -> Iterator[Metric]:
    """The cluster's gauges (only with several replicas: a single process has none)."""
    yield GaugeMetricFamily("threadgate_replicas_live", "Replicas alive", value=cluster.live)
    yield GaugeMetricFamily(
        "threadgate_shards_unowned",
        "Shards no live replica holds (their chats wait for a taker)",
        value=cluster.unowned,
    )
    held = GaugeMetricFamily(
        "threadgate_shards_held", "Shards each replica holds a lease on", labels=["replica"]
    )
    poller = GaugeMetricFamily(
        "threadgate_replica_leads_poller",
        "1 for the replica that polls getUpdates, else 0",
        labels=["replica"],
    )
    for replica in cluster.replicas:
        held.add_metric([replica.id], replica.shards_held)
        poller.add_metric([replica.id], int(replica.leads_poller))
    yield from (held, poller)


@attrs.define(eq=False)
class Metrics:
    """The gateway's metrics, in a registry of its own."""

    registry: CollectorRegistry = attrs.field(factory=CollectorRegistry)
    messages_in: Counter = attrs.field(init=False)
    messages_out: Counter = attrs.field(init=False)
    telegram_429: Counter = attrs.field(init=False)
    outcomes: Counter = attrs.field(init=False)
    run_latency: Histogram = attrs.field(init=False)
    """From the start of a run (its answer opened) to the answer shown in full."""
    first_token: Histogram = attrs.field(init=False)
    """From the start of a run to the first text of its answer."""
    queue_wait: Histogram = attrs.field(init=False)
    """From the thread's acceptance of a message to the start of the run that answers it."""
    tokens: Counter = attrs.field(init=False)
    """Tokens used, by model, kind (prompt, completion) and whether estimated."""
    model_runs: Counter = attrs.field(init=False)
    """Model calls whose usage was recorded, by model."""

    def __attrs_post_init__(self) -> None:
        registry = self.registry
        self.messages_in = Counter(
            "threadgate_messages_in", "Updates routed to threads", registry=registry
        )
        self.messages_out = Counter(
            "threadgate_messages_out", "Messages sent to Telegram", registry=registry
        )
        self.telegram_429 = Counter(
            "threadgate_telegram_429", "Flood-control answers from Telegram", registry=registry
        )
        self.outcomes = Counter(
            "threadgate_outcomes",
            "How user messages ended (parked ones end again later)",
            ["outcome"],
            registry=registry,
        )
        self.run_latency = Histogram(
            "threadgate_run_seconds",
            "From the start of a run to its answer shown in full (answers delivered)",
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900),
            registry=registry,
        )
        self.first_token = Histogram(
            "threadgate_first_token_seconds",
            "From the start of a run to the first text of its answer",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.queue_wait = Histogram(
            "threadgate_queue_wait_seconds",
            "From a message's acceptance into its thread to the start of its first run",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.tokens = Counter(
            "threadgate_tokens",
            "Tokens used by the agents' model calls (estimated: the provider reported none)",
            ["model", "kind", "estimated"],
            registry=registry,
        )
        self.model_runs = Counter(
            "threadgate_model_runs",
            "Model calls whose usage was recorded (a fallback counts for each model it asked)",
            ["model"],
            registry=registry,
        )

    def count_usage(self, usage: Usage) -> None:
        """Count one model call's usage."""
        tokens, estimated = usage.tokens, "true" if usage.tokens.estimated else "false"
        self.tokens.labels(usage.model, "prompt", estimated).inc(tokens.prompt)
        self.tokens.labels(usage.model, "completion", estimated).inc(tokens.completion)
        self.model_runs.labels(usage.model).inc()

    def watch(
        self,
        threads: Callable[[], SupervisorStatus | None],
        pools: Callable[[], Sequence[PoolStatus]],
        services: Callable[[], Sequence[ServiceStatus]] = tuple,
        cluster: Callable[[], ClusterStatus | None] = lambda: None,
    ) -> None:
        """Read these snapshots at every scrape (``cluster``: only with several replicas)."""
        self.registry.register(_Snapshots(threads, pools, services, cluster))

    def render(self) -> bytes:
        return generate_latest(self.registry)
