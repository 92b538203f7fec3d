"""What Telegram accepts as text, as the Bot API simulator checks it: HTML (``parse_mode``)
and length."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import ClassVar


class TelegramHTMLCheck(HTMLParser):
    """Telegram's check, a little stricter: known tags and attributes, properly nested; code
    holds no tags, ``pre`` only a ``code`` (its language), quotes do not nest."""

    TAGS = frozenset(
        {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "pre", "a"}
        | {"tg-spoiler", "span", "blockquote"}
    )
    ATTRIBUTES: ClassVar[dict[str, frozenset[str]]] = {
        "a": frozenset({"href"}),
        "code": frozenset({"class"}),
        "span": frozenset({"class"}),
        "blockquote": frozenset({"expandable"}),
    }

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.ok = True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        given = dict(attrs)
        self.ok = (
            self.ok
            and tag in self.TAGS
            and set(given) <= self.ATTRIBUTES.get(tag, frozenset())
            and (tag != "a" or bool(given.get("href")))
            and (tag != "span" or given.get("class") == "tg-spoiler")
            and (tag != "blockquote" or "blockquote" not in self.stack)
            and (not self.stack or self.stack[-1] != "code")
            and (not self.stack or self.stack[-1] != "pre" or tag == "code")
        )
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        self.ok = self.ok and bool(self.stack) and self.stack.pop() == tag

    def close(self) -> None:
        super().close()
        self.ok = self.ok and not self.stack


def utf16_length(text: str) -> int:
    """How Telegram measures a text: in UTF-16 code units (an emoji counts 2)."""
    return sum(2 if ord(char) > 0xFFFF else 1 for char in text)
