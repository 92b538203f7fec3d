"""The fake Bot API's checks of what the bot sends, through the real aiogram ``Bot``."""

from __future__ import annotations

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest

from gateway.demo.botapi_sim import BotAPISimulator
from gateway.telegram.markup import pieces

pytestmark = pytest.mark.anyio

CHAT = 4242


async def test_every_piece_of_a_long_answer_is_accepted_and_shows_its_plain_text(
    sim: tuple[BotAPISimulator, Bot],
) -> None:
    telegram, bot = sim
    answer = "\n\n".join(
        [
            "# Plan",
            "> a quote with **bold** and [a link](https://example.org/?a=1&b=2)",
            "- one\n  - nested `code`",
            "```python\n" + "\n".join(f"x{i} = {i} < {i + 1}  # 👍" for i in range(500)) + "\n```",
            "Done, *finally* 🎉 " * 40,
        ]
    )
    got = pieces(answer, suffix=" …\n[answer cut off]")
    assert len(got) >= 3
    for piece in got:
        await bot.send_message(CHAT, piece.html, parse_mode="HTML")
    assert telegram.texts(CHAT) == [piece.plain for piece in got]


@pytest.mark.parametrize("parse_mode", ["HTML", None])
async def test_a_text_over_4096_utf16_units_is_too_long(
    sim: tuple[BotAPISimulator, Bot], parse_mode: str | None
) -> None:
    telegram, bot = sim
    await bot.send_message(CHAT, "<b>" + "😀" * 2048 + "</b>", parse_mode="HTML")
    await bot.send_message(CHAT, "&lt;" * 4096, parse_mode="HTML")  # 4096 once parsed
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(CHAT, "😀" * 2048 + "!", parse_mode=parse_mode)  # 2049 characters
    sent = telegram.sent[-1]
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.edit_message_text("😀" * 2049, chat_id=CHAT, message_id=sent.message_id)
    assert [len(text) for text in telegram.texts(CHAT)] == [2048, 4096]


@pytest.mark.parametrize(
    "markup",
    [
        '<blockquote>q <a href="https://x.org">l</a></blockquote>',
        '<pre><code class="language-py">x &lt; 1</code></pre>',
        "<pre>plain</pre> <code>c</code> <s>s</s> <u>u</u> <tg-spoiler>t</tg-spoiler>",
        '<span class="tg-spoiler">t</span> <blockquote expandable>e</blockquote>',
    ],
)
async def test_markup_telegram_knows_is_accepted(
    sim: tuple[BotAPISimulator, Bot], markup: str
) -> None:
    telegram, bot = sim
    await bot.send_message(CHAT, markup, parse_mode="HTML")
    assert "<" not in telegram.texts(CHAT)[-1].replace("x < 1", "")


@pytest.mark.parametrize(
    "markup",
    [
        "<blockquote>a <blockquote>b</blockquote></blockquote>",
        "<code>a <b>b</b></code>",
        "<pre><b>a</b></pre>",
        '<b class="x">a</b>',
        "<a>no target</a>",
        '<span class="other">a</span>',
        "<h1>a</h1>",
        "<b>open",
        "<b><i>crossed</b></i>",
    ],
)
async def test_markup_telegram_refuses_is_refused(
    sim: tuple[BotAPISimulator, Bot], markup: str
) -> None:
    telegram, bot = sim
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(CHAT, markup, parse_mode="HTML")
    assert telegram.sent == []
