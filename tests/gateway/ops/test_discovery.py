"""`threadgate status` finds the running gateway (and the local demo) with no flags: the
gateway writes its admin address into the data directory while it listens."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import attrs
import httpx
import pytest
from loguru import logger

from gateway.cli import main
from gateway.config import AdminConfig, Config
from gateway.demo import run_demo
from gateway.ops import discovery
from gateway.ops.admin import AdminServer
from tests.gateway.harness import KEYS, TOKEN, running_gateway, wait_until
from tests.gateway.ops.test_admin import Unhealthy

NOBODY = "127.0.0.1:9"  # admin.addr in these tests: nothing listens there (discard port)


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI's config: the data directory ``tmp_path``, admin.addr where nobody listens."""
    monkeypatch.setenv("THREADGATE_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("THREADGATE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("THREADGATE_ADMIN_ADDR", NOBODY)
    return tmp_path


def status_json(capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any], str]:
    """``threadgate status --json`` with no address given."""
    code = main(["status", "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out) if code == 0 else {}, err


@pytest.mark.slow
@pytest.mark.anyio
async def test_status_finds_a_running_gateway_on_a_random_port_and_the_file_goes_at_stop(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with running_gateway(cli_env) as run:
        entry = discovery.read(cli_env)
        assert entry is not None
        assert entry.url == run.gateway.admin_url
        assert (entry.pid, entry.demo) == (os.getpid(), False)
        text = (cli_env / discovery.FILE_NAME).read_text()
        assert TOKEN not in text
        assert not any(key in text for key in KEYS)
        message = run.telegram.say("hello", chat_id=-1001234567890, topic=7)
        await run.quiet()
        # In a worker thread: the CLI blocks, and the gateway runs on this event loop.
        code, status, err = await anyio.to_thread.run_sync(status_json, capsys)
    assert code == 0, err
    assert [t["key"] for t in status["threads"]] == ["-1001234567890:7"]
    assert run.outcome(message) == "answered"
    assert not (cli_env / discovery.FILE_NAME).exists(), "removed at a clean stop"
    assert not (cli_env / f".admin.json.{os.getpid()}.tmp").exists(), "no temporary file left"


def test_with_no_gateway_status_says_where_it_looked(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = status_json(capsys)
    assert code == 2
    assert f"threadgate: no gateway answered at {NOBODY}" in err
    assert "(address from admin.addr)" in err


def test_a_file_left_by_a_killed_gateway_is_stale(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead = discovery.AdminAddress("127.0.0.1:1", int(gone.stdout), 0.0)
    (cli_env / discovery.FILE_NAME).write_text(json.dumps(attrs.asdict(dead)))
    assert discovery.locate(cli_env, NOBODY) == discovery.Located(NOBODY, "admin.addr", dead)
    code, _, err = status_json(capsys)
    assert code == 2
    assert f"admin.json is stale (process {dead.pid} is gone); trying admin.addr {NOBODY}" in err
    assert f"no gateway answered at {NOBODY}" in err


def test_a_file_that_is_not_the_gateways_is_one_line_naming_it(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (cli_env / discovery.FILE_NAME).write_text("{not json")
    code, _, err = status_json(capsys)
    assert code == 2
    assert err.strip() == (
        f"threadgate: cannot read {cli_env / discovery.FILE_NAME}: not a file the gateway writes"
    )


def test_a_clean_stop_leaves_another_gateways_file_alone(tmp_path: Path) -> None:
    ours = discovery.write(tmp_path, "127.0.0.1:1000")
    theirs = discovery.write(tmp_path, "127.0.0.1:2000")
    discovery.remove(tmp_path, ours)
    assert discovery.read(tmp_path) == theirs
    assert discovery.host_port("::1", 80) == "[::1]:80"


@pytest.mark.slow
@pytest.mark.anyio
async def test_status_finds_the_local_demo_and_the_demo_removes_the_file_when_it_stops(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stop = anyio.Event()
    config = Config(data_dir=str(cli_env), admin=AdminConfig(addr=NOBODY))
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(partial(run_demo, config, interactive=False, stop=stop))
        await wait_until(lambda: discovery.read(cli_env) is not None)
        entry = discovery.read(cli_env)
        assert entry is not None
        assert (entry.pid, entry.demo) == (os.getpid(), True)
        code = await anyio.to_thread.run_sync(main, ["status", "--json"])
        stop.set()
    out, err = capsys.readouterr()
    assert code == 0, err
    # The demo prints to the same stdout; the status is one write, so it is whole.
    status, _ = json.JSONDecoder().raw_decode(out, out.index('{\n  "at"'))
    assert [pool["name"] for pool in status["pools"]] == ["llm"]
    assert not (cli_env / discovery.FILE_NAME).exists(), "removed when the demo stopped"


@pytest.mark.anyio
async def test_a_data_directory_it_cannot_write_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    logged: list[str] = []
    sink = logger.add(logged.append, level="WARNING", format="{message}")
    server = AdminServer(
        Unhealthy("x", passes=True), AdminConfig(addr="127.0.0.1:0"), announce=blocked
    )
    try:
        await server.start()
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await http.get("/status")).status_code == 200
    finally:
        await server.stop()
        logger.remove(sink)
    (line,) = logged
    addr = server.url.removeprefix("http://")
    assert f"cannot write {blocked / 'admin.json'}" in line
    assert f"threadgate status will need --addr {addr}" in line
