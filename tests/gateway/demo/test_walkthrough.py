from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import load
from gateway.demo import run_demo

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_demo_walkthrough_shows_the_story_and_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    await run_demo(load(None, {}), interactive=False)
    out = capsys.readouterr().out
    assert "[topic 2] bot → ⏳ Still working on the previous message" in out
    topic_2 = [line for line in out.splitlines() if "[topic 2]" in line and "✎" not in line]
    assert any("New session started. 2 earlier messages discarded" in t for t in topic_2), topic_2
    assert "All API keys are used up right now" in out
    assert "You said: are you still there?" in out
    assert "Credential pool" in out
    assert "dead_letters: 0" in out
