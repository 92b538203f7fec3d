from __future__ import annotations

import io
from pathlib import Path

import attrs
import pytest
from rich.console import Console

from gateway.config import load
from gateway.demo import STARTING, run_demo
from gateway.demo.botapi_sim import BotAPISimulator, SentMessage
from gateway.demo.model_sim import LLMSimulator
from gateway.demo.walkthrough import CHAT, SLOW_WORD, Demo
from gateway.exceptions import ConfigInvalidError

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_demo_walkthrough_shows_the_story_and_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    await run_demo(attrs.evolve(load(None, {}), data_dir=str(tmp_path)), interactive=False)
    out = capsys.readouterr().out
    assert out.startswith(STARTING), "something shows while the demo starts"
    assert out.count("bot ✎ the bot edited its message") == 1, "the marks are explained once"
    log = tmp_path / "demo.log"
    assert f"The gateway's log goes to {log}" in out
    assert f'2. "{SLOW_WORD}" makes a long answer' in out, "the trigger is named"
    assert "threadgate started: polling" in log.read_text()
    for jargon in ("stale run", "dead letter", "generation", "run 2 cancelled"):
        assert jargon not in out, jargon
    assert "[topic 2] bot → ⏳ Still working on the previous message" in out
    topic_2 = [line for line in out.splitlines() if "[topic 2]" in line and "✎" not in line]
    assert any("New session started. 2 earlier messages discarded" in t for t in topic_2), topic_2
    assert "All API keys are used up right now" in out
    assert "You said: are you still there?" in out
    assert "Credential pool" in out
    assert "dead_letters: 0" in out


async def test_a_bot_message_while_the_user_types_goes_above_the_prompt() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, color_system=None, width=100)
    demo = Demo(console, BotAPISimulator(), LLMSimulator())
    sent = SentMessage(CHAT, 2, 1, "Once upon a time", None)
    demo.show("sent", sent)
    assert screen.getvalue() == "[topic 2] bot → Once upon a time\n"
    demo.prompt = "[topic 1]> "
    demo.show("edited", sent)
    # The prompt's line cleared, the message, then the prompt again (what was typed too).
    assert screen.getvalue().endswith("\r\x1b[K[topic 2] bot ✎ Once upon a time\n[topic 1]> ")


async def test_a_demo_that_cannot_start_still_says_where_its_log_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load(None, {})
    config = attrs.evolve(
        config, data_dir=str(tmp_path), agent=attrs.evolve(config.agent, name="no-such-agent")
    )
    with pytest.raises(ConfigInvalidError, match=r"agent\.name"):
        await run_demo(config, interactive=False)
    assert f"The demo has ended. Its log: {tmp_path / 'demo.log'}" in capsys.readouterr().out
