"""Plain text from HTML bodies, and the one-line snippet shown in message lists."""

from __future__ import annotations

import re
from contextlib import suppress
from html.parser import HTMLParser

SNIPPET_LENGTH = 200

_SKIPPED = frozenset({"script", "style", "title", "template", "head"})
_PARAGRAPHS = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote", "pre", "ul", "ol", "dl"}
)
_BLOCKS = frozenset(
    {
        "address",
        "article",
        "aside",
        "center",
        "dd",
        "div",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "section",
        "tr",
    }
)
_CELLS = frozenset({"td", "th"})
# Invisible characters newsletters pad their preheaders with.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u034f\u00ad\x00"))
_WHITESPACE = re.compile(r"\s+")
_SPACES = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n{3,}")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.skipping: list[str] = []
        self.preformatted = 0
        self.breaks = 0  # line breaks owed before the next text; blocks never stack them

    def _block(self, breaks: int) -> None:
        self.breaks = max(self.breaks, breaks)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self.skipping.append(tag)
        elif tag == "br":
            self.chunks.append("\n")
        elif tag in _PARAGRAPHS:
            self._block(2)
            self.preformatted += tag == "pre"
        elif tag in _BLOCKS:
            self._block(1)
            if tag == "li":
                self.chunks.append("\n" * self.breaks + "- ")
                self.breaks = 0
        elif tag in _CELLS:
            self.chunks.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            if tag in self.skipping:
                while self.skipping and self.skipping.pop() != tag:
                    pass
        elif tag in _PARAGRAPHS:
            self._block(2)
            if tag == "pre" and self.preformatted:
                self.preformatted -= 1
        elif tag in _BLOCKS:
            self._block(1)

    def handle_data(self, data: str) -> None:
        if self.skipping:
            # <head> is only skipped while it holds no text: broken mail never closes it.
            if self.skipping[-1] != "head" or not data.strip():
                return
            self.skipping.pop()
        if not self.preformatted:
            if data.isspace():
                self.chunks.append(" ")
                return
            data = _WHITESPACE.sub(" ", data)
        if self.breaks:
            self.chunks.append("\n" * self.breaks)
            self.breaks = 0
        self.chunks.append(data)


def html_to_text(html: str) -> str:
    """Readable text of an HTML body: no scripts or styles, blocks on their own lines."""
    parser = _TextExtractor()
    with suppress(Exception):  # html.parser is lenient, but this must never fail ingest
        parser.feed(html)
        parser.close()
    text = "".join(parser.chunks).translate(_INVISIBLE).replace("\xa0", " ")
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def make_snippet(text: str, limit: int = SNIPPET_LENGTH) -> str:
    """The start of the body on one line, skipping quoted (">") lines."""
    words: list[str] = []
    length = 0
    start = 0
    while length < limit and start < len(text):
        end = text.find("\n", start)
        if end < 0:
            end = len(text)
        # Bound the work on a megabyte-long line: only its start can reach the snippet.
        line = text[start : min(end, start + limit * 4)].strip()
        start = end + 1
        if not line or line.startswith(">"):
            continue
        for word in line.split():
            words.append(word)
            length += len(word) + 1
            if length >= limit:
                break
    return " ".join(words)[:limit].rstrip()
