"""The Bot API requests a chat's sender makes, and what Telegram's answers mean to it.

One function per request (no pacing, no retries: the sender keeps those). Text goes as HTML
(``parse_mode="HTML"``), or as the piece's plain text once Telegram rejected its markup. An
edit without ``keyboard`` removes the message's inline keyboard, as Telegram does;
``edit_keyboard`` changes the keyboard alone (an edit whose text and keyboard are both as
shown is refused with "message is not modified", which means it is shown: done).
``perform`` makes an answer's next request (``Step``) and says what came of it
(``Answered``).
"""

from __future__ import annotations

import enum
from typing import Any

import attrs
from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message, ReplyParameters

from actors.thread.records import ThreadKey
from gateway.telegram import stop_button
from gateway.telegram.answer import Answer, Kind, Step
from gateway.telegram.markup import Piece
from gateway.telegram.routing import GENERAL_TOPIC


class Result(enum.Enum):
    """What came of one of an answer's requests."""

    DONE = "done"
    """Shown as asked."""
    FLOODED = "flooded"
    """A 429: the chat waits ``retry_after``; the request goes again."""
    TRANSIENT = "transient"
    """An edit, keyboard change or draft failed for the network or a 5xx: to be retried."""
    UNKNOWN = "unknown"
    """A send failed for the network or a 5xx: it may have arrived; never sent again."""
    PLAIN = "plain"
    """Telegram rejected the markup: the next turn goes as plain text."""
    NO_DRAFTS = "no-drafts"
    """The chat (or the Bot API) refused a draft: the chat streams by edits."""
    REFUSED = "refused"
    """A 400 or 403: the answer fails."""
    BROKEN = "broken"
    """Anything else (a bug, or an answer no rule expects): the answer fails."""


@attrs.frozen
class Answered:
    """What came of a request, and what the sender needs to record it."""

    result: Result
    """What came of it."""
    error: Exception | None = None
    """The error, unless ``DONE``."""
    message_id: int | None = None
    """The message a ``SEND`` made."""


def markup_rejected(error: TelegramBadRequest) -> bool:
    text = str(error).lower()
    return "can't parse entities" in text or "can't find end" in text


def thread_kwargs(key: ThreadKey) -> dict[str, Any]:
    if key.thread_id is None or key.thread_id == GENERAL_TOPIC:
        return {}  # the General topic takes no message_thread_id
    return {"message_thread_id": key.thread_id}


def stop_keyboard(key: ThreadKey, run_id: int) -> InlineKeyboardMarkup:
    """The Stop button of run ``run_id``'s answer in ``key``."""
    data = stop_button.callback_data(key, run_id)
    button = InlineKeyboardButton(text=stop_button.LABEL, callback_data=data)
    return InlineKeyboardMarkup(inline_keyboard=[[button]])


async def send(
    bot: Bot,
    chat_id: int,
    key: ThreadKey,
    piece: Piece,
    reply_to: int | None,
    *,
    plain: bool,
    keyboard: InlineKeyboardMarkup | None = None,
) -> Message:
    """One message: the piece as HTML, or as plain text once its markup was rejected."""
    parameters = (
        ReplyParameters(message_id=reply_to, allow_sending_without_reply=True)
        if reply_to is not None
        else None
    )
    return await bot.send_message(
        chat_id,
        piece.plain if plain else piece.html,
        parse_mode=None if plain else "HTML",
        reply_parameters=parameters,
        reply_markup=keyboard,
        **thread_kwargs(key),
    )


async def edit(
    bot: Bot,
    chat_id: int,
    message_id: int,
    piece: Piece,
    *,
    plain: bool,
    keyboard: InlineKeyboardMarkup | None = None,
) -> None:
    """Edit a message's text; its keyboard becomes ``keyboard`` (none: removed)."""
    await bot.edit_message_text(
        text=piece.plain if plain else piece.html,
        chat_id=chat_id,
        message_id=message_id,
        parse_mode=None if plain else "HTML",
        reply_markup=keyboard,
    )


async def edit_keyboard(
    bot: Bot, chat_id: int, message_id: int, keyboard: InlineKeyboardMarkup | None
) -> None:
    """Set a message's inline keyboard alone (none: removed)."""
    await bot.edit_message_reply_markup(
        chat_id=chat_id, message_id=message_id, reply_markup=keyboard
    )


async def draft(
    bot: Bot, chat_id: int, key: ThreadKey, draft_id: int, piece: Piece, *, plain: bool
) -> None:
    """Show the piece as the private chat's draft ``draft_id``, with Telegram's stop button
    (a press arrives as ``stopped_message_generation``; the draft stays until the bot's
    final message replaces it)."""
    await bot.send_message_draft(
        chat_id,
        draft_id,
        text=piece.plain if plain else piece.html,
        parse_mode=None if plain else "HTML",
        can_stop=True,
        keep_on_stop=True,
        **thread_kwargs(key),
    )


async def perform(bot: Bot, chat_id: int, answer: Answer, step: Step) -> Answered:
    """Make ``step``, ``answer``'s next request; never raises (but for cancellation)."""
    key, kind = answer.key, step.kind
    keyboard = None
    if step.button and answer.run_id is not None:
        keyboard = stop_keyboard(key, answer.run_id)
    try:
        if kind is Kind.SEND:
            reply_to = answer.reply_to if step.index == 0 else None
            message = await send(
                bot, chat_id, key, step.piece, reply_to, plain=answer.plain, keyboard=keyboard
            )
            return Answered(Result.DONE, message_id=message.message_id)
        if kind is Kind.DRAFT:
            assert answer.run_id is not None, "a draft without a run id"
            await draft(bot, chat_id, key, answer.run_id, step.piece, plain=answer.plain)
        elif kind is Kind.EDIT:
            mid = answer.message_ids[step.index]
            await edit(bot, chat_id, mid, step.piece, plain=answer.plain, keyboard=keyboard)
        else:
            await edit_keyboard(bot, chat_id, answer.message_ids[step.index], keyboard)
        return Answered(Result.DONE)
    except TelegramRetryAfter as error:
        return Answered(Result.FLOODED, error)
    except (TelegramNetworkError, TelegramServerError) as error:
        return Answered(Result.UNKNOWN if kind is Kind.SEND else Result.TRANSIENT, error)
    except TelegramAPIError as error:
        return Answered(_refusal(kind, error), error)
    except Exception as error:  # noqa: BLE001 - a bug: the sender logs it, never fatal
        return Answered(Result.BROKEN, error)


def _refusal(kind: Kind, error: TelegramAPIError) -> Result:
    markup = isinstance(error, TelegramBadRequest) and markup_rejected(error)
    if (
        kind is Kind.DRAFT
        and not markup
        and isinstance(error, TelegramBadRequest | TelegramNotFound)
    ):
        return Result.NO_DRAFTS
    if kind in (Kind.EDIT, Kind.MARKUP) and "not modified" in str(error):
        return Result.DONE  # it shows what was asked already
    if markup:
        return Result.PLAIN
    if isinstance(error, TelegramBadRequest | TelegramForbiddenError):
        return Result.REFUSED
    return Result.BROKEN
