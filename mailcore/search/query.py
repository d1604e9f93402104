"""Gmail-style search queries parsed into a small tree. Pure: no Django, no database.

Grammar (Gmail's precedence: ``OR`` binds tighter than the implicit ``AND``)::

    query    := orterm*                      -- all must match
    orterm   := unary ("OR" unary)*
    unary    := "-" unary | primary
    primary  := "(" query ")" | "{" unary* "}"   -- braces: any of them (Gmail)
              | FIELD ":" "(" query ")"          -- from/to/subject applied to every word inside
              | term

Terms: free words, ``"quoted phrases"``, and the operators below; a value may be quoted
(``subject:"quarterly report"``). ``AND`` is accepted and ignored; ``OR`` must be upper case.

Decisions, for the UI and the API docs:

* An unknown operator (``foo:bar``, ``cc:bob``) is a plain word, searched as text.
* A bad value of a known operator raises :class:`SearchError` whose message can be shown as is:
  a date that is not ``YYYY-MM-DD`` (or ``YYYY/MM/DD``), a size that is not ``N``/``NK``/``NM``/
  ``NG``, an age that is not ``Nd``/``Nm``/``Ny``, an unknown ``is:``/``has:`` value, and a query
  longer than :data:`MAX_QUERY_LENGTH` characters or with more than :data:`MAX_TERMS` terms.
* Everything else is forgiven: unbalanced quotes run to the end, unbalanced parentheses close at
  the end (a stray ``)`` is ignored), a dangling ``OR`` is ignored, words without a letter or
  digit (``!!!``, ``-``) are dropped, parentheses nested deeper than :data:`MAX_DEPTH` are
  ignored. A query left with nothing to search for parses to ``None`` (and matches nothing).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date
from typing import Literal

MAX_QUERY_LENGTH = 2000
MAX_TERMS = 100
MAX_DEPTH = 16


class SearchError(ValueError):
    """A query the user must fix; ``str(error)`` is a message fit for the UI."""


TextField = Literal["from", "to", "subject"]
FlagName = Literal["unread", "read", "flagged", "answered", "draft"]


@dataclass(frozen=True, slots=True)
class Text:
    """A word (prefix-matched when longer than one character) or an exact phrase.

    ``field`` restricts it to the sender (``from``), the recipients (``to``: To, Cc, Bcc) or the
    subject and attachment names (``subject``); ``None`` searches everything including the body.
    """

    value: str
    field: TextField | None = None
    is_phrase: bool = False


@dataclass(frozen=True, slots=True)
class Flag:
    name: FlagName


@dataclass(frozen=True, slots=True)
class HasAttachment:
    pass


@dataclass(frozen=True, slots=True)
class InFolder:
    """``in:NAME``: a folder role (inbox, sent, ...) or name, case-insensitive."""

    name: str


@dataclass(frozen=True, slots=True)
class HasLabel:
    name: str


@dataclass(frozen=True, slots=True)
class DateBound:
    """``before:`` received before that day began (UTC); ``after:`` on or after that day."""

    op: Literal["before", "after"]
    day: date


@dataclass(frozen=True, slots=True)
class Age:
    """``older_than:`` received more than ``amount`` units ago; ``newer_than:`` within them."""

    op: Literal["older", "newer"]
    amount: int
    unit: Literal["d", "m", "y"]


@dataclass(frozen=True, slots=True)
class Size:
    """``larger:`` strictly more than ``limit`` bytes; ``smaller:`` strictly fewer."""

    op: Literal["larger", "smaller"]
    limit: int


@dataclass(frozen=True, slots=True)
class Not:
    term: Node


@dataclass(frozen=True, slots=True)
class And:
    terms: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    terms: tuple[Node, ...]


Node = Text | Flag | HasAttachment | InFolder | HasLabel | DateBound | Age | Size | Not | And | Or

TEXT_FIELDS: dict[str, TextField] = {"from": "from", "to": "to", "subject": "subject"}
FLAGS: dict[str, FlagName] = {
    "unread": "unread",
    "read": "read",
    "seen": "read",
    "flagged": "flagged",
    "starred": "flagged",
    "answered": "answered",
    "replied": "answered",
    "draft": "draft",
}
DATE_OPERATORS = {"before": "before", "older": "before", "after": "after", "newer": "after"}
AGE_OPERATORS = {"older_than": "older", "newer_than": "newer"}
SIZE_OPERATORS = {"larger": "larger", "size": "larger", "smaller": "smaller"}
OPERATORS = frozenset(
    [*TEXT_FIELDS, "is", "has", "in", "label", *DATE_OPERATORS, *AGE_OPERATORS, *SIZE_OPERATORS]
)
SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
AGE_LIMITS = {"d": 36500, "m": 1200, "y": 100}

_OPERATOR = re.compile(r"([A-Za-z_]+):(.*)", re.DOTALL)
_DATE = re.compile(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})")
_SIZE = re.compile(r"(\d{1,15})(?:\.(\d{1,6}))?([kmg]?)b?", re.IGNORECASE)
_AGE = re.compile(r"(\d{1,6})([dmy])", re.IGNORECASE)
_BARE_END = frozenset('(){}"')


def parse_query(text: str) -> Node | None:
    """Parse ``text``; ``None`` when nothing is left to search for. Raises only SearchError."""
    if len(text) > MAX_QUERY_LENGTH:
        raise SearchError(f"A search can be at most {MAX_QUERY_LENGTH} characters long.")
    tokens = _Tokenizer(_clean(text)).tokens()
    if sum(1 for token in tokens if token.node is not None) > MAX_TERMS:
        raise SearchError(f"A search can have at most {MAX_TERMS} terms.")
    return _Parser(tokens).parse()


def _clean(text: str) -> str:
    # NUL and unpaired surrogates cannot be sent to PostgreSQL; control characters mean nothing.
    text = text.encode("utf-8", "replace").decode("utf-8")
    return "".join(" " if (ch < " " or ch == "\x7f") else ch for ch in text)


def is_searchable(value: str) -> bool:
    """Whether ``value`` has something full-text search can match (a letter or a digit)."""
    return any(ch.isalnum() for ch in value)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: Literal["term", "not", "or", "open", "close", "open_any", "close_any", "field"]
    node: Node | None = None  # for "term": None when the term was dropped
    field: TextField | None = None  # for "field"


class _Tokenizer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.out: list[_Token] = []
        self.depth = 0
        self.dropped = 0  # opening brackets beyond MAX_DEPTH, ignored with their closers

    def tokens(self) -> list[_Token]:
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch.isspace():
                self.pos += 1
            elif ch in "({":
                if self.depth >= MAX_DEPTH:
                    self.dropped += 1
                else:
                    self.depth += 1
                    self.out.append(_Token("open" if ch == "(" else "open_any"))
                self.pos += 1
            elif ch in ")}":
                if self.dropped:
                    self.dropped -= 1
                else:
                    self.depth = max(0, self.depth - 1)
                    self.out.append(_Token("close" if ch == ")" else "close_any"))
                self.pos += 1
            elif ch == "-" and self._starts_term(self.pos + 1):
                self.out.append(_Token("not"))
                self.pos += 1
            elif ch == '"':
                phrase = self._quoted()
                self._term(Text(phrase, is_phrase=True) if is_searchable(phrase) else None)
            else:
                self._bare_or_operator(self._bare())
        return self.out

    def _starts_term(self, pos: int) -> bool:
        return pos < len(self.text) and not self.text[pos].isspace() and self.text[pos] not in ")}"

    def _term(self, node: Node | None) -> None:
        self.out.append(_Token("term", node))

    def _quoted(self) -> str:
        """Read a quoted string at ``pos`` (an unclosed quote runs to the end)."""
        end = self.text.find('"', self.pos + 1)
        end = len(self.text) if end == -1 else end
        value = self.text[self.pos + 1 : end]
        self.pos = end + 1
        return value.strip()

    def _bare(self) -> str:
        start = self.pos
        while (
            self.pos < len(self.text)
            and not self.text[self.pos].isspace()
            and self.text[self.pos] not in _BARE_END
        ):
            self.pos += 1
        return self.text[start : self.pos]

    def _bare_or_operator(self, bare: str) -> None:
        if bare == "OR":
            self.out.append(_Token("or"))
            return
        if bare == "AND":
            return
        match = _OPERATOR.fullmatch(bare)
        name = match.group(1).lower() if match else ""
        if match is None or name not in OPERATORS:
            self._term(Text(bare) if is_searchable(bare) else None)
            return
        value, quoted = match.group(2), False
        if not value:
            value, quoted, is_group = self._detached_value(name)
            if is_group:
                self.out.append(_Token("field", field=TEXT_FIELDS[name]))
                return
            if value is None:  # "from:" at the end, or before ")" or "OR": nothing to search
                return
        self._term(operator_node(name, value, quoted=quoted))

    def _detached_value(self, name: str) -> tuple[str | None, bool, bool]:
        """The value after ``name:`` when it does not follow the colon directly.

        Returns (value, is_quoted, is_group). ``subject:"a b"`` is quoted; ``subject:(a b)`` is a
        group; ``from: bob`` (a space after the colon) takes the next word, as Gmail does.
        """
        text = self.text
        if self.pos < len(text) and text[self.pos] == '"':
            return self._quoted(), True, False
        if self.pos < len(text) and text[self.pos] == "(":
            if name in TEXT_FIELDS:
                return None, False, True
            return None, False, False
        while self.pos < len(text) and text[self.pos].isspace():
            self.pos += 1
        if self.pos < len(text) and text[self.pos] == '"':
            return self._quoted(), True, False
        start = self.pos
        bare = self._bare()
        if not bare or bare in {"OR", "AND"}:
            self.pos = start
            return None, False, False
        return bare, False, False


def operator_node(name: str, value: str, *, quoted: bool = False) -> Node | None:
    """The node for ``name:value`` (``name`` a known operator, lower case)."""
    if name in TEXT_FIELDS:
        if not is_searchable(value):
            return None
        return Text(value, field=TEXT_FIELDS[name], is_phrase=quoted)
    value = value.strip()
    lowered = value.lower()
    if name == "is":
        if lowered not in FLAGS:
            choices = ", ".join(sorted(FLAGS))
            raise SearchError(f"is:{value} is not supported; use one of: {choices}.")
        return Flag(FLAGS[lowered])
    if name == "has":
        if lowered not in {"attachment", "attachments"}:
            raise SearchError(f"has:{value} is not supported; use has:attachment.")
        return HasAttachment()
    if name == "in":
        return InFolder(value) if value else None
    if name == "label":
        return HasLabel(value) if value else None
    if name in DATE_OPERATORS:
        return DateBound(DATE_OPERATORS[name], parse_date(name, value))  # type: ignore[arg-type]
    if name in AGE_OPERATORS:
        amount, unit = parse_age(name, value)
        return Age(AGE_OPERATORS[name], amount, unit)  # type: ignore[arg-type]
    return Size(SIZE_OPERATORS[name], parse_size(name, value))  # type: ignore[arg-type]


def parse_date(name: str, value: str) -> date:
    match = _DATE.fullmatch(value)
    try:
        if match is None:
            raise ValueError(value)
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        raise SearchError(
            f"{name}: needs a date like 2026-01-31 (year-month-day), not {value!r}."
        ) from None


def parse_size(name: str, value: str) -> int:
    """``5M`` -> 5 MiB. Units are binary (K = 1024 bytes); no unit means bytes."""
    match = _SIZE.fullmatch(value)
    if match is None:
        raise SearchError(f"{name}: needs a size like 500K, 5M or 1G (or bytes), not {value!r}.")
    whole, fraction, unit = match.groups()
    multiplier = SIZE_UNITS[unit.lower()]
    size = int(whole) * multiplier
    if fraction:
        size += int(fraction) * multiplier // 10 ** len(fraction)
    return size


def parse_age(name: str, value: str) -> tuple[int, Literal["d", "m", "y"]]:
    match = _AGE.fullmatch(value)
    if match is None:
        raise SearchError(
            f"{name}: needs an age like 7d (days), 3m (months) or 1y (years), not {value!r}."
        )
    amount, unit = int(match.group(1)), match.group(2).lower()
    if amount > AGE_LIMITS[unit]:
        raise SearchError(f"{name}: can go back at most 100 years, not {value!r}.")
    return amount, unit  # type: ignore[return-value]


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def parse(self) -> Node | None:
        node = self._sequence(closer=None)
        while self.pos < len(self.tokens):  # stray closers: skip them and go on
            self.pos += 1
            more = self._sequence(closer=None)
            node = _and([node, more])
        return node

    def _peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _sequence(self, closer: str | None) -> Node | None:
        terms: list[Node | None] = []
        while (token := self._peek()) is not None and token.kind not in {"close", "close_any"}:
            if token.kind == "or":  # a dangling OR
                self.pos += 1
                continue
            terms.append(self._or_term())
        if token is not None and token.kind == closer:
            self.pos += 1
        return _and(terms)

    def _or_term(self) -> Node | None:
        terms = [self._unary()]
        while (token := self._peek()) is not None and token.kind == "or":
            self.pos += 1
            following = self._peek()
            if following is None or following.kind in {"close", "close_any", "or"}:
                continue
            terms.append(self._unary())
        return _or(terms)

    def _unary(self) -> Node | None:
        negations = 0
        while (token := self._peek()) is not None and token.kind == "not":  # a loop: "------x"
            negations += 1
            self.pos += 1
        if token is None:
            return None
        node = self._primary()
        if node is None or negations % 2 == 0:
            return node
        return node.term if isinstance(node, Not) else Not(node)

    def _primary(self) -> Node | None:
        token = self.tokens[self.pos]
        self.pos += 1
        if token.kind == "term":
            return token.node
        if token.kind == "field":
            assert token.field is not None
            following = self._peek()
            if following is None or following.kind != "open":
                return None
            return _with_field(self._primary(), token.field)
        if token.kind == "open":
            return self._sequence(closer="close")
        if token.kind == "open_any":
            return self._any_of()
        return None  # "or", "close" are handled by the callers; nothing else reaches here

    def _any_of(self) -> Node | None:
        terms: list[Node | None] = []
        while (token := self._peek()) is not None and token.kind not in {"close", "close_any"}:
            if token.kind == "or":
                self.pos += 1
                continue
            terms.append(self._unary())
        if token is not None and token.kind == "close_any":
            self.pos += 1
        return _or(terms)


def _and(terms: list[Node | None]) -> Node | None:
    flat: list[Node] = []
    for term in terms:
        if isinstance(term, And):
            flat.extend(term.terms)
        elif term is not None:
            flat.append(term)
    if not flat:
        return None
    return flat[0] if len(flat) == 1 else And(tuple(flat))


def _or(terms: list[Node | None]) -> Node | None:
    flat: list[Node] = []
    for term in terms:
        if isinstance(term, Or):
            flat.extend(term.terms)
        elif term is not None:
            flat.append(term)
    if not flat:
        return None
    return flat[0] if len(flat) == 1 else Or(tuple(flat))


def _with_field(node: Node | None, field: TextField) -> Node | None:
    """``subject:(a OR "b c")``: the field applies to every word and phrase inside."""
    if node is None:
        return None
    if isinstance(node, Text):
        return replace(node, field=field) if node.field is None else node
    if isinstance(node, Not):
        inner = _with_field(node.term, field)
        return Not(inner) if inner is not None else None
    if isinstance(node, And):
        return _and([_with_field(term, field) for term in node.terms])
    if isinstance(node, Or):
        return _or([_with_field(term, field) for term in node.terms])
    return node


def walk(node: Node | None, *, negated: bool = False) -> Iterator[tuple[Node, bool]]:
    """Yield (node, is_negated) for every node of the tree, parents first."""
    if node is None:
        return
    yield node, negated
    if isinstance(node, Not):
        yield from walk(node.term, negated=not negated)
    elif isinstance(node, And | Or):
        for term in node.terms:
            yield from walk(term, negated=negated)
