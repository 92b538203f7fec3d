"""Reactions, drafts and inline keyboards in the Bot API simulator: ``setMessageReaction``
and ``sendMessageDraft``, recorded, and refused on demand as Telegram does.

A chat in ``SimReactions.forbid`` takes no reactions from the bot (400 ``REACTION_INVALID``,
as a group whose admins turned reactions off answers). Drafts exist in private chats only
(400 ``TEXTDRAFT_PEER_INVALID`` elsewhere); ``SimDrafts.reject`` refuses them everywhere, as
a Bot API older than drafts would. The simulator paces both like sends and edits.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
from aiohttp import web

REACTION_REFUSED = "Bad Request: REACTION_INVALID"
"""What ``setMessageReaction`` answers in a chat of ``SimReactions.forbid``."""
DRAFT_REFUSED = "Bad Request: TEXTDRAFT_PEER_INVALID"
"""What ``sendMessageDraft`` answers outside a private chat, or with ``SimDrafts.reject``."""


def keyboard_of(params: dict[str, Any]) -> dict[str, Any] | None:
    """The inline keyboard a request carries (``reply_markup``), or ``None``."""
    markup = params.get("reply_markup")
    if isinstance(markup, str):
        markup = json.loads(markup) if markup else None
    if not isinstance(markup, dict) or not markup.get("inline_keyboard"):
        return None
    return markup


def _ok() -> web.Response:
    return web.json_response({"ok": True, "result": True})


def _refused(description: str) -> web.Response:
    body = {"ok": False, "error_code": 400, "description": description}
    return web.json_response(body, status=400)


@attrs.define
class SimReactions:
    """The bot's reactions to users' messages."""

    forbid: set[int] = attrs.Factory(set)
    """Chats that refuse the bot's reactions."""
    requests: int = 0
    """``setMessageReaction`` requests that were not flooded, refused ones included."""
    by_message: dict[tuple[int, int], list[list[str]]] = attrs.Factory(dict)
    """Every accepted reaction by (chat, message), in order (``[]``: cleared)."""

    def record(self, params: dict[str, Any]) -> web.Response:
        chat_id, message_id = int(params["chat_id"]), int(params["message_id"])
        self.requests += 1
        if chat_id in self.forbid:
            return _refused(REACTION_REFUSED)
        reaction = params.get("reaction") or "[]"
        kinds = json.loads(reaction) if isinstance(reaction, str) else reaction
        emoji = [str(kind["emoji"]) for kind in kinds if kind.get("type") == "emoji"]
        self.by_message.setdefault((chat_id, message_id), []).append(emoji)
        return _ok()

    def history(self, chat_id: int, message_id: int) -> list[list[str]]:
        """The reactions set on a message, in order."""
        return self.by_message.get((chat_id, message_id), [])

    def shown(self, chat_id: int, message_id: int) -> list[str]:
        """The bot's reaction a message shows now (``[]``: none)."""
        history = self.history(chat_id, message_id)
        return history[-1] if history else []

    def in_chat(self, chat_id: int) -> int:
        """Accepted reaction requests in a chat."""
        return sum(len(h) for (chat, _), h in self.by_message.items() if chat == chat_id)


@attrs.define
class SimDrafts:
    """The drafts the bot showed in private chats."""

    reject: bool = False
    """Refuse every draft (400)."""
    requests: int = 0
    """``sendMessageDraft`` requests that were not flooded, refused ones included."""
    by_chat: dict[int, dict[int, list[str]]] = attrs.Factory(dict)
    """Each accepted draft's text (as the user sees it), by chat and draft id, in order."""
    options: dict[str, Any] = attrs.Factory(dict)
    """The last accepted draft's ``can_stop`` and ``keep_on_stop``."""

    def record(self, params: dict[str, Any], text: str) -> web.Response:
        """Record a draft whose text renders as ``text`` (the markup checked already)."""
        chat_id, draft_id = int(params["chat_id"]), int(params.get("draft_id") or 0)
        if not draft_id:
            return _refused("Bad Request: draft_id must be non-zero")
        self.by_chat.setdefault(chat_id, {}).setdefault(draft_id, []).append(text)
        self.options = {k: params.get(k) for k in ("can_stop", "keep_on_stop")}
        return _ok()

    def refusal(self, chat_id: int) -> web.Response | None:
        """The 400 for a draft in ``chat_id``, or ``None`` if it may be shown."""
        self.requests += 1
        return _refused(DRAFT_REFUSED) if self.reject or chat_id < 0 else None

    def texts(self, chat_id: int, draft_id: int | None = None) -> list[str]:
        """The draft texts shown in a chat (of one draft id, or of all), in order."""
        drafts = self.by_chat.get(chat_id, {})
        if draft_id is not None:
            return list(drafts.get(draft_id, []))
        return [text for texts in drafts.values() for text in texts]
