"""The command menu Telegram shows when a user types ``/`` (``setMyCommands``), set at start.

Two scopes: private chats (the session commands) and group chats (the same, and
``/activation``). ``/model`` is listed only if ``threads.allowed_models`` allows a switch; each
configured reset skill is listed (a name Telegram would refuse is left out with a log line).
Setting the menu is retried like the other calls at start but never stops the gateway: a
failure is one warning line, and the commands work without the menu.
"""

from __future__ import annotations

import re
from functools import partial

import attrs
from aiogram import Bot
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeUnion,
)
from loguru import logger

from gateway.config import Config
from gateway.telegram.bot import at_start

_NAME = re.compile(r"^[a-z0-9_]{1,32}$")
"""What Telegram takes as a command's name in a menu."""

SESSION = (
    ("new", "Start a new session"),
    ("reset", "Start a new session"),
    ("stop", "Stop the answer and drop queued messages"),
    ("retry", "Run the last message again"),
    ("status", "What this thread is doing"),
)
AFTER_MODEL = (
    ("help", "What the bot understands"),
    ("usage", "Your usage today and this month"),
)
MODEL = ("model", "Switch this session's model")
ACTIVATION = ("activation", "Answer every message or only when addressed (admins)")


@attrs.frozen
class Menu:
    """The commands of one scope."""

    scope: BotCommandScopeUnion
    """Where Telegram shows them."""
    commands: tuple[BotCommand, ...]
    """In the order shown."""


def menus(config: Config) -> tuple[Menu, ...]:
    """The menus for private chats and for groups, from ``config``."""
    listed = [*SESSION]
    if config.threads.allowed_models:
        listed.append(MODEL)
    listed.extend(AFTER_MODEL)
    for skill in config.threads.reset_skills:
        if not _NAME.match(skill):
            logger.warning("reset skill /{name} left out of the command menu", name=skill)
        elif skill not in dict(listed):
            listed.append((skill, f"New session with the {skill} skill"))
    private = tuple(BotCommand(command=name, description=text) for name, text in listed)
    group = (*private, BotCommand(command=ACTIVATION[0], description=ACTIVATION[1]))
    return (
        Menu(BotCommandScopeAllPrivateChats(), private),
        Menu(BotCommandScopeAllGroupChats(), group),
    )


async def publish(bot: Bot, config: Config) -> None:
    """Set the command menus (a one-shot service at start); never raises but for
    cancellation: a menu Telegram did not take is a warning line."""
    set_all = True
    for menu in menus(config):  # each on its own: one refused does not keep the other back
        call = partial(bot.set_my_commands, list(menu.commands), scope=menu.scope)
        scope = str(getattr(menu.scope.type, "value", menu.scope.type))  # all_group_chats
        try:
            await at_start(f"setMyCommands ({scope})", call, config.telegram)
        except Exception as error:  # noqa: BLE001 - the menu is a convenience, never fatal
            set_all = False
            logger.warning(
                "the command menu for {scope} was not set ({kind}: {error}); "
                "the commands work without it",
                scope=scope,
                kind=type(error).__name__,
                error=error,
            )
    if set_all:
        logger.info("command menus set for private chats and groups")
