"""The model's Markdown as Telegram messages: HTML that Telegram accepts, cut to its limit.

``render`` gives the whole text as Telegram HTML (``parse_mode="HTML"``); ``pieces`` gives
the messages a text becomes, each within Telegram's limit of 4096, counted as Telegram
counts: the visible text after entity parsing, in UTF-16 code units (an emoji counts 2).
The layout is ``gateway.telegram.styled`` (markdown-it-py parses). The output uses only
``b``, ``i``, ``s``, ``code``, ``pre``, ``pre><code class="language-…"``, ``a href`` and
``blockquote``, always balanced, and escapes everything else (``&amp;``, ``&lt;``,
``&gt;``), so Telegram never refuses its markup; should it anyway, every piece carries its
plain text to send instead.

Where a text is cut: after the largest chunk that fits, at the last boundary in the second
half of that chunk, between blocks (paragraphs, list items, code blocks) if there is one,
else between lines (in code: between code lines), else between words, else after the last
character that fits. The whitespace at a cut is dropped, except the indentation of the line
that follows it. Whatever is open at a cut (a code block, a quote, bold, a link) is closed at
the end of the piece and opened again, the same, at the start of the next: a code block goes
on as a code block in the same language.
"""

from __future__ import annotations

import html
import itertools
import re
import unicodedata
from bisect import bisect_left, bisect_right

import attrs

from gateway.telegram.styled import Run, Styled, Tag, styled

LIMIT = 4096
"""Telegram's limit on a message's text, in UTF-16 code units after entity parsing."""

_BLOCK, _LINE, _WORD = 3, 2, 1
_WHITESPACE = re.compile(r"[ \t\n]+")


@attrs.frozen
class Piece:
    """One message of an answer."""

    html: str
    """The piece as Telegram HTML (``parse_mode="HTML"``); nothing is left open."""
    plain: str
    """The same piece as plain text (what ``html`` shows): the fallback when Telegram
    rejects the markup. It is as long as ``html``'s visible text."""


def render(text: str) -> str:
    """``text`` (Markdown) as one Telegram HTML string, however long."""
    layout = styled(text)
    return _html(layout.text, layout.runs, 0, len(layout.text))


def to_html(markdown: str) -> str:
    """``render``, kept for the senders until they take ``pieces``."""
    return render(markdown)


def pieces(text: str, *, limit: int = LIMIT, suffix: str = "") -> list[Piece]:
    """The messages ``text`` (Markdown) becomes, in order.

    Each piece's visible text is at most ``limit`` UTF-16 code units (see the module
    docstring for where cuts fall); a piece that would show only whitespace is left out.
    ``suffix`` is plain text (escaped, never cut unless longer than a piece) that ends the
    last piece, after everything open is closed, and counts in its limit. An empty or
    whitespace-only ``text`` gives ``[]``, whatever the suffix.

    Stability as a text grows (a streamed answer sends piece i as message i and then edits
    only its last message): a piece other than the last is decided by the layout
    (``styled.styled``) from where it starts to ``limit`` code units further, a stretch
    that lies inside the text (else it would be the last piece). Hence, with
    ``n = len(pieces(T))``:

    * if ``styled(T + X).extends(styled(T))`` (the longer text's layout begins with the
      shorter's: the same characters in the same elements, the same block boundaries), then
      ``pieces(T + X)[:n - 1] == pieces(T)[:n - 1]``, and piece ``n - 1`` of ``T + X``
      starts where the last piece of ``T`` starts;
    * ``pieces(T, suffix=S)[:n - 1] == pieces(T)[:n - 1]`` for any ``S``.

    The layout extends when what ``X`` adds changes nothing already there, as with most of
    a streamed answer's growth: words added to a paragraph, lines to a code block (closed or
    not), new blocks. Markdown that reaches back breaks it: a closing ``**`` (``**bold``
    shows its stars until then), a ``---`` or ``===`` line under a paragraph (a heading), a
    table's delimiter row (the line above becomes its header), a link reference definition
    (earlier ``[links]`` get a target), and the first visible text after a start that shows
    nothing (shown as written until then). The layout then changes from that block on, and
    so may the pieces from the one that block starts in.

    Raises:
        ValueError: ``limit`` is below 2 (an emoji must fit).
    """
    if limit < 2:
        raise ValueError(f"limit must be at least 2, not {limit}")
    if not text.strip():
        return []
    layout = styled(text)
    full = layout.text + suffix
    runs = layout.runs + ((Run(len(layout.text), len(full), ()),) if suffix else ())
    units = list(itertools.accumulate((2 if ord(c) > 0xFFFF else 1 for c in full), initial=0))
    cuts = _Cuts.of(layout, suffix)
    result: list[Piece] = []
    start = 0
    while start < len(full):
        end = bisect_right(units, units[start] + limit) - 1  # the most that fits
        if end >= len(full):
            cut = resume = len(full)
        else:
            cut, resume = cuts.choose(full, start, end, units, limit, len(layout.text))
        shown = full[start:cut]
        if shown.strip():
            result.append(Piece(_html(full, runs, start, cut), shown))
        start = resume
    return result


@attrs.frozen
class _Cuts:
    """Where a layout may be cut: for each rank, the cut positions at least that good, with
    where the next piece resumes after each."""

    at: dict[int, list[int]]
    """Rank -> sorted cut positions (a piece ends just before)."""
    resume: dict[int, int]
    """Cut position -> where the next piece starts."""

    @classmethod
    def of(cls, layout: Styled, suffix: str) -> _Cuts:
        at: dict[int, list[int]] = {_BLOCK: [], _LINE: [], _WORD: []}
        resume: dict[int, int] = {}
        blocks = sorted(layout.blocks)
        for match in _WHITESPACE.finditer(layout.text):
            first, last = match.span()
            newline = match.group().rfind("\n")
            if bisect_left(blocks, last) > bisect_left(blocks, first):
                rank = _BLOCK
            else:
                rank = _LINE if newline >= 0 else _WORD
            resume[first] = first + newline + 1 if newline >= 0 else last
            for better in range(_WORD, rank + 1):
                at[better].append(first)
        if suffix:
            body = len(layout.text)
            at[_WORD].append(body)
            resume[body] = body + len(suffix) - len(suffix.lstrip())
        return cls(at, resume)

    def choose(
        self, text: str, start: int, end: int, units: list[int], limit: int, body: int
    ) -> tuple[int, int]:
        """Where to cut the piece that starts at ``start`` and could reach ``end``: (where
        it ends, where the next starts)."""
        floor = units[start] + limit // 2
        for rank in (_BLOCK, _LINE, _WORD):
            cuts = self.at[rank]
            index = bisect_right(cuts, end) - 1
            if index >= 0 and cuts[index] > start and units[cuts[index]] > floor:
                return cuts[index], self.resume[cuts[index]]
        if start < body <= end:
            return body, self.resume.get(body, body)  # the suffix goes whole into the next
        return (cut := _hard_cut(text, start, end)), cut


def _hard_cut(text: str, start: int, end: int) -> int:
    """``end``, or a little before it so as not to part a character from its marks."""
    cut = end
    for _ in range(32):
        if cut - 1 <= start or not _joined(text, cut):
            break
        cut -= 1
    return cut


def _joined(text: str, at: int) -> bool:
    """Whether ``text[at]`` belongs to the character before it (a mark, a joiner, a variation
    selector, a skin tone, a tag character)."""
    char, before = text[at], text[at - 1]
    code = ord(char)
    return (
        unicodedata.category(char) in ("Mn", "Me")
        or char == "\u200d"
        or before == "\u200d"
        or 0xFE00 <= code <= 0xFE0F
        or 0x1F3FB <= code <= 0x1F3FF
        or 0xE0020 <= code <= 0xE007F
    )


def _html(text: str, runs: tuple[Run, ...], start: int, end: int) -> str:
    """Characters ``start:end`` of ``text`` as balanced HTML: tags opened as needed, all
    closed at the end."""
    out: list[str] = []
    open_: tuple[Tag, ...] = ()
    first = bisect_right([run.start for run in runs], start) - 1
    for run in runs[max(first, 0) :]:
        if run.start >= end:
            break
        chunk = text[max(run.start, start) : min(run.end, end)]
        if not chunk:
            continue
        common = 0
        for left, right in zip(open_, run.tags, strict=False):
            if left is not right:
                break
            common += 1
        out.extend(tag.closing() for tag in reversed(open_[common:]))
        out.extend(tag.opening() for tag in run.tags[common:])
        out.append(html.escape(chunk, quote=False))
        open_ = run.tags
    out.extend(tag.closing() for tag in reversed(open_))
    return "".join(out)
