from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from gateway.config import load
from gateway.demo import STARTING, run_demo
from gateway.demo.walkthrough import SLOW_WORD

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
    assert f'2. A long answer ("{SLOW_WORD}" makes it slow)' in out, "the trigger is named"
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
