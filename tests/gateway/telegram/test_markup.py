from __future__ import annotations

from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.telegram.markup import to_html


class Balance(HTMLParser):
    ALLOWED = frozenset({"b", "i", "code", "pre", "a"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag in self.ALLOWED, tag
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack, f"</{tag}> closes nothing"
        assert self.stack.pop() == tag


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("**bold** and *it* and _it_", "<b>bold</b> and <i>it</i> and <i>it</i>"),
        ("use `a < b` here", "use <code>a &lt; b</code> here"),
        ("```python\nx = 1 < 2\n```\ndone", "<pre>x = 1 &lt; 2</pre>\ndone"),
        ("```\nstill streaming", "<pre>still streaming</pre>"),
        (
            "[docs](https://example.org/a?b=1&c=2)",
            '<a href="https://example.org/a?b=1&amp;c=2">docs</a>',
        ),
        ("2 * 3 * 4 and snake_case_name", "2 * 3 * 4 and snake_case_name"),
        ("**half bold", "**half bold"),
        ("******", "******"),
        ("**a [b**](http://x)", '**a <a href="http://x">b**</a>'),
        ("<script>&", "&lt;script&gt;&amp;"),
    ],
)
def test_markdown_becomes_telegram_html(markdown: str, expected: str) -> None:
    assert to_html(markdown) == expected


PIECES = st.sampled_from([*'ab *_`[]()<>&\n"', "**", "```", "http://x"])


@settings(max_examples=500)
@given(st.lists(PIECES, max_size=40).map("".join))
def test_output_is_always_balanced_html(markdown: str) -> None:
    checker = Balance()
    checker.feed(to_html(markdown))
    checker.close()
    assert checker.stack == []
