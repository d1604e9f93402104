"""The folder and label lists every page shows (two queries)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.urls import reverse

from mailcore import access
from mailcore.models import Folder, Label, Mailbox, User

ROLE_ORDER = {role: index for index, role in enumerate(["inbox", "drafts", "sent", "archive"])}
ROLE_ORDER.update({"junk": 90, "trash": 91})
ROLE_ICONS = {role: role for role in ("inbox", "drafts", "sent", "archive", "junk", "trash")}


@dataclass(slots=True)
class MailboxGroup:
    mailbox: Mailbox
    folders: list[Folder] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)


_SENTINEL = 987654321987654321


def url_pattern(name: str) -> tuple[str, str]:
    """The URL named ``name`` around its one id: one ``reverse()`` for every link of a list."""
    before, after = reverse(name, args=[_SENTINEL]).split(str(_SENTINEL))
    return before, after


def build_sidebar(user: User) -> list[MailboxGroup]:
    """Every mailbox the user sees with its folders (``icon_name`` and ``url`` set) and labels
    (``url`` set)."""
    groups: dict[int, MailboxGroup] = {}
    folder_url = url_pattern("webmail:folder")
    for folder in access.folders_for_user(user).select_related("mailbox"):
        group = groups.setdefault(folder.mailbox_id, MailboxGroup(folder.mailbox))
        folder.icon_name = ROLE_ICONS.get(folder.role, "folder")  # type: ignore[attr-defined]
        folder.url = f"{folder_url[0]}{folder.id}{folder_url[1]}"  # type: ignore[attr-defined]
        group.folders.append(folder)
    label_url = url_pattern("webmail:label")
    for label in access.labels_for_user(user).order_by("name"):
        if label.mailbox_id in groups:
            label.url = f"{label_url[0]}{label.id}{label_url[1]}"  # type: ignore[attr-defined]
            groups[label.mailbox_id].labels.append(label)
    for group in groups.values():
        group.folders.sort(key=lambda f: (ROLE_ORDER.get(f.role, 50), f.name.lower()))
    return sorted(groups.values(), key=lambda g: (g.mailbox.user_id != user.pk, g.mailbox.address))
