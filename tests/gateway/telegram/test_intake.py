"""Intake: text is sanitized before anything encodes it, and stored as sanitized."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from aiogram.types import Update
from hypothesis import example, given
from hypothesis import strategies as st

from actors.thread.messages import Command, UserMessage
from gateway.config import TelegramConfig
from gateway.demo.botapi_sim import BotAPISimulator
from gateway.ops.metrics import Metrics
from gateway.store.sqlite import Store
from gateway.telegram.intake import Intake, sanitize

pytestmark = pytest.mark.anyio
any_code_point = st.integers(0, 0x10FFFF).map(chr)  # surrogates and NUL included


@given(st.lists(any_code_point, max_size=30).map("".join))
@example("half \ud83d of an emoji")
@example("\ud83d\ude00 a pair in two halves")
@example("a NUL \x00 here")
def test_sanitized_text_is_always_utf8_and_otherwise_unchanged(text: str) -> None:
    clean = sanitize(text)
    clean.encode("utf-8")  # never raises
    assert "\x00" not in clean
    fine = text.replace("\x00", "")
    try:
        fine.encode("utf-8")
    except UnicodeEncodeError:
        assert "\ufffd" in clean or len(clean) < len(fine)  # a half replaced, or a pair joined
    else:
        assert clean == fine


def test_a_pair_of_halves_becomes_the_character_and_a_lone_half_the_replacement() -> None:
    assert sanitize("\ud83d\ude00!") == "\U0001f600!"
    assert sanitize("half \ud83d of an emoji") == "half \ufffd of an emoji"
    assert sanitize("\udc80") == "\ufffd"


async def test_texts_captions_and_command_arguments_are_stored_sanitized(tmp_path: Path) -> None:
    simulator = BotAPISimulator()  # only to build updates as Telegram would
    store = Store(tmp_path / "threadgate.sqlite3")
    intake = Intake(store, TelegramConfig(), lambda ignored: None, Metrics())
    try:
        taken = []
        for text, caption in (
            ("half \ud83d of an emoji\x00", False),
            ("a \udc80 caption", True),
            ("/cc the other \udc80 half", False),
        ):
            raw = simulator.make_update(text, chat_id=42, forum=False, caption=caption)
            routed = await intake.take(Update.model_validate(raw))
            assert routed is not None
            taken.append(routed.message)
    finally:
        store.close()
    first, second, third = taken
    assert isinstance(first, UserMessage)
    assert first.text == "half \ufffd of an emoji"
    assert isinstance(second, UserMessage)
    assert second.text == "a \ufffd caption"
    assert isinstance(third, Command)
    assert third.args == "the other \ufffd half"
    with sqlite3.connect(tmp_path / "threadgate.sqlite3") as db:
        payloads = [json.loads(p) for (p,) in db.execute("SELECT payload FROM inbox")]
    assert [p.get("text", p.get("args")) for p in payloads] == [
        "half \ufffd of an emoji",
        "a \ufffd caption",
        "the other \ufffd half",
    ]
