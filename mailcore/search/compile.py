"""Turning a parsed query into a filter on :class:`~mailcore.models.Message`.

Text terms become one ``to_tsquery('simple', ...)`` per run of adjacent text terms, matched
against ``Message.search_vector`` (see :mod:`mailcore.services.searchdoc` for what it holds):

* Words are prefix-matched (``invoice`` finds ``invoices``): the ``simple`` configuration does
  not stem, and this is what people expect from a search box. One-character words are matched
  exactly, so ``a`` does not mean "every word starting with a".
* Quoted phrases (and quoted operator values) are exact: ``"quarterly report"`` is
  ``'quarterly' <-> 'report'``.
* ``from:`` is weight A (sender name, address, local part, domain and its labels), ``to:`` is
  weight B (To, Cc and Bcc the same way), ``subject:`` is weight C (subject and attachment
  names). A free word matches any weight, so it also finds senders and recipients.
* Every value goes into the tsquery as a single-quoted lexeme with ``'`` and ``\\`` escaped,
  so ``&|!():*<>`` in user input are just characters that PostgreSQL's parser splits on, never
  operators. Words without a letter or digit are dropped by the parser; a query that is left
  with nothing matches nothing.

Other operators are plain column conditions: ``before:D`` is ``received_at < D 00:00 UTC``
(exclusive), ``after:D`` is ``received_at >= D 00:00 UTC`` (that day included), as in Gmail;
``older_than:2d`` is ``received_at < now - 2 days`` and ``newer_than:2d`` is
``received_at >= now - 2 days`` (months and years are calendar months and years);
``larger:``/``smaller:`` compare ``Message.size`` strictly. ``in:`` matches a folder role or
name case-insensitively (``in:spam`` is the junk folder, ``in:anywhere`` any folder), ``label:``
a label name case-insensitively, both within the searched mailboxes.

Like Gmail, a search outside a folder leaves out Trash and Junk unless the query asks for them
(``in:trash``, ``in:spam``, ``in:anywhere``).

Plans (see docs/benchmarks.md): with one mailbox in scope a common term walks
``msg_mailbox_recv`` newest first and stops after a page, a rare one takes the GIN index and
sorts its few matches. With several mailboxes (a user with shares) PostgreSQL 15 cannot merge
per-mailbox index scans for ``mailbox_id IN (...)``, so a common term sorts every match: callers
that show one mailbox should pass ``mailbox=``.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta

from django.contrib.postgres.search import SearchQuery
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from mailcore import access
from mailcore.models import Folder, Label, Mailbox, Message, User
from mailcore.search.query import (
    Age,
    And,
    DateBound,
    Flag,
    HasAttachment,
    HasLabel,
    InFolder,
    Node,
    Not,
    Or,
    Size,
    Text,
    parse_query,
    walk,
)
from mailcore.services.searchdoc import CONFIG

WEIGHTS = {"from": "A", "to": "B", "subject": "C"}
HIDDEN_ROLES = (Folder.Role.TRASH, Folder.Role.JUNK)
FOLDER_ALIASES = {"spam": Folder.Role.JUNK, "bin": Folder.Role.TRASH}
ANY_FOLDER = frozenset({"anywhere", "all"})
FLAG_FILTERS = {
    "unread": Q(is_seen=False),
    "read": Q(is_seen=True),
    "flagged": Q(is_flagged=True),
    "answered": Q(is_answered=True),
    "draft": Q(is_draft=True),
}
NOTHING = Q(pk__in=[])


def search_messages(
    user: User,
    query: str,
    *,
    mailbox: Mailbox | None = None,
    folder: Folder | None = None,
    now: datetime | None = None,
) -> QuerySet[Message]:
    """The user's messages matching ``query``, newest first by ``(received_at, id)``.

    Scoped through :func:`mailcore.access.messages_for_user`; ``mailbox`` or ``folder`` narrow
    it further (one the user may not see gives an empty result, never someone else's mail).
    Raises :class:`~mailcore.search.query.SearchError` for a query the user must fix. The
    caller paginates by keyset on ``(received_at, id)``.
    """
    node = parse_query(query)
    messages = access.messages_for_user(user).order_by("-received_at", "-id")
    # The ids are fetched first so the planner sees constants and can walk msg_mailbox_recv /
    # msg_folder_recv newest first instead of sorting every match.
    mailbox_ids = sorted(access.mailboxes_for_user(user).values_list("id", flat=True))
    if mailbox is not None:
        mailbox_ids = [mailbox.id] if mailbox.id in mailbox_ids else []
    if folder is not None:
        mailbox_ids = [folder.mailbox_id] if folder.mailbox_id in mailbox_ids else []
    if node is None or not mailbox_ids:
        return messages.none()
    if len(mailbox_ids) == 1:
        messages = messages.filter(mailbox_id=mailbox_ids[0])
    else:
        messages = messages.filter(mailbox_id__in=mailbox_ids)
    compiler = QueryCompiler(mailbox_ids, now=now or timezone.now())
    condition = compiler.compile(node)
    if folder is not None:
        messages = messages.filter(folder_id=folder.id)
    elif not compiler.asks_for_hidden_folders(node):
        hidden = Folder.objects.filter(mailbox_id__in=mailbox_ids, role__in=HIDDEN_ROLES)
        messages = messages.exclude(folder_id__in=list(hidden.values_list("id", flat=True)))
    return messages.filter(condition)


def tsquery_lexeme(term: Text) -> str:
    """``term`` as one quoted to_tsquery operand: ``'value':*A``."""
    value = term.value.replace("\\", "\\\\").replace("'", "''")
    modifiers = "" if term.is_phrase or len(term.value) < 2 else "*"
    if term.field is not None:
        modifiers += WEIGHTS[term.field]
    return f"'{value}':{modifiers}" if modifiers else f"'{value}'"


def tsquery_text(node: Node) -> str | None:
    """The to_tsquery text of a node made only of text terms; ``None`` for any other node."""
    if isinstance(node, Text):
        return tsquery_lexeme(node)
    if isinstance(node, Not):
        inner = tsquery_text(node.term)
        return None if inner is None else f"!({inner})"
    if isinstance(node, And | Or):
        parts = [tsquery_text(term) for term in node.terms]
        if any(part is None for part in parts):
            return None
        return (" & " if isinstance(node, And) else " | ").join(f"({part})" for part in parts)
    return None


def matches_text(text: str) -> Q:
    return Q(search_vector=SearchQuery(text, search_type="raw", config=CONFIG))


class QueryCompiler:
    """Compiles nodes to ``Q``; looks folder and label names up within ``mailbox_ids``."""

    def __init__(self, mailbox_ids: list[int], *, now: datetime) -> None:
        self.mailbox_ids = mailbox_ids
        self.now = now
        self._folders: dict[str, list[tuple[int, str]]] = {}

    def compile(self, node: Node) -> Q:
        text = tsquery_text(node)
        if text is not None:
            return matches_text(text)
        if isinstance(node, Not):
            return ~self.compile(node.term)
        if isinstance(node, And | Or):
            return self._combine(node)
        if isinstance(node, Flag):
            return FLAG_FILTERS[node.name]
        if isinstance(node, HasAttachment):
            return Q(has_attachments=True)
        if isinstance(node, InFolder):
            if node.name.lower() in ANY_FOLDER:
                return Q()
            ids = [folder_id for folder_id, _ in self.folders_named(node.name)]
            return Q(folder_id__in=ids) if ids else NOTHING
        if isinstance(node, HasLabel):
            labels = Label.objects.filter(mailbox_id__in=self.mailbox_ids, name__iexact=node.name)
            label_ids = list(labels.values_list("id", flat=True))
            if not label_ids:
                return NOTHING
            links = Message.labels.through.objects.filter(
                message_id=OuterRef("pk"), label_id__in=label_ids
            )
            return Q(Exists(links))
        if isinstance(node, DateBound):
            start = start_of_day(node.day)
            return Q(received_at__lt=start) if node.op == "before" else Q(received_at__gte=start)
        if isinstance(node, Age):
            cutoff = age_cutoff(self.now, node.amount, node.unit)
            return Q(received_at__lt=cutoff) if node.op == "older" else Q(received_at__gte=cutoff)
        if isinstance(node, Size):
            return Q(size__gt=node.limit) if node.op == "larger" else Q(size__lt=node.limit)
        raise TypeError(f"unknown search node {node!r}")

    def _combine(self, node: And | Or) -> Q:
        """Adjacent text terms share one tsquery, so one GIN lookup answers all of them."""
        texts = [text for term in node.terms if (text := tsquery_text(term)) is not None]
        others = [term for term in node.terms if tsquery_text(term) is None]
        joiner = " & " if isinstance(node, And) else " | "
        parts = [matches_text(joiner.join(f"({text})" for text in texts))] if texts else []
        parts += [self.compile(term) for term in others]
        combined = parts[0]
        for part in parts[1:]:
            combined = combined & part if isinstance(node, And) else combined | part
        return combined

    def folders_named(self, name: str) -> list[tuple[int, str]]:
        """(id, role) of the folders whose role or name is ``name``, case-insensitively."""
        key = name.lower()
        if key not in self._folders:
            role = FOLDER_ALIASES.get(key, key)
            self._folders[key] = list(
                Folder.objects.filter(mailbox_id__in=self.mailbox_ids)
                .filter(Q(role=role) | Q(name__iexact=name))
                .values_list("id", "role")
            )
        return self._folders[key]

    def asks_for_hidden_folders(self, node: Node) -> bool:
        """Whether a non-negated ``in:`` names Trash, Junk or any folder."""
        for term, is_negated in walk(node):
            if not isinstance(term, InFolder) or is_negated:
                continue
            if term.name.lower() in ANY_FOLDER:
                return True
            if any(role in HIDDEN_ROLES for _, role in self.folders_named(term.name)):
                return True
        return False


def age_cutoff(now: datetime, amount: int, unit: str) -> datetime:
    """``now`` minus ``amount`` days, calendar months or calendar years."""
    if unit == "d":
        return now - timedelta(days=amount)
    months = amount * (12 if unit == "y" else 1)
    year, month = divmod(now.year * 12 + now.month - 1 - months, 12)
    month += 1
    day = min(now.day, calendar.monthrange(year, month)[1])
    return now.replace(year=year, month=month, day=day)


def start_of_day(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)
