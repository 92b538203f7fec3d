"""The status table never cuts a thread key or a key label, at any terminal width; the status
JSON it is drawn from has real types (counts are integers, durations seconds as numbers)."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from rich.console import Console

from gateway.demo.model_sim import LLMSimulator, Reply
from gateway.ops.status_view import render, seconds
from tests.gateway.harness import running_gateway, wait_until

CHAT = -1001234567890
"""A supergroup id as long as real ones."""


def drawn(status: dict[str, Any], width: int) -> str:
    console = Console(width=width, file=io.StringIO(), color_system=None)
    console.print(render(status))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(text, str)
    return text


def story_slowly(messages: list[dict[str, str]]) -> Reply:
    if "story" in messages[-1]["content"]:
        return Reply("a long and slow answer " * 20, chunk_delay=0.2)
    return Reply("hi")


@pytest.fixture(scope="module")
def busy_status(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``/status`` of a real gateway with one thread running, one queued, one idle."""
    import anyio

    async def take() -> dict[str, Any]:
        llm = LLMSimulator(default=story_slowly)
        async with running_gateway(tmp_path_factory.mktemp("status"), llm=llm) as run:
            run.telegram.say("hello", chat_id=CHAT, topic=123456)
            await run.quiet()
            run.telegram.say("tell me a story", chat_id=CHAT, topic=7)
            run.telegram.say("and another", chat_id=CHAT, topic=7)

            def queued() -> bool:
                threads = run.gateway.thread_status().children
                return any(dict(c.detail).get("queued") == 1 for c in threads)

            await wait_until(queued)
            async with httpx.AsyncClient(base_url=run.gateway.admin_url) as http:
                body: dict[str, Any] = (await http.get("/status")).json()
            return body

    return anyio.run(take)


@pytest.mark.slow
def test_the_status_json_has_real_types(busy_status: dict[str, Any]) -> None:
    threads = {thread["key"]: thread for thread in busy_status["threads"]}
    running, idle = threads[f"{CHAT}:7"], threads[f"{CHAT}:123456"]
    assert (running["phase"], running["queued"], running["generation"]) == ("running", 1, 0)
    assert isinstance(running["run_age"], float)
    assert running["run_age"] >= 0
    assert idle["run_age"] is None
    for thread in threads.values():
        assert type(thread["mailbox"]) is int
        assert type(thread["restarts"]) is int
        assert isinstance(thread["last_progress_age"], float)
        assert thread["current_message_age"] is None or isinstance(
            thread["current_message_age"], float
        )
    assert all(type(value) is int for value in busy_status["statistics"].values())
    (pool,) = busy_status["pools"]
    for key in pool["keys"]:
        assert isinstance(key["cooldown_left"], float)
        assert (type(key["requests"]), type(key["failures"])) == (int, int)


@pytest.mark.slow
@pytest.mark.parametrize("width", [60, 80, 120])
def test_keys_are_never_cut_at_any_width(busy_status: dict[str, Any], width: int) -> None:
    text = drawn(busy_status, width)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width
    for thread in busy_status["threads"]:
        assert any(thread["key"] in line for line in lines), (thread["key"], text)
    for key in busy_status["pools"][0]["keys"]:
        assert any(f" {key['label']} " in line for line in lines)
    for name, value in busy_status["statistics"].items():
        assert any(f"{name}: {value}" in line for line in lines), (name, text)
    assert "…" not in text


@pytest.mark.slow
def test_a_wide_terminal_shows_every_column_and_a_narrow_one_drops_the_least_useful(
    busy_status: dict[str, Any],
) -> None:
    wide, narrow = drawn(busy_status, 160), drawn(busy_status, 60)
    for header in ("thread", "state", "phase", "queued", "run age", "mailbox", "last progress"):
        assert header in wide
    for kept in ("thread", "state", "phase", "queued"):
        assert kept in narrow
    assert "last progress" not in narrow
    assert "mailbox" not in narrow


def test_a_key_longer_than_the_terminal_folds_but_is_whole() -> None:
    key = "-100" + "9" * 70
    status = {
        "threads": [
            {"key": key, "state": "idle", "mailbox": 0, "restarts": 0, "last_progress_age": 1.0}
        ],
        "pools": [],
        "statistics": {"live": 1},
    }
    text = drawn(status, 40)
    first_cells = [line.split("│")[1].strip() for line in text.splitlines() if line[0] == "│"]
    assert "".join(first_cells) == key, text


def test_durations_read_as_seconds_minutes_hours() -> None:
    assert [seconds(v) for v in (None, 0.04, 59.96, 150, 7200)] == [
        "-",
        "0.0s",
        "60.0s",
        "2.5m",
        "2.0h",
    ]


@pytest.mark.slow
def test_the_status_has_a_short_usage_section(busy_status: dict[str, Any]) -> None:
    usage = busy_status["usage"]
    assert usage["today"]["totals"]["runs"] >= 1, "the idle thread's answer was counted"
    assert usage["today"]["users_total"] == len(usage["today"]["users"]) == 1
    text = drawn(busy_status, 80)
    assert "Usage (UTC; ~ estimated)" in text
    assert any(
        line.split("│")[1].strip() == "today: scripted"
        for line in text.splitlines()[1:]
        if line.startswith("│")
    ), text


def totals(tokens: int, estimated: int) -> dict[str, int]:
    return {
        "messages": 3,
        "prompt_tokens": tokens - 10,
        "completion_tokens": 10,
        "tokens": tokens,
        "estimated_tokens": estimated,
        "runs": 2,
    }


@pytest.mark.parametrize("width", [40, 100])
def test_usage_marks_estimates_and_fits_the_terminal(width: int) -> None:
    model = {"model": "a-model-with-a-long-name", **totals(1234, 1234)}
    status = {
        "threads": [],
        "pools": [],
        "statistics": {},
        "usage": {
            "today": {
                "totals": totals(1234, 1234),
                "models": [model],
                "users": [{"user_id": 42, **totals(1234, 1234)}],
                "users_total": 12,
            },
            "month": {"totals": totals(98765, 0), "models": [model]},
        },
    }
    text = drawn(status, width)
    assert max(len(line) for line in text.splitlines()) <= width
    assert "~1,234" in text
    assert "98,765" in text
    assert "~98,765" not in text
    assert "a-model-with-a-long-name" in text.replace("\n", "").replace("│", "").replace(" ", "")
    assert ("completion" in text) is (width == 100), "the least useful column goes first"
    assert "today: user 42" in text
    assert "today's top 1 of 12 users" in " ".join(text.split()), "the title wraps, whole"
