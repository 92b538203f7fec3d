"""Admission: who may talk to the agent under each ``telegram.dm_policy``, and the code a
stranger gets in a private chat under ``pairing`` (never in the inbox, never in the log)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from aiogram.types import Update

from actors.thread.records import ThreadKey
from gateway.config import TelegramConfig
from gateway.demo.botapi_sim import BotAPISimulator
from gateway.ops.metrics import Metrics
from gateway.store.pairing import ALPHABET, REPLY_INTERVAL, VALIDITY, Pairings
from gateway.store.sqlite import Store
from gateway.telegram.intake import Intake
from gateway.telegram.pairing import Admission
from gateway.telegram.routing import Ignored
from tests.gateway.logs import captured_logs

pytestmark = pytest.mark.anyio
T0 = 1_800_000_000.0
GROUP = -100
CODE = re.compile(f"`([{ALPHABET}]{{8}})`")
simulator = BotAPISimulator()  # only to build updates as Telegram would


def dm(user: int, text: str = "hello") -> Update:
    return Update.model_validate(simulator.make_update(text, chat_id=user, user_id=user))


def in_group(user: int, chat: int = GROUP) -> Update:
    raw: dict[str, Any] = simulator.make_update("hello", chat_id=chat, user_id=user, forum=False)
    return Update.model_validate(raw)


@attrs.define
class Clock:
    now: float = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = Store(tmp_path / "threadgate.sqlite3")
    yield opened
    opened.close()


def admission(store: Store, clock: Clock | None = None, **telegram: Any) -> Admission:
    return Admission(store, TelegramConfig(**telegram), clock or Clock())


async def approve(store: Store, user: int) -> None:
    pairings = Pairings(store)
    issued = await pairings.issue(user, user, f"user{user}", T0)
    await pairings.approve(issued.code, T0)


async def test_allowlist_is_todays_behaviour_and_ignores_approvals(store: Store) -> None:
    everyone = admission(store)
    assert await everyone.check(dm(8)) is None
    assert await everyone.check(in_group(8)) is None
    listed = admission(store, allowed_users=(7,))
    assert await listed.check(dm(7)) is None
    await approve(store, 8)
    refused = await listed.check(dm(8))
    assert isinstance(refused, Ignored)
    assert refused.reason == "user 8 is not allowed in 8"
    assert not refused.reply, "no code under allowlist"
    chats = admission(store, allowed_chats=(GROUP,))
    refused = await chats.check(dm(7))
    assert isinstance(refused, Ignored)
    assert refused.reason == "chat 7 is not allowed", "allowed_chats applies to DMs here"


async def test_a_stranger_in_a_private_chat_gets_a_code_and_how_to_be_admitted(
    store: Store,
) -> None:
    clock = Clock()
    gate = admission(store, clock, dm_policy="pairing", allowed_users=(7,))
    assert await gate.check(dm(7)) is None
    update = dm(8)
    refused = await gate.check(update)
    assert isinstance(refused, Ignored)
    assert update.message is not None
    assert (refused.key, refused.message_id) == (ThreadKey(8), update.message.message_id)
    match = CODE.search(refused.reply)
    assert match is not None, refused.reply
    code = match.group(1)
    assert f"Ask the operator to run: `threadgate pairing approve {code}`" in refused.reply
    assert "valid for 60 min" in refused.reply
    assert code not in refused.reason
    assert "user 8 (user8) is not paired" in refused.reason
    [pending] = await Pairings(store).pending(T0)
    assert (pending.code, pending.user_id, pending.chat_id, pending.name) == (code, 8, 8, "user8")

    clock.now += REPLY_INTERVAL / 2
    quiet = await gate.check(dm(8))
    assert isinstance(quiet, Ignored)
    assert (quiet.reply, quiet.reason) == ("", "user 8 is not paired (code sent already)")
    clock.now = T0 + REPLY_INTERVAL
    again = await gate.check(dm(8))
    assert isinstance(again, Ignored)
    assert f"`{code}`" in again.reply, "the live code, repeated"
    assert "valid for 59 min" in again.reply

    await Pairings(store).approve(code, clock.now)
    assert await gate.check(dm(8)) is None
    assert await gate.check(in_group(8)) is None, "approved users count in groups too"
    assert await gate.admits(8, GROUP)
    await Pairings(store).revoke(8)
    assert isinstance(await gate.check(in_group(8)), Ignored)
    assert not await gate.admits(8, 8)


async def test_under_pairing_an_empty_allowlist_admits_approved_users_only(store: Store) -> None:
    gate = admission(store, dm_policy="pairing", admin_users=(3,))
    assert await gate.check(dm(3)) is None, "admins need no pairing"
    assert await gate.check(in_group(3)) is None
    listed = admission(store, admin_users=(3,), allowed_users=(7,))
    assert isinstance(await listed.check(dm(3)), Ignored), "allowlist is as it was"
    refused = await gate.check(in_group(9))
    assert isinstance(refused, Ignored)
    assert (refused.reason, refused.reply) == (f"user 9 is not allowed in {GROUP}", "")
    assert await Pairings(store).pending(T0) == [], "no code in a group"
    assert CODE.search((await gate.check(dm(9)) or Ignored(0, "")).reply)
    await approve(store, 10)
    assert await gate.check(in_group(10)) is None
    assert await gate.check(dm(10)) is None


async def test_under_pairing_allowed_chats_decides_groups_and_the_pairing_private_chats(
    store: Store,
) -> None:
    gate = admission(store, dm_policy="pairing", allowed_users=(7,), allowed_chats=(GROUP,))
    assert await gate.check(dm(7)) is None
    assert await gate.check(in_group(7)) is None
    refused = await gate.check(in_group(7, chat=-200))
    assert isinstance(refused, Ignored)
    assert refused.reason == "chat -200 is not allowed"
    assert CODE.search((await gate.check(dm(8)) or Ignored(0, "")).reply)


async def test_open_admits_anyone_in_private_chats_and_groups_keep_their_allowlist(
    store: Store,
) -> None:
    gate = admission(store, dm_policy="open", allowed_users=(7,), allowed_chats=(GROUP,))
    assert await gate.check(dm(8)) is None
    assert await gate.admits(8, 8)
    assert await gate.check(in_group(7)) is None
    refused = await gate.check(in_group(8))
    assert isinstance(refused, Ignored)
    assert refused.reason == f"user 8 is not allowed in {GROUP}"
    assert isinstance(await gate.check(in_group(7, chat=-200)), Ignored)
    assert await Pairings(store).pending(T0) == []


async def test_a_code_expires_after_an_hour_and_the_stranger_then_gets_a_new_one(
    store: Store,
) -> None:
    clock = Clock()
    gate = admission(store, clock, dm_policy="pairing")
    first = CODE.search((await gate.check(dm(8)) or Ignored(0, "")).reply)
    clock.now += VALIDITY
    second = CODE.search((await gate.check(dm(8)) or Ignored(0, "")).reply)
    assert first is not None
    assert second is not None
    assert first.group(1) != second.group(1)
    assert [p.code for p in await Pairings(store).pending(clock.now)] == [second.group(1)]


async def test_intake_writes_no_strangers_message_to_the_inbox_and_logs_no_code(
    tmp_path: Path, store: Store
) -> None:
    replies: list[Ignored] = []
    config = TelegramConfig(dm_policy="pairing", allowed_users=(7,))
    intake = Intake(store, config, replies.append, Metrics())
    with captured_logs("DEBUG") as lines:
        assert await intake.take(dm(8)) is None
        assert await intake.take(dm(8)) is None
        assert await intake.take(in_group(8)) is None
        assert await intake.take(dm(7)) is not None
    [reply] = replies
    match = CODE.search(reply.reply)
    assert match is not None
    assert not any(match.group(1) in line for line in lines)
    assert sum("user 8 (user8) is not paired; sent a new pairing code" in ln for ln in lines) == 1
    assert sum("user 8 is not paired (code sent already)" in line for line in lines) == 1
    assert sum(f"user 8 is not allowed in {GROUP}" in line for line in lines) == 1
    with sqlite3.connect(tmp_path / "threadgate.sqlite3") as db:
        chats = [chat for (chat,) in db.execute("SELECT chat_id FROM inbox")]
    assert chats == [7]


async def test_a_name_utf8_cannot_carry_is_stored_as_it_can(store: Store) -> None:
    raw = simulator.make_update("hi", chat_id=8, user_id=8)
    raw["message"]["from"].update(first_name="half \ud83d\x00", username="eve")
    refused = await admission(store, dm_policy="pairing").check(Update.model_validate(raw))
    assert isinstance(refused, Ignored)
    assert CODE.search(refused.reply)
    [pending] = await Pairings(store).pending(T0)
    assert pending.name == "half ? (@eve)"
