"""Gmail-style search over a user's mail (PostgreSQL full text plus column filters).

``parse_query`` (pure, in :mod:`mailcore.search.query`) turns the text into a tree;
:mod:`mailcore.search.compile` turns the tree into a filter. The query language and every
decision about it are documented in the docstrings of those two modules.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from mailcore.search.query import Node, SearchError, parse_query

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from mailcore.models import Folder, Mailbox, Message, User

__all__ = ["Node", "SearchError", "parse_query", "search_messages"]


def search_messages(
    user: User,
    query: str,
    *,
    mailbox: Mailbox | None = None,
    folder: Folder | None = None,
    now: datetime | None = None,
) -> QuerySet[Message]:
    """The user's messages matching ``query``, newest first by ``(received_at, id)``.

    Only messages of mailboxes the user may see (``mailcore.access``); ``mailbox`` or ``folder``
    narrow the search. Raises :class:`SearchError` (its text is fit for the UI) for a query the
    user must fix. Paginate the result by keyset on ``(received_at, id)``.
    """
    # Imported here so that ``mailcore.search.query`` can be used without Django set up.
    from mailcore.search.compile import search_messages as run

    return run(user, query, mailbox=mailbox, folder=folder, now=now)
