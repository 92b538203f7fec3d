"""Session history, end to end: what the model sees of earlier turns (issue 16, finding 5).

Each turn the user saw answered is in the history once; nothing else is: not a parked
attempt, not a turn cut off or discarded, not a second copy of a turn that ``/retry`` ran
again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from gateway.demo.botapi_sim import BotAPISimulator
from gateway.demo.model_sim import LLMSimulator, Reply
from tests.gateway.harness import KEYS, running_gateway, wait_until

pytestmark = pytest.mark.anyio
CHAT = 5100


def history_of_last_request(llm: LLMSimulator) -> list[tuple[str, str]]:
    """The turns the model was given with the last question (system prompt left out)."""
    _, body = llm.requests[-1]
    messages: list[dict[str, Any]] = body["messages"]
    return [(m["role"], m["content"]) for m in messages[1:]]


async def test_a_parked_turn_is_in_the_history_once_with_its_answer(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as run:
        tg, llm = run.telegram, run.llm
        for key in KEYS:
            llm.script(key, Reply(status=429, retry_after="1"))
        parked = tg.say("remember seven", chat_id=CHAT, forum=False)
        await wait_until(lambda: any("API key" in m.text for m in run.replies_to(parked)))
        await wait_until(lambda: run.outcome(parked) == "answered")
        then = tg.say("what was it?", chat_id=CHAT, forum=False)
        await wait_until(lambda: run.outcome(then) == "answered")
        turns = history_of_last_request(llm)
        assert [role for role, _ in turns] == ["user", "assistant", "user"], turns
        assert turns[0] == ("user", "remember seven")
        assert not any("[no answer" in text for _, text in turns)


async def test_retry_replaces_the_turn_it_runs_again(tmp_path: Path) -> None:
    async with running_gateway(tmp_path) as run:
        tg, llm = run.telegram, run.llm
        first = tg.say("tell me a joke", chat_id=CHAT, forum=False)
        await wait_until(lambda: run.outcome(first) == "answered")
        again = tg.say("/retry", chat_id=CHAT, forum=False)
        await wait_until(lambda: run.outcome(again) == "answered")
        assert history_of_last_request(llm) == [("user", "tell me a joke")], "asked afresh"
        then = tg.say("another", chat_id=CHAT, forum=False)
        await wait_until(lambda: run.outcome(then) == "answered")
        turns = history_of_last_request(llm)
        assert [role for role, _ in turns] == ["user", "assistant", "user"], turns


async def test_a_turn_stopped_while_its_answer_is_delivered_is_not_in_the_history(
    tmp_path: Path,
) -> None:
    telegram = BotAPISimulator(edit_delay=3.0)  # the final edit takes a while
    llm = LLMSimulator()
    async with running_gateway(tmp_path, telegram=telegram, llm=llm) as run:
        tg = run.telegram
        for key in KEYS:
            llm.script(key, Reply(" ".join(f"w{i}" for i in range(30)), chunk_delay=0.01))
        asked = tg.say("write thirty words", chat_id=CHAT, forum=False)
        await wait_until(lambda: bool(run.replies_to(asked)))  # the answer's first message
        await anyio.sleep(1.0)  # the model is done; the last edit is under way
        stop = tg.say("/stop", chat_id=CHAT, forum=False)
        await wait_until(lambda: run.outcome(stop) == "answered")
        then = tg.say("and now?", chat_id=CHAT, forum=False)
        await wait_until(lambda: run.outcome(then) == "answered", timeout=30)
        assert run.outcome(asked) == "stopped"
        turns = history_of_last_request(llm)
        assert not any("w29" in text for _, text in turns), turns
        assert "[answer cut off]" in run.replies_to(asked)[0].text
