"""Markdown laid out the way Telegram can show it: visible text, its tags, its block boundaries.

markdown-it-py parses (CommonMark with tables and strikethrough; raw HTML is off, so HTML in
the input stays text). The tree is laid out as Telegram shows text:

* paragraphs, headings, lists, quotes, code blocks and tables are blocks, one blank line
  apart (list items and the blocks inside them: one line break);
* headings are bold lines; bullet items ``• item``, ordered ones ``1. item``, their
  continuation lines and nested lists indented under the item's text;
* quotes are ``blockquote`` (a quote in a quote joins the outer one: Telegram does not nest
  them); fenced and indented code ``pre``, with ``code class="language-…"`` when the fence
  names a language; tables a ``pre`` of aligned columns; a rule a line of ``─``;
* inline: ``b``, ``i``, ``s``, ``code`` and ``a`` (only ``http``, ``https`` and ``tg`` links;
  any other link is its text). Inside code nothing else applies but the quote around it, and
  code inside a link is plain linked text, as Telegram requires.

A text that would show nothing (a lone link reference definition, say) is shown as written.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

import attrs
from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
# Every link is parsed as one; ``_href`` decides which Telegram may link (the others show
# their text, not their Markdown).
_MARKDOWN.validateLink = lambda url: True  # type: ignore[method-assign]
_LANGUAGE = re.compile(r"[\w+#.-]{1,32}")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_SCHEMES = frozenset({"http", "https", "tg"})
_CODE_NAMES = frozenset({"code", "pre"})
_KEPT_IN_CODE = frozenset({"blockquote", "code", "pre"})
_BULLET = "•"
_RULE = "─" * 12


@attrs.frozen(eq=False)
class Tag:
    """One element of the output: equal only to itself, so that two quotes or two code blocks
    in a row stay two."""

    name: str
    """``b``, ``i``, ``s``, ``code``, ``pre``, ``a`` or ``blockquote``."""
    attributes: str = ""
    """What follows the name in the opening tag, escaped (``' href="…"'``), or nothing."""

    def opening(self) -> str:
        """The opening tag."""
        return f"<{self.name}{self.attributes}>"

    def closing(self) -> str:
        """The closing tag."""
        return f"</{self.name}>"


@attrs.frozen
class Run:
    """Consecutive visible characters that sit in the same tags."""

    start: int
    """Index of the first character in ``Styled.text``."""
    end: int
    """Index after the last one."""
    tags: tuple[Tag, ...]
    """The tags around them, outermost first."""


@attrs.frozen
class Styled:
    """A Markdown text laid out: what Telegram shows, and how."""

    text: str
    """The visible text (what Telegram counts): no leading blank lines, no trailing space."""
    runs: tuple[Run, ...]
    """Runs covering ``text`` in order, without gaps."""
    blocks: frozenset[int]
    """Where a break between two blocks begins (an index into ``text``)."""

    def extends(self, prefix: Styled) -> bool:
        """Whether this layout begins with ``prefix``: the same characters, in the same
        elements, with the same block boundaries, for as long as ``prefix`` goes."""
        length = len(prefix.text)
        if not self.text.startswith(prefix.text):
            return False
        if {at for at in self.blocks if at < length} != prefix.blocks:
            return False
        return _shape(self, length) == _shape(prefix, length)


def _shape(styled: Styled, length: int) -> list[tuple[int, tuple[str, ...]]]:
    """The element structure of the first ``length`` characters, comparable across layouts."""
    names: dict[int, str] = {}
    shape: list[tuple[int, tuple[str, ...]]] = []
    for run in styled.runs:
        if run.start >= length:
            break
        ids = tuple(names.setdefault(id(tag), f"{len(names)}{tag.opening()}") for tag in run.tags)
        shape.append((min(run.end, length), ids))
    return shape


def styled(markdown: str) -> Styled:
    """Lay ``markdown`` out (see the module docstring)."""
    markdown = _LONE_SURROGATE.sub("\ufffd", markdown)
    writer = _Writer()
    _blocks(writer, SyntaxTreeNode(_MARKDOWN.parse(markdown)).children, "\n\n")
    result = writer.finish()
    if result.text.strip() or not markdown.strip():
        return result
    shown = markdown.strip()
    return Styled(shown, (Run(0, len(shown), ()),), frozenset())


@attrs.define
class _Writer:
    """Appends visible text under a stack of open tags; a break between blocks is written only
    when text follows it."""

    _parts: list[str] = attrs.Factory(list)
    _length: int = 0
    _runs: list[Run] = attrs.Factory(list)
    _stack: list[Tag] = attrs.Factory(list)
    _effective: tuple[Tag, ...] = ()
    _pending: str = ""
    _blocks: set[int] = attrs.Factory(set)
    _indent: str = ""

    def push(self, tag: Tag) -> bool:
        """Open ``tag``; ``False`` (nothing opened) if one of its kind is open already."""
        if any(open_.name == tag.name for open_ in self._stack):
            return False
        self._stack.append(tag)
        self._retag()
        return True

    def pop(self) -> None:
        self._stack.pop()
        self._retag()

    def inside(self, name: str) -> bool:
        return any(tag.name == name for tag in self._stack)

    def indent(self, by: str) -> str:
        """Indent the lines that follow by ``by`` more; returns the indent to restore."""
        before, self._indent = self._indent, self._indent + by
        return before

    def dedent(self, to: str) -> None:
        self._indent = to

    def end_block(self, separator: str) -> None:
        """A block ended: the next text is ``separator`` away (the larger break wins)."""
        if self._length and len(separator) > len(self._pending):
            self._pending = separator

    def write(self, text: str, *, verbatim: bool = False) -> None:
        """Append ``text``; unless ``verbatim`` (code), each of its lines is indented."""
        if not text:
            return
        if self._pending:
            self._blocks.add(self._length)
            shared = _shared(self._runs[-1].tags, self._effective)
            self._emit(self._pending + ("" if verbatim else self._indent), shared)
            self._pending = ""
        if not verbatim and self._indent:
            text = text.replace("\n", "\n" + self._indent)
        self._emit(text, self._effective)

    def finish(self) -> Styled:
        text = "".join(self._parts)
        end = len(text.rstrip())
        runs = [attrs.evolve(run, end=min(run.end, end)) for run in self._runs if run.start < end]
        return Styled(text[:end], tuple(runs), frozenset(at for at in self._blocks if at < end))

    def _emit(self, text: str, tags: tuple[Tag, ...]) -> None:
        end = self._length + len(text)
        if self._runs and self._runs[-1].tags == tags:
            self._runs[-1] = attrs.evolve(self._runs[-1], end=end)
        else:
            self._runs.append(Run(self._length, end, tags))
        self._parts.append(text)
        self._length = end

    def _retag(self) -> None:
        stack = self._stack
        if any(tag.name in _CODE_NAMES for tag in stack):
            # Code holds no other entity; only a quote may hold code.
            stack = [tag for tag in stack if tag.name in _KEPT_IN_CODE]
        self._effective = tuple(stack)


def _shared(before: tuple[Tag, ...], after: tuple[Tag, ...]) -> tuple[Tag, ...]:
    """The tags a break between two blocks sits in: those both sides share."""
    common = 0
    for left, right in zip(before, after, strict=False):
        if left is not right:
            break
        common += 1
    return before[:common]


def _blocks(writer: _Writer, nodes: list[SyntaxTreeNode], separator: str) -> None:
    for node in nodes:
        _block(writer, node)
        writer.end_block(separator)


def _block(writer: _Writer, node: SyntaxTreeNode) -> None:
    kind = node.type
    if kind in ("paragraph", "heading"):
        bold = kind == "heading" and writer.push(Tag("b"))
        for child in node.children:
            _inline(writer, child)
        if bold:
            writer.pop()
    elif kind == "blockquote":
        quoted = writer.push(Tag("blockquote"))
        _blocks(writer, node.children, "\n\n")
        if quoted:
            writer.pop()
    elif kind in ("bullet_list", "ordered_list"):
        _list(writer, node)
    elif kind in ("fence", "code_block"):
        language = node.info.split()[0] if kind == "fence" and node.info.split() else ""
        _code(writer, node.content.rstrip("\n"), language)
    elif kind == "table":
        _code(writer, _table(node), "")
    elif kind == "hr":
        writer.write(_RULE)
    elif node.children:
        _blocks(writer, node.children, "\n")
    else:
        writer.write(node.content)


def _list(writer: _Writer, node: SyntaxTreeNode) -> None:
    first = int(str(node.attrs.get("start", 1)))
    for number, item in enumerate(node.children, start=first):
        marker = f"{number}. " if node.type == "ordered_list" else f"{_BULLET} "
        writer.write(marker)
        restore = writer.indent(" " * len(marker))
        _blocks(writer, item.children, "\n")
        writer.dedent(restore)
        writer.end_block("\n")


def _code(writer: _Writer, content: str, language: str) -> None:
    opened = [writer.push(Tag("pre"))]
    if _LANGUAGE.fullmatch(language):
        opened.append(writer.push(Tag("code", f' class="language-{html.escape(language)}"')))
    writer.write(content, verbatim=True)
    for pushed in reversed(opened):
        if pushed:
            writer.pop()


def _inline(writer: _Writer, node: SyntaxTreeNode) -> None:
    kind = node.type
    tag: Tag | None = None
    if kind in ("text", "text_special"):
        writer.write(node.content)
        return
    if kind in ("softbreak", "hardbreak"):
        writer.write("\n")
        return
    if kind == "code_inline":
        tag = None if writer.inside("a") else Tag("code")
        pushed = tag is not None and writer.push(tag)
        writer.write(node.content)
        if pushed:
            writer.pop()
        return
    if kind in ("strong", "em", "s"):
        tag = Tag({"strong": "b", "em": "i", "s": "s"}[kind])
    elif kind in ("link", "image"):
        href = _href(str(node.attrs.get("href" if kind == "link" else "src", "")))
        tag = Tag("a", f' href="{html.escape(href)}"') if href else None
    pushed = tag is not None and writer.push(tag)
    if node.children:
        for child in node.children:
            _inline(writer, child)
    else:
        writer.write(node.content)
    if pushed:
        writer.pop()


def _href(url: str) -> str:
    """``url`` if Telegram may link it (``http``, ``https``, ``tg``), else ``""``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if parts.scheme.lower() not in _SCHEMES or (parts.scheme.lower() != "tg" and not parts.netloc):
        return ""
    return url


def _plain(node: SyntaxTreeNode) -> str:
    if node.type in ("softbreak", "hardbreak"):
        return " "
    if node.children:
        return "".join(_plain(child) for child in node.children)
    return node.content


def _table(node: SyntaxTreeNode) -> str:
    """A table as lines of aligned columns, its header underlined."""
    rows: list[list[tuple[str, str]]] = []
    for section in node.children:
        for line in section.children:
            rows.append([(_plain(c), str(c.attrs.get("style", ""))) for c in line.children])
    columns = max((len(row) for row in rows), default=0)
    widths = [max(len(row[i][0]) if i < len(row) else 0 for row in rows) for i in range(columns)]
    lines = []
    for index, row in enumerate(rows):
        cells = []
        for column, (text, style) in enumerate(row):
            if "right" in style:
                cells.append(text.rjust(widths[column]))
            elif "center" in style:
                cells.append(text.center(widths[column]))
            else:
                cells.append(text.ljust(widths[column]))
        lines.append(" | ".join(cells).rstrip())
        if index == 0 and node.children and node.children[0].type == "thead":
            lines.append("-+-".join("-" * size for size in widths))
    return "\n".join(lines)
