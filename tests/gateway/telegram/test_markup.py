from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gateway.telegram.markup import LIMIT, Piece, pieces, render
from gateway.telegram.styled import styled
from tests.strategies import (
    markdown_blocks,
    markdown_limits,
    markdown_suffixes,
    markdown_texts,
)

CUT_OFF = " …\n[answer cut off]"
Shown = list[tuple[str, tuple[str, ...]]]


class TelegramHTML(HTMLParser):
    """Reads HTML as Telegram would, strictly: only the tags and attributes Telegram knows,
    nested as it allows (nothing inside code, only a language ``code`` inside ``pre``, no
    quote in a quote, no code in bold or in a link), no empty element. ``shown`` is every
    visible character with the elements it sits in."""

    TAGS = frozenset({"b", "i", "u", "s", "code", "pre", "a", "blockquote", "tg-spoiler"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, str, int]] = []
        self.shown: Shown = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag in self.TAGS, tag
        names = [name for name, _, _ in self.stack]
        parent = names[-1] if names else None
        assert parent != "code", f"<{tag}> inside <code>"
        assert parent != "pre" or tag == "code", f"<{tag}> inside <pre>"
        assert not (tag == "blockquote" and "blockquote" in names), "nested quote"
        if tag in ("code", "pre"):
            assert not {"b", "i", "s", "a"} & set(names), f"<{tag}> inside {names}"
        if tag == "a":
            assert "a" not in names
            assert [name for name, _ in attrs] == ["href"], attrs
            assert re.match(r"(https?://[^\s]+|tg://\S+)$", attrs[0][1] or ""), attrs
        elif tag == "code" and attrs:
            assert parent == "pre", "a language outside pre"
            assert [name for name, _ in attrs] == ["class"], attrs
            assert re.fullmatch(r"language-[\w+#.-]+", attrs[0][1] or ""), attrs
        else:
            assert not attrs, (tag, attrs)
        described = tag + "".join(f" {name}={value}" for name, value in attrs)
        self.stack.append((tag, described, len(self.shown)))

    def handle_endtag(self, tag: str) -> None:
        assert self.stack, f"</{tag}> closes nothing"
        name, _, opened_at = self.stack.pop()
        assert name == tag, f"</{tag}> closes <{name}>"
        assert len(self.shown) > opened_at, f"empty <{tag}>"

    def handle_data(self, data: str) -> None:
        context = tuple(described for _, described, _ in self.stack)
        self.shown.extend((char, context) for char in data)


def read(markup: str) -> Shown:
    """The characters ``markup`` shows, each with its elements; fails on anything Telegram
    would refuse (or that we never mean to send)."""
    assert not re.search(r"&(?!(?:lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);)", markup), markup
    bare = re.sub(r'</?[a-z-]+(?: [a-z-]+="[^"<>]*")*>', "", markup)
    assert not {"<", ">"} & set(bare), markup
    parser = TelegramHTML()
    parser.feed(markup)
    parser.close()
    assert not parser.stack, f"left open: {parser.stack}"
    return parser.shown


def text_of(shown: Shown) -> str:
    return "".join(char for char, _ in shown)


def units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("# Title\n\n## Sub *it*", "<b>Title</b>\n\n<b>Sub <i>it</i></b>"),
        ("**bold**, *it*, _it_, ~~gone~~", "<b>bold</b>, <i>it</i>, <i>it</i>, <s>gone</s>"),
        ("use `a < b` here", "use <code>a &lt; b</code> here"),
        ("- one\n- two\n\nafter", "• one\n• two\n\nafter"),
        ("- one\n  - nested\n    more\n- two", "• one\n  • nested\n    more\n• two"),
        ("3. three\n4. four", "3. three\n4. four"),
        ("1. a\n\n   second paragraph", "1. a\n   second paragraph"),
        ("> quoted\n> > deeper", "<blockquote>quoted\n\ndeeper</blockquote>"),
        (
            "```python\nif x < 1:\n    y = 2\n```\ndone",
            '<pre><code class="language-python">if x &lt; 1:\n    y = 2</code></pre>\n\ndone',
        ),
        ("```\nplain\n```", "<pre>plain</pre>"),
        ("```bad! lang\nx\n```", "<pre>x</pre>"),
        ("```\nstill streaming", "<pre>still streaming</pre>"),
        ("text\n\n    indented code", "text\n\n<pre>indented code</pre>"),
        (
            "- item\n\n  ```sh\n  ls\n  ```",
            '• item\n<pre><code class="language-sh">ls</code></pre>',
        ),
        ("> ```\n> quoted code\n> ```", "<blockquote><pre>quoted code</pre></blockquote>"),
        (
            "[docs](https://example.org/a?b=1&c=2)",
            '<a href="https://example.org/a?b=1&amp;c=2">docs</a>',
        ),
        ("[me](tg://user?id=42)", '<a href="tg://user?id=42">me</a>'),
        ("[x](javascript:alert(1)) [y](ftp://h/f) [z](/rel)", "x y z"),
        ("<https://auto.link>", '<a href="https://auto.link">https://auto.link</a>'),
        (
            "![a cat](https://img.example/cat.png)",
            '<a href="https://img.example/cat.png">a cat</a>',
        ),
        ("**bold `code` bold**", "<b>bold </b><code>code</code><b> bold</b>"),
        ("[`f()`](https://x.org)", '<a href="https://x.org">f()</a>'),
        ("one\ntwo  \nthree\\\nfour", "one\ntwo\nthree\nfour"),
        (
            "| a | long |\n|---|---:|\n| 1 | 2 |",
            "<pre>a | long\n--+-----\n1 |    2</pre>",
        ),
        ("above\n\n---\n\nbelow", "above\n\n────────────\n\nbelow"),
        ("<b>raw</b> &amp; & <script>", "&lt;b&gt;raw&lt;/b&gt; &amp; &amp; &lt;script&gt;"),
        ('say "hi" \\*not em\\*', 'say "hi" *not em*'),
        ("2 * 3 * 4 and snake_case_name", "2 * 3 * 4 and snake_case_name"),
        ("**half bold", "**half bold"),
        ("[ref]: https://example.org", "[ref]: https://example.org"),
        ("", ""),
    ],
)
def test_markdown_becomes_telegram_html(markdown: str, expected: str) -> None:
    assert render(markdown) == expected
    read(expected)


def test_a_lone_surrogate_becomes_a_replacement_character() -> None:
    assert render("half \ud83d of an emoji") == "half \ufffd of an emoji"


def test_empty_and_blank_texts_give_no_pieces() -> None:
    assert pieces("") == []
    assert pieces(" \n\t\n", suffix=CUT_OFF) == []


def test_a_short_answer_is_one_piece_with_its_plain_text() -> None:
    assert pieces("**hi** <there>", suffix=CUT_OFF) == [
        Piece("<b>hi</b> &lt;there&gt;" + html.escape(CUT_OFF, quote=False), "hi <there>" + CUT_OFF)
    ]


def test_cuts_prefer_blocks_then_lines_then_words_then_anywhere() -> None:
    para = "word " * 7 + "end"  # 38 characters
    assert [p.plain for p in pieces(f"{para}\n\n{para}", limit=50)] == [para, para]
    lines = "\n".join(["a line of text"] * 6)  # 89 characters
    assert [p.plain for p in pieces(lines, limit=50)] == ["\n".join(["a line of text"] * 3)] * 2
    assert [p.plain for p in pieces("ab cd " * 10, limit=20)] == [
        "ab cd ab cd ab cd ab",
        "cd ab cd ab cd ab cd",
        "ab cd ab cd ab cd",
    ]
    assert [p.plain for p in pieces("x" * 25, limit=10)] == ["x" * 10, "x" * 10, "x" * 5]


def test_what_is_open_at_a_cut_is_closed_and_opened_again() -> None:
    got = pieces("> **" + ("bold words " * 6).strip() + "**", limit=40)
    assert [p.html for p in got] == [
        "<blockquote><b>bold words bold words bold words bold</b></blockquote>",
        "<blockquote><b>words bold words bold words</b></blockquote>",
    ]


def test_emoji_count_two_units() -> None:
    got = pieces("👍" * 10, limit=5)
    assert [p.plain for p in got] == ["👍👍"] * 5
    family = "👨\u200d👩\u200d👧"  # 8 units, one picture
    assert [p.plain for p in pieces(f"ab{family}", limit=8)] == ["ab", family]


def test_a_hard_cut_keeps_a_letter_with_its_accent() -> None:
    assert [p.plain for p in pieces("aaae\u0301bbb", limit=4)] == ["aaa", "e\u0301bb", "b"]


def test_the_suffix_ends_the_last_piece_outside_every_element() -> None:
    got = pieces("**" + "x" * 40 + "**", limit=50, suffix=CUT_OFF)
    assert [p.html for p in got] == ["<b>" + "x" * 40 + "</b>", "…\n[answer cut off]"]
    got = pieces("**" + "x" * 20 + "**", limit=50, suffix=CUT_OFF)
    assert [p.html for p in got] == ["<b>" + "x" * 20 + "</b>" + CUT_OFF]


def test_a_limit_below_two_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        pieces("text", limit=1)


def test_a_code_fence_across_the_limit_stays_code_and_the_prose_after_it_prose() -> None:
    """The regression of issue 17: a 6000-character answer, its code block across 4096."""
    prose = ("The quick brown fox jumps over the lazy dog. " * 33).strip()  # 1484
    code = "\n".join(f"    total += values[{i}]  # step {i}" for i in range(100))  # 3670
    after = ("And that is the whole **story** of the loop. " * 22).strip()  # 1011
    answer = f"{prose}\n\n```python\ndef total(values):\n{code}\n```\n\n{after}"
    assert 5900 < len(answer) < 6100

    first, second = pieces(answer)
    assert max(units(first.plain), units(second.plain)) <= LIMIT
    language = '<pre><code class="language-python">'
    assert first.html.startswith("The quick brown fox")
    assert language in first.html
    assert first.html.endswith("</code></pre>")
    assert second.html.startswith(language)
    assert second.html.endswith("</code></pre>\n\n" + render(after))
    code_shown = [
        text_of([(c, ctx) for c, ctx in read(p.html) if ctx[:1] == ("pre",)])
        for p in (first, second)
    ]
    assert all(code_shown)
    assert "def total(values):" in code_shown[0]
    assert "step 99" in code_shown[1]
    assert "And that is" not in "".join(code_shown)
    assert (code_shown[0] + "\n" + code_shown[1]).replace("\n", "") == (
        "def total(values):" + code
    ).replace("\n", "")


def _aligned(whole: Shown, parts: list[Shown]) -> None:
    """Each part is the next stretch of ``whole``, past only whitespace, each character in
    the same elements as in ``whole``; only whitespace is left after the last part."""
    at = 0
    text = text_of(whole)
    for part in parts:
        wanted = text_of(part)
        while not text.startswith(wanted, at):
            assert text[at : at + 1].isspace(), (text[at:], wanted)
            at += 1
        for offset, (char, context) in enumerate(part):
            assert whole[at + offset] == (char, context), (char, whole[at + offset], context)
        at += len(wanted)
    assert not text[at:].strip(), text[at:]


@settings(deadline=None)
@given(markdown_texts, markdown_limits, markdown_suffixes)
def test_pieces_are_valid_within_the_limit_and_together_the_whole(
    markdown: str, limit: int, suffix: str
) -> None:
    got = pieces(markdown, limit=limit, suffix=suffix)
    assert bool(got) == bool(markdown.strip())
    shown = [read(piece.html) for piece in got]
    for piece, characters in zip(got, shown, strict=True):
        assert text_of(characters) == piece.plain
        assert units(piece.plain) <= limit
        assert piece.plain.strip()
    if not got or not suffix:
        # Code stays code and prose stays prose: every character keeps its elements.
        _aligned(read(render(markdown)), shown)
        return
    # The suffix comes last, outside every element (whole, when it fits in a piece).
    squeezed = "".join(char for part in shown for char, _ in part if not char.isspace())
    assert squeezed.endswith("".join(suffix.split()))
    tail = [context for part in shown[-2:] for _, context in part][-len(suffix.strip()) :]
    assert tail == [()] * len(tail)
    if units(suffix) <= limit:
        assert got[-1].html.endswith(html.escape(suffix.lstrip(), quote=False))


@settings(deadline=None)
@given(markdown_texts, st.floats(0, 1), markdown_limits)
def test_pieces_already_filled_stay_as_the_text_grows(
    markdown: str, share: float, limit: int
) -> None:
    shorter = markdown[: int(len(markdown) * share)]
    assume(styled(markdown).extends(styled(shorter)))
    before, after = pieces(shorter, limit=limit), pieces(markdown, limit=limit)
    settled = max(len(before) - 1, 0)
    assert after[:settled] == before[:settled]
    if before:
        last, next_ = before[-1].plain, after[settled].plain
        assert last.startswith(next_) or next_.startswith(last)


@settings(deadline=None)
@given(st.lists(markdown_blocks, min_size=1), st.lists(markdown_blocks), markdown_limits)
def test_an_answer_that_grows_by_blocks_keeps_its_settled_pieces(
    first: list[str], more: list[str], limit: int
) -> None:
    shorter = "\n\n".join(first) + "\n\n"
    longer = shorter + "\n\n".join(more)
    assert styled(longer).extends(styled(shorter))
    before, after = pieces(shorter, limit=limit), pieces(longer, limit=limit)
    assert after[: len(before) - 1] == before[:-1]


@settings(deadline=None)
@given(markdown_texts, markdown_limits, markdown_suffixes)
def test_a_suffix_changes_only_the_last_piece(markdown: str, limit: int, suffix: str) -> None:
    before, cut_off = pieces(markdown, limit=limit), pieces(markdown, limit=limit, suffix=suffix)
    assert cut_off[: max(len(before) - 1, 0)] == before[:-1]
