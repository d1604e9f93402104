"""Sanitizing untrusted HTML mail for display in the webmail.

This module is the security boundary for HTML mail. The webmail shows its output inside an
``<iframe sandbox>`` under a strict CSP, but the output must be safe without that help: it can
run no script, and with ``allow_remote=False`` it makes the browser fetch nothing except
``data:image`` URIs and the same-origin URLs the caller supplies for ``cid:`` parts.

Layers:

* nh3 (ammonia, an html5ever-based parser) parses the mail the way a browser does and keeps
  only the tags and attributes below, dropping comments; ``<a>`` gets ``target="_blank"`` and
  ``rel="noopener noreferrer"``. Foreign content (``<svg>``, ``<math>``) and raw-text elements
  are removed together with their content, so the re-serialized output has no parsing context
  in which escaped text could turn back into markup (the mutation-XSS family).
* ``_AttributeFilter`` is the last word on every URL-bearing attribute (``href``, ``src``,
  ``background``) and on ``style``.

Decisions:

* ``<style>`` blocks are dropped with their content. Mail is written for clients that ignore
  them, so inline styles carry the layout, and a fragment without global CSS stays harmless if
  a caller ever renders it outside its own document.
* CSS is filtered by our own property allow-list (``sanitize_css``), not by nh3's
  ``filter_style_properties``: nh3 applies that after the attribute filter and re-serializes
  the declarations (it decodes escapes and rewrites ``url()`` values), so it would be the last
  layer and its output could not be checked here.
* ``url()`` is kept only in ``background``/``background-image`` and only for what an ``<img>``
  could load: a ``cid:`` part the caller mapped, a ``data:image`` URI, or with
  ``allow_remote=True`` an http(s) URL. Every other fetching function (``image-set()``, ...)
  is rejected by a function allow-list.
* Remote images lose their ``src`` and are counted in ``blocked_count``; the element stays so
  the layout keeps its size and ``alt`` text.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import nh3

__all__ = ["SanitizedHtml", "linkify_text", "sanitize_css", "sanitize_html"]


@dataclass(frozen=True, slots=True)
class SanitizedHtml:
    html: str
    has_remote_content: bool
    blocked_count: int


_ALLOWED_TAGS = frozenset(
    {
        *("a", "abbr", "address", "article", "aside", "b", "bdi", "bdo", "big", "blockquote"),
        *("br", "caption", "center", "cite", "code", "col", "colgroup", "dd", "del", "dfn"),
        *("div", "dl", "dt", "em", "figcaption", "figure", "font", "footer", "h1", "h2", "h3"),
        *("h4", "h5", "h6", "header", "hr", "i", "img", "ins", "kbd", "li", "main", "mark"),
        *("nobr", "ol", "p", "pre", "q", "s", "samp", "section", "small", "span", "strike"),
        *("strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "time", "tr"),
        *("tt", "u", "ul", "var", "wbr"),
    }
)

# Removed together with everything inside them: script and raw-text elements, foreign content
# (where the parser's rules differ), embedded documents, and form controls whose text is noise.
_CLEAN_CONTENT_TAGS = frozenset(
    {
        *("script", "style", "svg", "math", "template", "noscript", "noembed", "noframes"),
        *("iframe", "frame", "frameset", "object", "embed", "applet", "title", "xmp"),
        *("plaintext", "textarea", "select", "head"),
    }
)

_GENERIC_ATTRIBUTES = frozenset(
    {"align", "valign", "bgcolor", "dir", "lang", "title", "style", "width", "height"}
)
_CELL_ATTRIBUTES = frozenset({"colspan", "rowspan", "nowrap", "background", "scope", "abbr"})
_ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "*": set(_GENERIC_ATTRIBUTES),
    "a": {"href"},
    "img": {"src", "alt", "border", "hspace", "vspace"},
    "table": {"border", "cellpadding", "cellspacing", "background", "summary", "frame", "rules"},
    "tr": {"background"},
    "td": set(_CELL_ATTRIBUTES),
    "th": set(_CELL_ATTRIBUTES),
    "col": {"span"},
    "colgroup": {"span"},
    "font": {"color", "face", "size"},
    "hr": {"color", "noshade", "size"},
    "ol": {"start", "type", "reversed"},
    "ul": {"type"},
    "li": {"value", "type"},
    "time": {"datetime"},
}
# A first gate in nh3; _AttributeFilter decides per attribute which of these may appear.
_NH3_URL_SCHEMES = frozenset({"http", "https", "mailto", "cid", "data"})
_LINK_REL = "noopener noreferrer"

_URL_SCHEME_RE = re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*):")
_DATA_IMAGE_RE = re.compile(
    r"data:image/(?:png|gif|jpeg|jpg|webp);base64,[A-Za-z0-9+/=\s]*\Z", re.I
)
# Root-relative path on our own origin; "//" and "/\" would leave it.
_SAME_ORIGIN_PATH_RE = re.compile(r"/(?![/\\])[^\s\"'\\<>()]*\Z")
# What may appear inside url("...") in our CSS output.
_CSS_URL_VALUE_RE = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+\Z")


@dataclass(slots=True)
class _RemoteCounter:
    found: int = 0
    blocked: int = 0


_C0_AND_SPACE = "".join(chr(code) for code in range(0x21))
_TAB_NEWLINE = str.maketrans("", "", "\t\n\r")


def _normalize_url(raw: str) -> str:
    # What a browser does before parsing: trim C0 controls and spaces, drop tabs and newlines.
    return raw.strip(_C0_AND_SPACE).translate(_TAB_NEWLINE)


def _scheme(url: str) -> str | None:
    match = _URL_SCHEME_RE.match(url)
    return match.group(1).lower() if match else None


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def _link_url(raw: str) -> str | None:
    url = _normalize_url(raw)
    scheme = _scheme(url)
    if scheme in ("http", "https"):
        return url if _is_http_url(url) else None
    if scheme == "mailto" and len(url) > len("mailto:"):
        return url
    return None


def _resolve_cid(reference: str, cid_urls: Mapping[str, str] | None) -> str | None:
    if not cid_urls:
        return None
    decoded = unquote(reference)
    for key in (reference, decoded, decoded.strip("<>")):
        target = cid_urls.get(key)
        if target is not None:
            return target if _SAME_ORIGIN_PATH_RE.match(target) else None
    return None


def _image_url(
    raw: str,
    *,
    allow_remote: bool,
    cid_urls: Mapping[str, str] | None,
    counter: _RemoteCounter,
) -> str | None:
    """Return the URL an image may load from, or None to drop it."""
    url = _normalize_url(raw)
    if url.startswith("//"):
        url = "https:" + url
    scheme = _scheme(url)
    if scheme == "cid":
        return _resolve_cid(url[len("cid:") :], cid_urls)
    if scheme == "data":
        return url if _DATA_IMAGE_RE.match(url) else None
    if scheme in ("http", "https") and _is_http_url(url):
        counter.found += 1
        if allow_remote:
            return url
        counter.blocked += 1
    return None


# --- CSS -------------------------------------------------------------------------------------

_CSS_PROPERTIES = frozenset(
    {
        *("background", "background-color", "background-image", "background-position"),
        *("background-repeat", "background-size", "background-clip", "background-origin"),
        *("border", "border-color", "border-style", "border-width", "border-collapse"),
        *("border-spacing", "border-radius", "outline", "box-shadow", "box-sizing"),
        *(
            f"border-{side}{part}"
            for side in ("top", "right", "bottom", "left")
            for part in ("", "-color", "-style", "-width")
        ),
        *(
            f"border-{corner}-radius"
            for corner in ("top-left", "top-right", "bottom-left", "bottom-right")
        ),
        *(
            f"{box}{side}"
            for box in ("margin", "padding")
            for side in ("", "-top", "-right", "-bottom", "-left")
        ),
        *("width", "height", "min-width", "max-width", "min-height", "max-height"),
        *("color", "opacity", "visibility", "display", "float", "clear", "overflow"),
        *("overflow-x", "overflow-y", "position", "top", "right", "bottom", "left", "z-index"),
        *("font", "font-family", "font-size", "font-style", "font-variant", "font-weight"),
        *("line-height", "letter-spacing", "word-spacing", "text-align", "text-decoration"),
        *("text-decoration-line", "text-decoration-color", "text-decoration-style"),
        *("text-indent", "text-transform", "text-shadow", "text-overflow", "white-space"),
        *("word-break", "word-wrap", "overflow-wrap", "hyphens", "vertical-align"),
        *("direction", "unicode-bidi", "table-layout", "caption-side", "empty-cells"),
        *("list-style", "list-style-type", "list-style-position", "-webkit-text-size-adjust"),
        *("-ms-text-size-adjust", "text-size-adjust"),
    }
)
_CSS_URL_PROPERTIES = frozenset({"background", "background-image"})
# Functions that compute a value and never fetch; url() is handled separately.
_CSS_FUNCTIONS = frozenset(
    {
        *("rgb", "rgba", "hsl", "hsla", "calc", "min", "max", "clamp"),
        *("linear-gradient", "radial-gradient", "repeating-linear-gradient"),
        *("repeating-radial-gradient", "-webkit-linear-gradient", "-webkit-radial-gradient"),
        *("-moz-linear-gradient", "-moz-radial-gradient", "-o-linear-gradient"),
    }
)
_CSS_POSITIONS = frozenset({"static", "relative"})
# Refused in a value outside url(): old IE script hooks, at-rules, braces, markup, escapes,
# comments, and "!" other than a trailing !important.
_CSS_FORBIDDEN_RE = re.compile(
    r"expression|javascript|vbscript|behavior|binding|[@{}<>\\!]|/\*|\*/"
)

_CSS_COMMENT_RE = re.compile(r"/\*.*?(?:\*/|\Z)", re.S)
_CSS_TOKEN_RE = re.compile(r""""(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'|[();]|[^"'();]+|.""", re.S)
_CSS_ESCAPE_RE = re.compile(r"\\(?:([0-9a-fA-F]{1,6})(?:\r\n|[ \t\r\n\f])?|(.)|\Z)", re.S)
_CSS_IMPORTANT_RE = re.compile(r"!\s*important\s*\Z", re.I)
_CSS_URL_RE = re.compile(
    r"""(?<![-\w])url\(\s*(?:"([^"\n]*)"|'([^'\n]*)'|([^\s"'()]*))\s*\)""", re.I
)
_CSS_FUNCTION_RE = re.compile(r"(-?[a-z_][a-z0-9_-]*)\s*\(")
_CSS_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def _split_declarations(style: str) -> list[str | None]:
    """Split on top-level semicolons; a piece with unbalanced quotes or parens becomes None."""
    if not any(char in style for char in "\"'()"):
        return [*style.split(";")]
    pieces: list[str | None] = []
    current: list[str] = []
    depth = 0
    is_broken = False
    for token in _CSS_TOKEN_RE.findall(style):
        if token == ";" and depth == 0:
            pieces.append(None if is_broken else "".join(current))
            current, is_broken = [], False
            continue
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
            if depth < 0:
                is_broken, depth = True, 0
        elif token in ('"', "'"):
            is_broken = True
        current.append(token)
    if current:
        pieces.append(None if is_broken or depth else "".join(current))
    return pieces


def _is_safe_escaped_char(char: str) -> bool:
    # Letters and digits are decoded so that "\75 rl(" is seen (and rejected) as "url(";
    # anything that could change how the declaration tokenizes is refused instead.
    return char.isalnum() or char in "-_" or (ord(char) >= 0x80 and char.isprintable())


def _decode_css_escapes(text: str) -> str | None:
    if "\\" not in text:
        return text
    is_safe = True

    def replace(match: re.Match[str]) -> str:
        nonlocal is_safe
        hex_digits, literal = match.group(1), match.group(2)
        if hex_digits is not None:
            code_point = int(hex_digits, 16)
            is_valid = 0 < code_point <= 0x10FFFF and not 0xD800 <= code_point <= 0xDFFF
            char = chr(code_point) if is_valid else "\ufffd"
        elif literal is not None and literal not in "\r\n\f":
            char = literal
        else:
            char = "\\"
        if not _is_safe_escaped_char(char):
            is_safe = False
        return char

    decoded = _CSS_ESCAPE_RE.sub(replace, text)
    return decoded if is_safe else None


@functools.lru_cache(maxsize=4096)
def _check_declaration(piece: str) -> tuple[str, str, bool] | None:
    """Everything about one declaration that does not depend on the caller's URL policy.

    Returns the property, the normalized value (``!important`` included) and whether the value
    holds ``url()`` tokens still to be resolved, or None to drop the declaration.
    """
    decoded = _decode_css_escapes(piece) if "\\" in piece else piece
    if decoded is None:
        return None
    name, colon, value = decoded.partition(":")
    name = name.strip().lower()
    if not colon or name not in _CSS_PROPERTIES or _CSS_CONTROL_RE.search(value):
        return None
    value = " ".join(value.split())
    important = _CSS_IMPORTANT_RE.search(value)
    if important:
        value = value[: important.start()].rstrip()
    if not value:
        return None
    has_function = "(" in value
    outside_urls = (_CSS_URL_RE.sub(" ", value) if has_function else value).lower()
    if _CSS_FORBIDDEN_RE.search(outside_urls):
        return None
    if has_function:
        for function in _CSS_FUNCTION_RE.findall(outside_urls):
            if function not in _CSS_FUNCTIONS:  # includes a url( that _CSS_URL_RE did not parse
                return None
    if name == "position" and outside_urls not in _CSS_POSITIONS:
        return None
    has_url = has_function and "url(" in value.lower()
    if has_url and name not in _CSS_URL_PROPERTIES:
        return None
    return name, value + (" !important" if important else ""), has_url


def _filter_declaration(
    piece: str,
    *,
    allow_remote: bool,
    cid_urls: Mapping[str, str] | None,
    counter: _RemoteCounter,
) -> str | None:
    checked = _check_declaration(piece)
    if checked is None:
        return None
    name, value, has_url = checked
    if has_url:
        has_rejected_url = False

        def replace_url(match: re.Match[str]) -> str:
            nonlocal has_rejected_url
            raw = next((group for group in match.groups() if group is not None), "")
            url = _image_url(raw, allow_remote=allow_remote, cid_urls=cid_urls, counter=counter)
            if url is None or not _CSS_URL_VALUE_RE.match(url):
                has_rejected_url = True
                return ""
            return f'url("{url}")'

        value = _CSS_URL_RE.sub(replace_url, value)
        if has_rejected_url:
            return None
    return f"{name}: {value}"


def _filter_css(
    style: str,
    *,
    allow_remote: bool,
    cid_urls: Mapping[str, str] | None,
    counter: _RemoteCounter,
) -> str:
    # Comments go first and the result is what gets checked and emitted, so a comment can
    # neither hide a token from the checks nor split one in the output.
    if "/*" in style:
        style = _CSS_COMMENT_RE.sub("", style)
    kept = []
    for piece in _split_declarations(style):
        if piece is None or not piece.strip():
            continue
        declaration = _filter_declaration(
            piece, allow_remote=allow_remote, cid_urls=cid_urls, counter=counter
        )
        if declaration is not None:
            kept.append(declaration)
    return "; ".join(kept)


def sanitize_css(style: str, *, allow_remote: bool) -> str:
    """Filter a declaration list (a ``style`` attribute's value) to harmless properties.

    Returns the kept declarations joined by ``"; "``, with CSS escapes decoded and comments
    removed. ``url()`` survives only in backgrounds: ``data:image`` always, http(s) only with
    ``allow_remote``; ``cid:`` needs ``sanitize_html``'s mapping and is dropped here.
    """
    return _filter_css(style, allow_remote=allow_remote, cid_urls=None, counter=_RemoteCounter())


# --- HTML ------------------------------------------------------------------------------------


class _AttributeFilter:
    """nh3 attribute callback: applies the URL and CSS policy and counts remote resources."""

    __slots__ = ("allow_remote", "cid_urls", "counter", "styles")

    def __init__(self, *, allow_remote: bool, cid_urls: Mapping[str, str] | None) -> None:
        self.allow_remote = allow_remote
        self.cid_urls = cid_urls
        self.counter = _RemoteCounter()
        # Newsletters repeat the same style attribute hundreds of times.
        self.styles: dict[str, tuple[str | None, _RemoteCounter]] = {}

    def __call__(self, element: str, attribute: str, value: str) -> str | None:
        # nh3 also asks about elements it is about to drop (<script src>, <embed src>); they
        # load nothing, so they must not count as remote content.
        if element not in _ALLOWED_TAGS:
            return None
        if attribute == "style":
            return self._style(value)
        if attribute == "href":
            return _link_url(value)
        if attribute in ("src", "background"):
            return _image_url(
                value, allow_remote=self.allow_remote, cid_urls=self.cid_urls, counter=self.counter
            )
        return value

    def _style(self, value: str) -> str | None:
        cached = self.styles.get(value)
        if cached is None:
            remote = _RemoteCounter()
            filtered = _filter_css(
                value, allow_remote=self.allow_remote, cid_urls=self.cid_urls, counter=remote
            )
            cached = self.styles[value] = (filtered or None, remote)
        style, remote = cached
        self.counter.found += remote.found
        self.counter.blocked += remote.blocked
        return style


def sanitize_html(
    html: str, *, allow_remote: bool = False, cid_urls: Mapping[str, str] | None = None
) -> SanitizedHtml:
    """Turn an untrusted HTML mail body into a safe body fragment.

    ``cid_urls`` maps a Content-ID (without angle brackets) to a root-relative URL on our own
    origin that serves that part; other values are ignored. With ``allow_remote=False`` remote
    images and backgrounds are removed and counted in ``blocked_count``.
    """
    attribute_filter = _AttributeFilter(allow_remote=allow_remote, cid_urls=cid_urls)
    cleaned = nh3.clean(
        html,
        tags=set(_ALLOWED_TAGS),
        clean_content_tags=set(_CLEAN_CONTENT_TAGS),
        attributes=_ALLOWED_ATTRIBUTES,
        attribute_filter=attribute_filter,
        strip_comments=True,
        link_rel=_LINK_REL,
        set_tag_attribute_values={"a": {"target": "_blank"}},
        url_schemes=set(_NH3_URL_SCHEMES),
    )
    counter = attribute_filter.counter
    return SanitizedHtml(
        html=cleaned.strip(), has_remote_content=counter.found > 0, blocked_count=counter.blocked
    )


# --- Plain text ------------------------------------------------------------------------------

_LINKIFY_RE = re.compile(
    r"(?P<url>\bhttps?://[^\s<>\"'\x00-\x1f\x7f]+)"
    r"|(?P<email>(?<![\w.%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})",
    re.I,
)
_TRAILING_PUNCTUATION = ".,;:!?*"
_CLOSING_BRACKETS = {")": "(", "]": "[", "}": "{"}


def _trim_url(url: str) -> str:
    """Drop punctuation that ends the sentence rather than the URL; keep balanced brackets."""
    while url:
        last = url[-1]
        is_unbalanced = last in _CLOSING_BRACKETS and url.count(last) > url.count(
            _CLOSING_BRACKETS[last]
        )
        if last not in _TRAILING_PUNCTUATION and not is_unbalanced:
            break
        url = url[:-1]
    return url


def _anchor(href: str, text: str) -> str:
    return (
        f'<a href="{html.escape(href, quote=True)}" target="_blank" rel="{_LINK_REL}">'
        f"{html.escape(text, quote=False)}</a>"
    )


def linkify_text(text: str) -> str:
    """Render a plain-text body as safe HTML.

    Everything is escaped; http(s) URLs and e-mail addresses become links that open in a new
    tab; line breaks become ``<br>`` (the caller may add ``white-space: pre-wrap`` to keep runs
    of spaces, which does not double the breaks).
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    parts: list[str] = []
    position = 0
    for match in _LINKIFY_RE.finditer(text):
        start = match.start()
        if match.group("url") is not None:
            url = _trim_url(match.group("url"))
            if not _is_http_url(url):
                continue
            end = start + len(url)
            link = _anchor(url, url)
        else:
            address = match.group("email")
            end = match.end()
            link = _anchor(f"mailto:{address}", address)
        parts.append(html.escape(text[position:start], quote=False))
        parts.append(link)
        position = end
    parts.append(html.escape(text[position:], quote=False))
    return "".join(parts).replace("\n", "<br>")
