"""Reading mail: the conversation page, the sandboxed HTML body, parts, raw source, downloads."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from urllib.parse import quote

from django.contrib.auth.decorators import login_required
from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from mailcore import access, mime
from mailcore.models import Attachment, Folder, Message, User
from mailcore.services import messages as message_actions
from webmail.models import Preferences
from webmail.sanitize import linkify_text, sanitize_html
from webmail.services.preferences import get_preferences, shows_remote_images, trust_sender
from webmail.sidebar import build_sidebar, url_pattern
from webmail.views.common import done, render_app, user_of

PART_SALT = "webmail.part"
PART_MAX_AGE = 24 * 3600
BODY_STYLE = (
    "html{color-scheme:light}body{margin:0;padding:4px 2px;font:15px/1.5 system-ui,sans-serif;"
    "color:#1f2328;overflow-wrap:anywhere}img{max-width:100%;height:auto}"
    "blockquote{margin:0 0 0 .8em;padding-left:.8em;border-left:3px solid #d0d7de}"
    "pre{white-space:pre-wrap}"
)
DOWNLOAD_POLICY = "default-src 'none'; sandbox"
INLINE_IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}
HIDDEN_ROLES = (Folder.Role.TRASH, Folder.Role.JUNK)
CID_RE = re.compile(r"cid:([^\s\"'()<>]+)", re.IGNORECASE)
MAX_CID_REFERENCES = 50


@dataclass(slots=True)
class Entry:
    """One message of a conversation as the page shows it."""

    message: Message
    is_expanded: bool
    text_html: str = ""
    has_html: bool = False
    body_url: str = ""
    blocked_images: int = 0
    images_shown: bool = False
    height: int = 300
    attachments: list[Attachment] = field(default_factory=list)
    cc: list[mime.Address] = field(default_factory=list)
    raw_url: str = ""


def _entry(
    user: User, message: Message, preferences: Preferences, *, expanded: bool, images: bool
) -> Entry:
    parsed = mime.parse_message(bytes(message.blob.data))
    entry = Entry(message, expanded, cc=parsed.cc)
    entry.attachments = [a for a in message.attachments.all() if not a.is_inline]
    if parsed.html:
        shown = images or shows_remote_images(user, preferences, message.from_address)
        result = sanitize_html(parsed.html, allow_remote=shown)
        entry.has_html = True
        entry.images_shown = shown
        entry.blocked_images = result.blocked_count
        url = reverse("webmail:message_body", args=[message.id])
        entry.body_url = url + ("?images=1" if images else "")
        entry.height = estimate_height(result.html)
    else:
        entry.text_html = linkify_text(parsed.text)
    return entry


def estimate_height(html: str) -> int:
    """Pixels for the body frame: its sandbox (no scripts, opaque origin) cannot be measured
    from the page, so guess from the text and the images; the frame scrolls and resizes."""
    text = mime.html_to_text(html)
    lines = sum(1 + len(line) // 110 for line in text.splitlines() if line.strip())
    images = html.count("<img")
    return max(120, min(3000, 48 + lines * 26 + images * 80))


@login_required
@require_GET
def conversation(request: HttpRequest, message_id: int) -> HttpResponse:
    """The thread of a message, oldest first; earlier read messages collapsed."""
    user = user_of(request)
    opened = access.get_message_for_user(user, message_id)
    thread = list(
        access.thread_messages_for_user(user, opened)
        .select_related("blob", "folder")
        .prefetch_related("labels", "attachments")
    )
    # The opened message as loaded with the thread: its labels are prefetched there.
    opened = next((m for m in thread if m.id == opened.id), opened)
    if opened.folder.role not in HIDDEN_ROLES:
        thread = [m for m in thread if m.folder.role not in HIDDEN_ROLES or m.id == opened.id]
    preferences = get_preferences(user)
    images_for = request.GET.get("images", "")
    entries = [
        _entry(
            user,
            message,
            preferences,
            expanded=message.id == opened.id or not message.is_seen or message is thread[-1],
            images=images_for == str(message.id),
        )
        for message in thread
    ]
    raw_url = url_pattern("webmail:message_raw")  # one reverse() for the whole thread
    for entry in entries:
        entry.raw_url = f"{raw_url[0]}{entry.message.id}{raw_url[1]}"
    unread = [m for m in thread if not m.is_seen]
    if unread:
        message_actions.set_seen(unread, True)
        for message in unread:
            message.is_seen = True
    # The sidebar already holds the folders and labels of every mailbox the user sees (through
    # the access layer): the move and label menus take theirs from it, no further queries.
    sidebar = build_sidebar(user)
    group = next((g for g in sidebar if g.mailbox.id == opened.mailbox_id), None)
    folders = [
        f
        for f in (group.folders if group else [])
        if f.id != opened.folder_id and f.role != Folder.Role.DRAFTS
    ]
    labels = list(group.labels) if group else []
    return render_app(
        request,
        "webmail/thread.html",
        {
            "sidebar": sidebar,
            "compose_url": reverse("webmail:compose"),
            "back_url": reverse("webmail:folder", args=[opened.folder_id]),
            "opened": opened,
            "entries": entries,
            "thread_ids": [m.id for m in thread],
            "title": opened.subject or "(no subject)",
            "folder": opened.folder,
            "move_folders": folders,
            "mailbox_labels": labels,
        },
    )


def part_url(user: User, message: Message, path: str) -> str:
    """A signed same-origin URL for one part: the sandboxed frame sends no session cookie."""
    token = signing.dumps([user.pk, message.id, path], salt=PART_SALT, compress=True)
    return reverse("webmail:message_part", args=[message.id, path]) + "?t=" + quote(token)


def cid_map(user: User, message: Message, raw: bytes, body: str) -> dict[str, str]:
    """``cid:`` references of the HTML body -> signed URLs of the parts they name."""
    references = list(dict.fromkeys(CID_RE.findall(html.unescape(body))))[:MAX_CID_REFERENCES]
    found = {}
    for reference in references:
        path = mime.find_part_by_content_id(raw, reference)
        if path is not None:
            found[reference] = part_url(user, message, path)
    return found


def body_policy(request: HttpRequest, allow_remote: bool) -> str:
    origin = f"{request.scheme}://{request.get_host()}"
    images = f"img-src 'self' {origin} data:" + (" https: http:" if allow_remote else "")
    return f"default-src 'none'; {images}; style-src 'unsafe-inline'; frame-ancestors 'self'"


@login_required
@require_GET
def message_body(request: HttpRequest, message_id: int) -> HttpResponse:
    """The sanitized HTML body as a document of its own, for ``<iframe sandbox>``."""
    user = user_of(request)
    message = access.get_message_for_user(user, message_id)
    raw = bytes(message.blob.data)
    parsed = mime.parse_message(raw)
    preferences = get_preferences(user)
    allow_remote = request.GET.get("images") == "1" or shows_remote_images(
        user, preferences, message.from_address
    )
    cid_urls = cid_map(user, message, raw, parsed.html or "")
    result = sanitize_html(parsed.html or "", allow_remote=allow_remote, cid_urls=cid_urls)
    document = (
        '<!doctype html><html><head><meta charset="utf-8">'
        f"<style>{BODY_STYLE}</style></head><body>{result.html}</body></html>"
    )
    response = HttpResponse(document, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = body_policy(request, allow_remote)
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
def message_part(request: HttpRequest, message_id: int, path: str) -> HttpResponse:
    """A ``cid:`` image of a message, authorized by the signed token in its URL."""
    try:
        user_id, signed_message_id, signed_path = signing.loads(
            request.GET.get("t", ""), salt=PART_SALT, max_age=PART_MAX_AGE
        )
    except (signing.BadSignature, ValueError) as exc:
        raise Http404("No such part.") from exc
    if signed_message_id != message_id or signed_path != path:
        raise Http404("No such part.")
    user = User.objects.filter(id=user_id, is_active=True).first()
    if user is None:
        raise Http404("No such part.")
    message = access.get_message_for_user(user, message_id)
    try:
        data, content_type, _ = mime.extract_part(bytes(message.blob.data), path)
    except KeyError as exc:
        raise Http404("No such part.") from exc
    if content_type not in INLINE_IMAGE_TYPES:
        raise Http404("Not an image.")
    response = HttpResponse(data, content_type=content_type)
    response["Content-Security-Policy"] = DOWNLOAD_POLICY
    response["Cache-Control"] = "private, max-age=3600"
    # The sandboxed frame's document has an opaque origin, which no narrower policy admits;
    # the signed token is what authorizes this response.
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


def _download(content: bytes | str, content_type: str, disposition: str) -> HttpResponse:
    """Stored bytes handed to the browser: never sniffed, never run, never cached."""
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = disposition
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = DOWNLOAD_POLICY
    response["Cache-Control"] = "private, no-store"
    return response


def _disposition(kind: str, filename: str) -> str:
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_").replace("\\", "_")
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


@login_required
@require_GET
def attachment(request: HttpRequest, attachment_id: int) -> HttpResponse:
    found = access.get_attachment_for_user(user_of(request), attachment_id)
    try:
        data, content_type, filename = mime.extract_part(bytes(found.message.blob.data), found.path)
    except KeyError as exc:
        raise Http404("No such attachment.") from exc
    return _download(
        data,
        content_type or "application/octet-stream",
        _disposition("attachment", found.filename or filename),
    )


@login_required
@require_GET
def raw_source(request: HttpRequest, message_id: int) -> HttpResponse:
    message = access.get_message_for_user(user_of(request), message_id)
    raw = bytes(message.blob.data)
    kind = "attachment" if request.GET.get("download") else "inline"
    return _download(
        raw.decode("utf-8", "replace"),
        "text/plain; charset=utf-8",
        _disposition(kind, f"message-{message.id}.eml"),
    )


@login_required
@require_POST
def trust(request: HttpRequest, message_id: int) -> HttpResponse:
    """ "Always show images from this sender"."""
    message = access.get_message_for_user(user_of(request), message_id)
    trust_sender(user_of(request), message.from_address)
    return done(
        request,
        f"Images from {message.from_address} will always be shown.",
        fallback=reverse("webmail:message", args=[message.id]),
    )
