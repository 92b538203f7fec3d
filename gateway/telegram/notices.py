"""One message of a notice to one chat, as the chat's sender makes it (``ChatSender``).

Rules: a notice has nobody waiting, so its failure is only logged; a 429 hands the error
back (the notice waits for its turn again); rejected markup sends the same visible text
without formatting on the next turn (``NoticeSent.PLAIN``).
"""

from __future__ import annotations

import enum

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramRetryAfter
from loguru import logger

from gateway.telegram import calls
from gateway.telegram.markup import pieces
from gateway.telegram.sender_messages import Notice, NoticePiece


class NoticeSent(enum.Enum):
    """What became of one notice piece (a 429 is returned as the error itself)."""

    SENT = "sent"
    """It went out."""
    PLAIN = "plain"
    """Its markup was rejected: send it again as plain text."""
    LOST = "lost"
    """It failed for good (logged)."""


def render(notice: Notice) -> list[NoticePiece]:
    """The messages ``notice`` is sent as (none, with a log line, if it cannot be rendered)."""
    try:
        parts = pieces(notice.text)
    except Exception as error:  # noqa: BLE001 - a bug in rendering: logged
        logger.opt(exception=error).error("notice to {key} not rendered", key=notice.key)
        return []
    return [
        NoticePiece(
            notice.key, piece, notice.reply_to if index == 0 else None, fenced=notice.fenced
        )
        for index, piece in enumerate(parts)
    ]


async def send(bot: Bot, chat_id: int, notice: NoticePiece) -> NoticeSent | TelegramRetryAfter:
    """Send ``notice``; never raises (but for cancellation)."""
    try:
        await calls.send(
            bot, chat_id, notice.key, notice.piece, notice.reply_to, plain=notice.plain
        )
    except TelegramRetryAfter as error:
        return error
    except TelegramBadRequest as error:
        if notice.plain or not calls.markup_rejected(error):
            logger.error("notice to {key} not delivered: {e}", key=notice.key, e=error)
            return NoticeSent.LOST
        logger.warning(
            "markup rejected in {key} ({e}); sending plain text", key=notice.key, e=error
        )
        return NoticeSent.PLAIN
    except Exception as error:  # noqa: BLE001 - a notice has nobody waiting: logged
        logger.error("notice to {key} not delivered: {e}", key=notice.key, e=error)
        return NoticeSent.LOST
    return NoticeSent.SENT
