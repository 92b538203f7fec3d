"""``/metrics`` of a real gateway between the simulators: the exposition content type, counts
that only grow as counters, the three latency histograms observed, and every metric the
shipped Grafana dashboard queries present in the scrape."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from gateway.demo.model_sim import LLMSimulator, Reply
from tests.gateway.harness import KEYS, TOKEN, running_gateway

DASHBOARD = Path(__file__).parents[3] / "docs" / "grafana-dashboard.json"


def slow_first_token(messages: list[dict[str, str]]) -> Reply:
    return Reply("one two three four", chunk_delay=0.2, first_delay=0.3)


@pytest.fixture(scope="module")
def scrape(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """The content type and text of ``/metrics`` after two messages in one thread (the
    second queued behind the first) were answered."""
    import anyio

    async def take() -> tuple[str, str]:
        llm = LLMSimulator(default=slow_first_token)
        async with running_gateway(tmp_path_factory.mktemp("metrics"), llm=llm) as run:
            run.telegram.say("first", chat_id=-1001, topic=3)
            run.telegram.say("second", chat_id=-1001, topic=3)
            await run.quiet()
            async with httpx.AsyncClient(base_url=run.gateway.admin_url) as http:
                response = await http.get("/metrics")
        return response.headers["content-type"], response.text

    return anyio.run(take)


def families(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def sample(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for each in family.samples:
            if each.name == name and all(each.labels.get(k) == v for k, v in labels.items()):
                return float(each.value)
    raise AssertionError(f"no sample {name} {labels}")


@pytest.mark.slow
def test_metrics_have_the_exposition_content_type_and_no_secret(scrape: tuple[str, str]) -> None:
    content_type, text = scrape
    assert content_type == CONTENT_TYPE_LATEST
    assert 'key="key-1"' in text
    assert not any(secret in text for secret in (*KEYS, TOKEN))


@pytest.mark.slow
def test_counts_that_only_grow_are_counters_and_levels_are_gauges(
    scrape: tuple[str, str],
) -> None:
    found = families(scrape[1])
    for counter in (
        "threadgate_thread_restarts",
        "threadgate_thread_stalls",
        "threadgate_dead_letters",
        "threadgate_passivations",
        "threadgate_threads_spawned",
        "threadgate_thread_failures",
        "threadgate_mailbox_deliveries",
        "threadgate_service_restarts",
        "threadgate_key_requests",
        "threadgate_key_failures",
        "threadgate_messages_in",
        "threadgate_outcomes",
        "threadgate_tokens",
        "threadgate_model_runs",
    ):
        assert found[counter].type == "counter", counter
    for gauge in ("threadgate_threads_live", "threadgate_mailbox_depth", "threadgate_pool_keys"):
        assert found[gauge].type == "gauge", gauge
    text = scrape[1]
    assert sample(text, "threadgate_threads_spawned_total") == 1
    assert sample(text, "threadgate_mailbox_deliveries_total") >= 2  # and the run reports
    assert sample(text, "threadgate_service_restarts_total", service="poller") == 0
    requests = sum(
        sample(text, "threadgate_key_requests_total", pool="llm", key=key)
        for key in ("key-1", "key-2")
    )
    assert requests == 2
    # Each run's usage, as the simulator reported it (asked with stream_options), by model.
    assert sample(text, "threadgate_model_runs_total", model="scripted") == 2
    assert sample(text, "threadgate_tokens_total", model="scripted", kind="completion") == 8


@pytest.mark.slow
def test_queue_wait_first_token_and_run_duration_are_observed(scrape: tuple[str, str]) -> None:
    text = scrape[1]
    assert sample(text, "threadgate_queue_wait_seconds_count") == 2, "each message once"
    # The second message waited for the whole first run (0.3 + 3 x 0.2 s at least).
    assert sample(text, "threadgate_queue_wait_seconds_sum") >= 0.9
    assert sample(text, "threadgate_first_token_seconds_count") == 2
    assert sample(text, "threadgate_first_token_seconds_bucket", le="0.25") == 0, "it thinks"
    assert sample(text, "threadgate_first_token_seconds_bucket", le="+Inf") == 2
    assert sample(text, "threadgate_run_seconds_count") == 2
    assert sample(text, "threadgate_run_seconds_sum") >= 1.5


def dashboard_expressions() -> Iterator[str]:
    def walk(node: object) -> Iterator[str]:
        if isinstance(node, dict):
            for name, value in node.items():
                if name in ("expr", "definition") and isinstance(value, str):
                    yield value
                else:
                    yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)

    return walk(json.loads(DASHBOARD.read_text()))


@pytest.mark.slow
def test_every_metric_the_dashboard_queries_is_in_a_real_scrape(scrape: tuple[str, str]) -> None:
    scraped = {each.name for family in families(scrape[1]).values() for each in family.samples}
    expressions = list(dashboard_expressions())
    assert len(expressions) >= 15
    named = {
        name for expr in expressions for name in re.findall(r"\bthreadgate_[a-z0-9_]+\b", expr)
    }
    assert {"threadgate_queue_wait_seconds_bucket", "threadgate_dead_letters_total"} <= named
    assert named - scraped == set(), "the dashboard queries metrics the gateway does not have"
    assert all("threadgate_" in expr for expr in expressions), "each names one of ours"
