"""A report's markdown blocks as HTML, safely: CommonMark (plus tables and strikethrough) with raw HTML off.

Every `<`, `>` and `&` the author typed comes out escaped (raw HTML is text, never markup); a link may
go only to http(s), mailto, or a path on this collector (`/traces/...`, `#section`); `javascript:`,
`vbscript:`, `data:` and every other scheme stay as plain text. Images are allowed only inline as
`data:image/png|gif|jpeg|webp` (nothing is fetched from elsewhere, so an exported report stays
self-contained); any other image source becomes a link. Links open with `rel="noopener noreferrer
nofollow"`. Titles and descriptions are never markdown: the templates escape them as text.
"""

from __future__ import annotations

import re
from functools import lru_cache
from html import escape
from typing import Any

_SAFE_LINK = re.compile(r"^(https?://|mailto:|/(?!/)|#|\?)", re.IGNORECASE)
_SCHEME = re.compile(r"^[a-z][a-z0-9+.\-]*:", re.IGNORECASE)
_DATA_IMAGE = re.compile(r"^data:image/(png|gif|jpeg|webp);base64,[A-Za-z0-9+/=]+$", re.IGNORECASE)


def safe_link(url: str) -> bool:
    """Whether a link target may be rendered as a link (see the module docstring)."""
    url = url.strip()
    if _DATA_IMAGE.match(url):
        return True
    if _SAFE_LINK.match(url):
        return True
    return not _SCHEME.match(url) and not url.startswith("//") and "\\" not in url


@lru_cache(maxsize=1)
def _parser() -> Any:
    from markdown_it import MarkdownIt

    md: Any = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.validateLink = safe_link
    default_link = md.renderer.rules.get("link_open")

    def link_open(tokens: Any, idx: int, options: Any, env: Any) -> str:
        tokens[idx].attrSet("rel", "noopener noreferrer nofollow")
        if default_link is not None:
            return str(default_link(tokens, idx, options, env))
        return str(md.renderer.renderToken(tokens, idx, options, env))

    def image(tokens: Any, idx: int, options: Any, env: Any) -> str:
        token = tokens[idx]
        src = str(token.attrGet("src") or "")
        alt = md.renderer.renderInlineAsText(token.children or [], options, env)
        if _DATA_IMAGE.match(src):
            return f'<img src="{escape(src)}" alt="{escape(alt)}">'
        return f'<a href="{escape(src)}" rel="noopener noreferrer nofollow">{escape(alt or src)}</a>'

    renderer: Any = md.renderer
    renderer.rules["link_open"] = link_open
    renderer.rules["image"] = image
    return md


def render(text: str) -> str:
    """Markdown text as safe HTML (see the module docstring)."""
    return str(_parser().render(text))


__all__ = ["render", "safe_link"]
