"""The fake Bot API's inline keyboards, reactions and drafts, through the real aiogram
``Bot``: kept and refused as Telegram keeps and refuses them."""

from __future__ import annotations

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramRetryAfter
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, ReactionTypeEmoji

from gateway.config import TelegramConfig
from gateway.demo.botapi_sim import BotAPISimulator
from gateway.telegram.bot import make_bot

pytestmark = pytest.mark.anyio
DM, GROUP = 4343, -100500
STOP = InlineKeyboardMarkup(
    inline_keyboard=[[InlineKeyboardButton(text="Stop", callback_data="stop:1")]]
)


async def test_a_keyboard_is_kept_and_an_edit_without_one_removes_it(
    sim: tuple[BotAPISimulator, Bot],
) -> None:
    telegram, bot = sim
    sent = await bot.send_message(DM, "one", reply_markup=STOP)
    assert sent.reply_markup is not None
    assert sent.reply_markup.inline_keyboard[0][0].callback_data == "stop:1"
    [message] = telegram.sent
    assert [b["callback_data"] for b in message.buttons()] == ["stop:1"]
    mid = sent.message_id
    await bot.edit_message_text("two", chat_id=DM, message_id=mid, reply_markup=STOP)
    assert message.buttons(), "an edit with the keyboard keeps it"
    with pytest.raises(TelegramBadRequest, match="not modified"):
        await bot.edit_message_text("two", chat_id=DM, message_id=mid, reply_markup=STOP)
    await bot.edit_message_text("two", chat_id=DM, message_id=mid)
    assert (message.text, message.reply_markup) == ("two", None)
    first, last = message.keyboards
    assert first is not None
    assert first["inline_keyboard"][0][0]["callback_data"] == "stop:1"
    assert last is None


async def test_the_keyboard_is_changed_alone_and_an_unchanged_one_is_not_modified(
    sim: tuple[BotAPISimulator, Bot],
) -> None:
    telegram, bot = sim
    sent = await bot.send_message(DM, "text", reply_markup=STOP)
    await bot.edit_message_reply_markup(chat_id=DM, message_id=sent.message_id)
    [message] = telegram.sent
    assert (message.reply_markup, message.markup_edits, message.edits) == (None, 1, 0)
    with pytest.raises(TelegramBadRequest, match="not modified"):
        await bot.edit_message_reply_markup(chat_id=DM, message_id=sent.message_id)


async def test_reactions_are_recorded_and_a_forbidding_chat_refuses_them(
    sim: tuple[BotAPISimulator, Bot],
) -> None:
    telegram, bot = sim
    await bot.set_message_reaction(GROUP, 10, reaction=[ReactionTypeEmoji(emoji="👀")])
    await bot.set_message_reaction(GROUP, 10, reaction=[])
    assert telegram.reactions.history(GROUP, 10) == [["👀"], []]
    telegram.reactions.forbid.add(GROUP)
    with pytest.raises(TelegramBadRequest, match="REACTION_INVALID"):
        await bot.set_message_reaction(GROUP, 11, reaction=[ReactionTypeEmoji(emoji="👀")])
    assert telegram.reactions.shown(GROUP, 11) == []
    assert telegram.reactions.requests == 3


async def test_drafts_are_recorded_in_private_chats_and_refused_elsewhere(
    sim: tuple[BotAPISimulator, Bot],
) -> None:
    telegram, bot = sim
    await bot.send_message_draft(DM, 7, text="<b>so</b> far", parse_mode="HTML")
    await bot.send_message_draft(DM, 7, text="so far and more")
    assert telegram.drafts.texts(DM, 7) == ["so far", "so far and more"]
    with pytest.raises(TelegramBadRequest, match="TEXTDRAFT_PEER_INVALID"):
        await bot.send_message_draft(GROUP, 7, text="not in a group")
    telegram.drafts.reject = True
    with pytest.raises(TelegramBadRequest):
        await bot.send_message_draft(DM, 8, text="refused")
    assert telegram.drafts.texts(DM, 8) == []
    assert telegram.sent == [], "a draft is not a message"


async def test_drafts_and_reactions_count_against_the_chats_limits() -> None:
    telegram = BotAPISimulator(enforce_limits=True)
    with telegram.serving_in_thread():
        bot = make_bot(TelegramConfig(token="123456:TEST-token", api_base=telegram.base_url))
        try:
            await bot.send_message_draft(DM, 1, text="one")
            with pytest.raises(TelegramRetryAfter):
                await bot.set_message_reaction(DM, 5, reaction=[])
            with pytest.raises(TelegramRetryAfter):
                await bot.send_message(DM, "too soon after the draft")
        finally:
            await bot.session.close()
        assert telegram.violations == 2
