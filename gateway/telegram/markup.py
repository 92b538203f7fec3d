"""LLM Markdown to Telegram HTML, always well formed, also for a half-streamed answer.

Only complete pairs become tags (``**bold**``, ``*italic*``/``_italic_``, ``` `code` ```,
fenced code blocks, ``[text](http...)``); an unclosed code fence (an answer still
streaming) is closed at the end; everything else is escaped and shown as written. The
sender falls back to plain text if Telegram rejects the markup anyway.
"""

from __future__ import annotations

import html
import re

import attrs

_FENCE = re.compile(r"```[^\n`]*\n?(.*?)(?:```|\Z)", re.DOTALL)
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
# Contents hold no markers and no tag brackets, so a pair never straddles another tag.
_BOLD = re.compile(r"\*\*(?=[^\s*])([^*\n<>]+?)(?<=[^\s*])\*\*")
_ITALIC = re.compile(r"(?<![\w*])[*_](?=[^\s*_])([^*_\n<>]+?)(?<=[^\s*_])[*_](?![\w*])")
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")


def to_html(markdown: str) -> str:
    """Telegram HTML for ``markdown``."""
    parts: list[str] = []
    position = 0
    for fence in _FENCE.finditer(markdown):
        parts.append(_inline(markdown[position : fence.start()]))
        parts.append(f"<pre>{html.escape(fence.group(1).rstrip(), quote=False)}</pre>")
        position = fence.end()
    parts.append(_inline(markdown[position:]))
    return "".join(parts)


def _inline(text: str) -> str:
    codes: list[str] = []

    def keep_code(match: re.Match[str]) -> str:
        codes.append(f"<code>{html.escape(match.group(1), quote=False)}</code>")
        return f"\x00{len(codes) - 1}\x00"

    text = _INLINE_CODE.sub(keep_code, text.replace("\x00", ""))
    text = html.escape(text, quote=False)
    # The URL is escaped already (with the text); only a quote could end the attribute.
    text = _LINK.sub(
        lambda m: f'<a href="{m.group(2).replace(chr(34), "%22")}">{m.group(1)}</a>', text
    )
    text = _BOLD.sub(r"<b>\1</b>", text)
    text = _ITALIC.sub(r"<i>\1</i>", text)
    return re.sub(r"\x00(\d+)\x00", lambda m: codes[int(m.group(1))], text)


LIMIT = 4096
"""Telegram's longest message, in characters."""


@attrs.frozen
class Piece:
    """One message of a longer text."""

    html: str
    """As Telegram HTML."""
    plain: str
    """As written (the fallback when Telegram rejects the markup)."""


def pieces(text: str, *, limit: int = LIMIT, suffix: str = "") -> list[Piece]:
    """``text`` as the messages it becomes, with ``suffix`` (plain text) after the last."""
    parts = split(text + suffix, limit)
    return [Piece(to_html(part), part) for part in parts]


def split(text: str, limit: int = LIMIT) -> list[str]:
    """Cut ``text`` into pieces of at most ``limit``, at paragraph, line or word boundaries."""
    parts: list[str] = []
    while len(text) > limit:
        cut = split_point(text, limit)
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip("\n")
    if text.strip():
        parts.append(text)
    return parts


def split_point(text: str, limit: int) -> int:
    """Where to cut ``text`` so the first piece is at most ``limit`` (a nice boundary if any)."""
    window = text[:limit]
    for separator in ("\n\n", "\n", " "):
        at = window.rfind(separator)
        if at > limit // 2:
            return at + len(separator)
    return limit
