"""A corpus of markup and script-injection payloads for the chat panel's rendering tests.

Each template holds ``§`` where its JavaScript goes; :func:`payloads` puts a call to a marker
function there, unique per payload (``window.__xss('p07')``), so a trap in the page can tell
which payload ran, if any did. Encoded variants are encoded after the marker is in, so they
carry the marker in the same encoding as the markup around it.
"""

from __future__ import annotations

import html
import urllib.parse
from collections.abc import Callable
from typing import NamedTuple

SLOT = "§"

#: (template, transformation applied after the marker is in)
Template = tuple[str, Callable[[str], str]]


def _same(text: str) -> str:
    return text


def _html_entities(text: str) -> str:
    return html.escape(text)


def _double_entities(text: str) -> str:
    return html.escape(html.escape(text))


def _decimal_entities(text: str) -> str:
    return "".join(f"&#{ord(c)};" if c in "<>\"'" else c for c in text)


def _hex_entities(text: str) -> str:
    return "".join(f"&#x{ord(c):X};" if c in "<>\"'" else c for c in text)


def _url_encoded(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def _double_url_encoded(text: str) -> str:
    return urllib.parse.quote(urllib.parse.quote(text, safe=""), safe="")


def _js_escapes(text: str) -> str:
    return text.replace("<", "\\u003c").replace(">", "\\u003e")


def _hex_escapes(text: str) -> str:
    return text.replace("<", "\\x3c").replace(">", "\\x3e")


TEMPLATES: list[Template] = [(t, _same) for t in [
    # script elements
    "<script>§</script>",
    "<SCRIPT>§</SCRIPT>",
    "<script src=\"data:text/javascript,§\"></script>",
    "<script type=\"module\">§</script>",
    "\"><script>§</script>",
    "'><script>§</script><'",
    "</span></li></ol><script>§</script>",
    "<scr<script>ipt>§</scr</script>ipt>",
    # event-handler attributes
    "<img src=x onerror=§>",
    "<img src=\"x\" onerror=\"§\">",
    "<IMG SRC=x OnErRoR=§>",
    "<img/src=x/onerror=§>",
    "<svg onload=§>",
    "<svg/onload=§//",
    "<body onload=§>",
    "<iframe onload=§></iframe>",
    "<details open ontoggle=§>",
    "<video><source onerror=§></video>",
    "<video src=x onerror=§></video>",
    "<audio src=x onerror=§>",
    "<input autofocus onfocus=§>",
    "<marquee onstart=§>x</marquee>",
    "<div onmouseover=§ style=\"position:fixed;inset:0\">hover me</div>",
    "<style onload=§></style>",
    # javascript: URLs and other documents
    "javascript:§",
    "<a href=\"javascript:§\">click</a>",
    "<a href=\"JaVaScRiPt:§\">click</a>",
    "<a href=\"jav&#x09;ascript:§\">click</a>",
    "<iframe src=\"javascript:§\"></iframe>",
    "<iframe srcdoc=\"<script>parent.§</script>\"></iframe>",
    "<object data=\"javascript:§\"></object>",
    "<embed src=\"javascript:§\">",
    "<form><button formaction=javascript:§>go</button></form>",
    "<math><a xlink:href=\"javascript:§\">click</a></math>",
    # SVG
    "<svg><script>§</script></svg>",
    "<svg><script href=\"data:,§\"/></svg>",
    "<svg><foreignObject><img src=x onerror=§></foreignObject></svg>",
    "<svg><animate onbegin=§ attributeName=x dur=1s>",
    "<svg><a><animate attributeName=href values=javascript:§ /><text x=20 y=20>click</text></a></svg>",
    "<svg><set onbegin=§ attributeName=x to=1>",
    "<math><mtext><table><mglyph><style><img src=x onerror=§>",
    # CSS
    "<style>@import 'javascript:§';</style>",
    "<style>*{background:url(\"javascript:§\")}</style>",
    "<div style=\"background:url(javascript:§)\">x</div>",
    "<div style=\"width:expression(§)\">x</div>",
    "<link rel=stylesheet href=\"javascript:§\">",
    # template and markdown injection
    "{{constructor.constructor(\"§\")()}}",
    "${§}",
    "<%= § %>",
    "[click](javascript:§)",
    "![x](x\" onerror=\"§)",
    "`<img src=x onerror=§>`",
    "<https://example.invalid\" onmouseover=\"§>",
    # unicode tricks
    "\u202e<img src=x onerror=§>\u202d",
    "<scr\u200bipt>§</scr\u200bipt>",
    "\ufeff<svg onload=§>",
    "<img\u200dsrc=x\u200donerror=§>",
    "\uff1cscript\uff1e§\uff1c/script\uff1e",
    "<\u0455cript>§</\u0455cript>",
    "\u2028<script>§</script>\u2029",
    "\u226escript>§</script>",
    "\U0001f600<img src=x onerror=§>\U0001f600",
    "<img\nsrc=x\tonerror=§>",
    # broken and unclosed tags
    "<img src=x onerror=§",
    "<<script>§//<</script>",
    "<script>§",
    "<img \"\"\"><script>§</script>\">",
    "<a href=\"</a><script>§</script>\">",
    "</textarea></title></style><script>§</script>",
    "</noscript><img src=x onerror=§>",
    # comments and CDATA
    "<!--<img src=\"--><img src=x onerror=§//\">",
    "<![CDATA[<script>§</script>]]>",
    "<!--[if gte IE 4]><script>§</script><![endif]-->",
    "<svg><![CDATA[><image xlink:href=\"]]><img src=x onerror=§>\"]]></svg>",
    "--><script>§</script>",
    # links: only http(s) URLs become anchors, whose href comes from the parsed URL
    "https://example.invalid/\"><img src=x onerror=§>",
    "https://example.invalid/'><svg onload=§>",
    "https://example.invalid/\" onmouseover=\"§\" x=\"",
    "https://example.invalid/' onmouseover='§' x='",
    "https://example.invalid/?q=<script>§</script>",
    "https://example.invalid/</a><img src=x onerror=§>",
    "https://example.invalid/(<svg onload=§>)",
    "https://example.invalid/`<img src=x onerror=§>`",
    "https://javascript:§@example.invalid/",
    "javascript:§//https://example.invalid/",
    "JaVaScRiPt:§ https://example.invalid/",
    "data:text/html,<script>§</script> https://example.invalid/",
    "vbscript:§ http://example.invalid/",
    "https://example.invalid/\u202e<img src=x onerror=§>",
    "[https://example.invalid/](javascript:§)",
    "<a href=\"https://example.invalid/\" onclick=\"§\">https://example.invalid/</a>",
]] + [
    # HTML entities, URL encoding, JS escapes: shown literally, never decoded
    ("<script>§</script>", _html_entities),
    ("<img src=x onerror=§>", _double_entities),
    ("<img src=x onerror=§>", _decimal_entities),
    ("<svg onload=§>", _hex_entities),
    ("<script>§</script>", _url_encoded),
    ("<img src=x onerror=§>", _double_url_encoded),
    ("<script>§</script>", _js_escapes),
    ("<img src=x onerror=§>", _hex_escapes),
]


class Payload(NamedTuple):
    label: str  # "p07": what the payload's script would pass to the marker function
    text: str


def marker_call(label: str) -> str:
    return f"window.__xss('{label}')"


def payloads(max_length: int) -> list[Payload]:
    """Every template with its marker, plus long ones filling a message of ``max_length`` code points."""
    corpus = [Payload(f"p{n:02d}", transform(template.replace(SLOT, marker_call(f"p{n:02d}"))))
              for n, (template, transform) in enumerate(TEMPLATES)]
    n = len(corpus)
    corpus.append(_filled(f"p{n:02d}", "<b>" * 40, "<img src=x onerror=§>", "A", max_length))
    # Two UTF-8 bytes per padding character: also the longest display name a token's 1 KB holds.
    corpus.append(_filled(f"p{n + 1:02d}", "<i>", "<script>§</script>", "\u00e9", max_length))
    # Astral padding: UTF-16 (JavaScript's String.length) counts twice the code points.
    corpus.append(_filled(f"p{n + 2:02d}", "", "<svg onload=§>", "\U0001f600", max_length))
    return corpus


def _filled(label: str, prefix: str, template: str, pad: str, length: int) -> Payload:
    core = prefix + template.replace(SLOT, marker_call(label))
    return Payload(label, core + pad * (length - len(core)))
