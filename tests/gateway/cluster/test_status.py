"""``gateway.cluster.status``: the cluster's records, as ``threadgate status``, ``/status``
and ``/metrics`` show them (hand-built records: the lease manager makes the real ones)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import attrs
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from gateway.cli import main
from gateway.cluster.status import (
    ClusterStatus,
    ReplicaStatus,
    assemble,
    cluster_json,
    ranges,
)
from gateway.config import AdminConfig
from gateway.demo.model_sim import serve_in_thread
from gateway.ops.admin import AdminServer
from gateway.ops.metrics import Metrics
from gateway.ops.status_view import render
from tests.gateway.ops.browser import Browser, headless_chromium
from tests.gateway.ops.test_admin import Unhealthy


@pytest.fixture
def anyio_backend() -> str:
    """psycopg's AsyncConnection and aiohttp run on asyncio (``tests/gateway/cluster`` may
    run the leases on trio too)."""
    return "asyncio"


LONG = "replica-eu-west-1a-7f3c9d2e"
"""A replica id as long as a generated one with a host name in it."""

CLUSTER = ClusterStatus(
    replicas=(
        ReplicaStatus(LONG, True, (*range(100), 130, 131, 140), 12, 0.4, True),
        ReplicaStatus("b", True, tuple(range(100, 128)), 3, 1.25, False),
        ReplicaStatus("c", False, (), None, 31.0, False),
    ),
    replica_id="b",
)


def test_the_records_count_what_is_held_and_what_waits_for_a_taker() -> None:
    assert CLUSTER.live == 2
    assert CLUSTER.this is CLUSTER.replicas[1]
    assert [r.shards_held for r in CLUSTER.replicas] == [103, 28, 0]
    assert CLUSTER.unowned == 256 - 131
    gone = attrs.evolve(CLUSTER, replicas=(attrs.evolve(CLUSTER.replicas[0], alive=False),))
    assert gone.unowned == 256  # a dead replica's leases are no one's
    assert gone.this is None
    assert ranges([7, 0, 1, 2, 3, 9, 10]) == "0-3, 7, 9-10"
    assert ranges([]) == "-"


def test_the_status_json_has_every_replica_with_natural_types() -> None:
    body = cluster_json(CLUSTER)
    assert body["replica_id"] == "b"
    assert (body["shards_total"], body["replicas_live"], body["shards_unowned"]) == (256, 2, 125)
    first, this, gone = body["replicas"]
    assert first["shards"][-3:] == [130, 131, 140]
    assert first["shards_held"] == 103
    assert (first["this"], this["this"]) == (False, True)
    assert this == {
        "id": "b",
        "this": True,
        "alive": True,
        "shards_held": 28,
        "shards": list(range(100, 128)),
        "threads_live": 3,
        "heartbeat_age": 1.25,
        "leads_poller": False,
    }
    assert (gone["alive"], gone["threads_live"]) == (False, None)


def drawn(status: dict[str, Any], width: int) -> str:
    console = Console(width=width, file=io.StringIO(), color_system=None)
    console.print(render(status))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(text, str)
    return text


def bare_status(**more: Any) -> dict[str, Any]:
    statistics = {"live": 0}
    return {"at": 0.0, "threads": [], "statistics": statistics, "pools": [], **more}


@pytest.mark.parametrize("width", [40, 80, 160])
def test_the_replicas_table_never_cuts_an_id_nor_leaves_a_shard_out(width: int) -> None:
    text = drawn(bare_status(cluster=cluster_json(CLUSTER)), width)
    assert "Replicas (2 live; 256 shards, 125 unowned)" in " ".join(text.split())
    assert LONG in text
    assert "b (this)" in text
    flowing = " ".join(text.split())
    assert f"shards of {LONG}: 0-99, 130-131, 140" in flowing
    assert "shards of b: 100-127" in flowing
    assert "shards of c" not in flowing  # it holds none
    if width >= 80:
        assert "yes" in text  # who polls


def test_a_single_process_shows_no_replicas() -> None:
    assert "Replicas" not in drawn(bare_status(), 100)


@attrs.define
class Clustered(Unhealthy):
    """An observed gateway of several replicas (or of one: ``cluster`` None)."""

    cluster: ClusterStatus | None = None

    def cluster_status(self) -> ClusterStatus | None:
        return self.cluster


@pytest.mark.anyio
@pytest.mark.parametrize("observed", ["plain", "none", "cluster"])
async def test_status_has_the_cluster_only_with_several_replicas(observed: str) -> None:
    target = {
        "plain": Unhealthy("store_writable", passes=True),
        "none": Clustered("store_writable", passes=True),
        "cluster": Clustered("store_writable", passes=True, cluster=CLUSTER),
    }[observed]
    server = AdminServer(target, AdminConfig(addr="127.0.0.1:0"))
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            status = (await http.get("/status")).json()
    finally:
        await server.stop()
    if observed == "cluster":
        assert status["cluster"] == cluster_json(CLUSTER)
    else:
        assert sorted(status) == ["at", "pools", "statistics", "threads"]  # as it always was


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): float(s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_say_how_many_replicas_live_and_what_each_holds() -> None:
    metrics = Metrics()
    cluster: list[ClusterStatus | None] = [CLUSTER]
    metrics.watch(lambda: None, list, cluster=lambda: cluster[0])
    found = samples(metrics.render().decode())
    assert found[("threadgate_replicas_live", ())] == 2
    assert found[("threadgate_shards_unowned", ())] == 125
    assert found[("threadgate_shards_held", (("replica", LONG),))] == 103
    assert found[("threadgate_shards_held", (("replica", "c"),))] == 0
    assert found[("threadgate_replica_leads_poller", (("replica", LONG),))] == 1
    assert found[("threadgate_replica_leads_poller", (("replica", "b"),))] == 0
    cluster[0] = None
    single = metrics.render().decode()
    assert "threadgate_replicas_live" not in single
    assert "threadgate_shards_held" not in single


def test_threadgate_status_draws_the_replicas(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THREADGATE_CONFIG", "none.toml")
    server = AdminServer(
        Clustered("x", passes=True, cluster=CLUSTER), AdminConfig(addr="127.0.0.1:0")
    )
    with serve_in_thread(server.start, server.stop, "admin"):
        addr = server.url.removeprefix("http://")
        assert main(["status", "--addr", addr]) == 0
        drawn_out = capsys.readouterr().out
        assert main(["status", "--json", "--addr", addr]) == 0
        printed = capsys.readouterr().out
    assert "b (this)" in drawn_out
    assert LONG in drawn_out
    assert '"replicas_live": 2' in printed


def test_assembled_from_the_lease_tables_rows() -> None:
    status = assemble(
        "b",
        now=1000.0,
        ttl=10.0,
        replicas=[("a", 999.0), ("b", 995.5), ("c", 980.0)],
        leases=[
            (0, "a", 1005.0),
            (1, "a", 1005.0),
            (2, "b", 1003.0),
            (3, "c", 990.0),  # expired: no one's
            (4, "", 0.0),
            (5, "d", 1004.0),  # an owner whose row is gone (left, lease not yet expired)
        ],
        poller=("a", 1001.0),
        threads_live=7,
        shards_total=8,
    )
    by_id = {r.id: r for r in status.replicas}
    assert list(by_id) == ["a", "b", "c", "d"]
    assert by_id["a"] == ReplicaStatus("a", True, (0, 1), None, 1.0, True)
    assert by_id["b"] == ReplicaStatus("b", True, (2,), 7, 4.5, False)
    assert by_id["c"] == ReplicaStatus("c", False, (), None, 20.0, False)
    assert by_id["d"] == ReplicaStatus("d", False, (5,), None, None, False)
    assert (status.live, status.unowned, status.this) == (2, 5, by_id["b"])
    expired_poller = assemble("a", 1000.0, 10.0, [("a", 999.0)], [], poller=("a", 999.0))
    assert not expired_poller.replicas[0].leads_poller


@pytest.fixture
def browser() -> Iterator[Browser]:
    """A headless Chromium (skips where none is installed, as the page's own tests)."""
    with headless_chromium() as chromium:
        yield chromium


ROW_TEXTS = """return Array.from(document.querySelectorAll(arguments[0] + ' tbody tr'),
    (row) => Array.from(row.cells, (cell) => cell.textContent));"""
RENDERED = "return Number(document.body.dataset.renders || 0) >= 1"


@pytest.mark.slow
@pytest.mark.anyio
async def test_the_status_page_shows_the_replicas_only_with_several(browser: Browser) -> None:
    observed = Clustered("x", passes=True, cluster=CLUSTER)
    server = AdminServer(observed, AdminConfig(addr="127.0.0.1:0"))
    await server.start()
    try:
        await browser.open(server.url + "/")
        await browser.wait_for(RENDERED)
        assert await browser.run("return document.getElementById('cluster').hidden") is False
        rows = await browser.run(ROW_TEXTS, "#replicas")
        assert rows == [
            [LONG, "alive", "103", "12", "yes", "0.4s", "0-99, 130-131, 140"],
            ["b (this)", "alive", "28", "3", "-", "1.3s", "100-127"],
            ["c", "gone", "0", "-", "-", "31.0s", "-"],
        ]
        count = await browser.run("return document.getElementById('replica-count').textContent")
        assert count == "(2 live; 125 of 256 shards unowned)"
        observed.cluster = None  # the same page, polling a single process
        await browser.wait_for("return document.getElementById('cluster').hidden")
    finally:
        await server.stop()
