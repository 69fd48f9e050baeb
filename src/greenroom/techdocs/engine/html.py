"""Turn a built MkDocs page body into HTML that is safe to put inside the portal shell.

Model: the build keeps each page's rendered Markdown body (``greenroom_pages/<dest_uri>``) and
the site nav and page TOCs (``greenroom_site.json``). :func:`render_page` sanitizes one body with
nh3 (an allow list of the tags and attributes MkDocs Material and techdocs-core produce: headings,
code highlight spans, admonitions, tabs, tables, task lists, images) and rewrites every URL:

* relative page links → ``/docs/{namespace}/{kind}/{name}/{path}`` (portal pages);
* relative images and files → ``/api/techdocs/static/docs/{namespace}/{kind}/{name}/{path}``;
* ``data:image/…`` images stay (PlantUML diagrams are embedded that way: an SVG shown through
  ``<img>`` cannot run script or load anything);
* images from any other host (emoji from cdnjs, badges) are replaced by their alt text, so a
  docs page never makes the browser fetch from a host other than the portal.

Everything else is dropped: ``<script>``, ``<style>``, ``<iframe>``, inline ``<svg>``, forms,
``on*`` handlers, ``javascript:`` URLs, ``style`` except ``text-align``.
"""

from __future__ import annotations

import html as htmllib
import posixpath
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import nh3

from greenroom.techdocs.model import EntityTriple

PAGE_PREFIX = "/docs"
ASSET_PREFIX = "/api/techdocs/static/docs"

TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "del", "details",
    "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i",
    "img", "input", "ins", "kbd", "label", "li", "mark", "ol", "p", "pre", "q", "s", "samp", "small",
    "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr",
    "u", "ul", "var", "wbr",
}
DROP_WITH_CONTENT = {"script", "style", "iframe", "svg", "math", "noscript", "template", "object",
                     "embed", "frame", "frameset", "textarea", "select", "button", "form"}
GENERIC_ATTRS = {"class", "id", "title", "lang", "dir", "style"}
ATTRS: dict[str, set[str]] = {
    "a": {"href", "name"}, "img": {"src", "alt", "width", "height", "loading"},
    "td": {"colspan", "rowspan", "align"}, "th": {"colspan", "rowspan", "align", "scope"},
    "col": {"span"}, "ol": {"start", "type"}, "details": {"open"}, "label": {"for"},
    "input": {"type", "checked", "disabled", "name"}, "code": {"data-lang"},
}
_IMG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_ATTR = re.compile(r"""([a-zA-Z_:][-\w:.]*)\s*=\s*("[^"]*"|'[^']*'|[^\s"'>]+)""")
_DATA_IMAGE = re.compile(r"^data:image/(png|gif|jpeg|webp|svg\+xml)(;base64)?,", re.IGNORECASE)


def _attrs(tag: str) -> dict[str, str]:
    return {m.group(1).lower(): htmllib.unescape(m.group(2).strip("\"'")) for m in _ATTR.finditer(tag)}


def _inline_external_images(body: str) -> str:
    """Replace images served from other hosts with their alt text (emoji become characters)."""

    def repl(m: re.Match[str]) -> str:
        attrs = _attrs(m.group(0))
        src = attrs.get("src", "")
        scheme = urlsplit(src).scheme.lower()
        if scheme in ("http", "https") or src.startswith("//"):
            alt = attrs.get("alt", "")
            title = attrs.get("title", alt)
            return (f'<span class="gr-external-image" title="{htmllib.escape(title)}">'
                    f"{htmllib.escape(alt)}</span>")
        return m.group(0)

    return _IMG.sub(repl, body)


class UrlRewriter:
    """Resolves URLs found in the page at ``page_url`` (site-relative, e.g. ``sub-page/``)."""

    def __init__(self, triple: EntityTriple, page_url: str) -> None:
        self.triple = triple
        self.base = posixpath.dirname(page_url) if not page_url.endswith("/") else page_url.rstrip("/")

    def _resolve(self, path: str) -> str:
        joined = posixpath.normpath(posixpath.join("/", self.base, path)) if path else "/" + self.base
        resolved = joined.lstrip("/")
        if path.endswith("/") and resolved and not resolved.endswith("/"):
            resolved += "/"
        return "" if resolved == "." else resolved

    def page(self, path: str) -> str:
        return f"{PAGE_PREFIX}/{self.triple.path}/{path}"

    def asset(self, path: str) -> str:
        return f"{ASSET_PREFIX}/{self.triple.path}/{path}"

    def link(self, value: str) -> str | None:
        parts = urlsplit(value)
        if parts.scheme or parts.netloc:
            return value if parts.scheme.lower() in ("http", "https", "mailto") else None
        if not parts.path:
            return value  # "#anchor" or "?q" on the same page
        resolved = self._resolve(parts.path)
        last = posixpath.basename(resolved.rstrip("/"))
        is_page = resolved.endswith("/") or resolved == "" or "." not in last or last.endswith(".html")
        if is_page and last == "index.html":
            resolved = resolved[: -len("index.html")]
        target = self.page(resolved) if is_page else self.asset(resolved)
        return urlunsplit(("", "", target, parts.query, parts.fragment))

    def image(self, value: str) -> str | None:
        if _DATA_IMAGE.match(value):
            return value
        parts = urlsplit(value)
        if parts.scheme or parts.netloc:
            return None
        return self.asset(self._resolve(parts.path)) if parts.path else None


def sanitize(body: str, rewriter: UrlRewriter) -> str:
    """Sanitized, URL-rewritten HTML for one page body (see module docstring)."""

    def attribute_filter(tag: str, attr: str, value: str) -> str | None:
        if attr == "href" and tag == "a":
            return rewriter.link(value)
        if attr == "src" and tag == "img":
            return rewriter.image(value)
        if attr == "type" and tag == "input":
            return value if value.lower() == "checkbox" else None
        return value

    return nh3.clean(
        _inline_external_images(body),
        tags=TAGS,
        clean_content_tags=DROP_WITH_CONTENT,
        attributes={"*": GENERIC_ATTRS, **ATTRS},
        attribute_filter=attribute_filter,
        url_schemes={"http", "https", "mailto", "data"},
        filter_style_properties={"text-align"},
        set_tag_attribute_values={"input": {"disabled": ""}},
        link_rel="noopener noreferrer",
    )


def portal_nav(nav: list[dict[str, Any]], triple: EntityTriple, current_url: str) -> list[dict[str, Any]]:
    """The site nav with portal hrefs and ``active`` on the current page and its sections."""
    rewriter = UrlRewriter(triple, "")
    out = []
    for item in nav:
        entry: dict[str, Any] = {"title": item.get("title", "")}
        url = item.get("url")
        if item.get("external"):
            entry["href"] = url if urlsplit(url or "").scheme in ("http", "https") else None
        elif url is not None:
            entry["href"] = rewriter.page(url.removesuffix("index.html"))
            entry["active"] = url == current_url
        if item.get("children"):
            entry["children"] = portal_nav(item["children"], triple, current_url)
            entry["active"] = any(c.get("active") for c in entry["children"])
        out.append(entry)
    return out


def plain_toc(toc: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """TOC entries with titles reduced to text (MkDocs may put markup in them)."""
    return [{"title": htmllib.unescape(re.sub(r"<[^>]+>", "", t.get("title", ""))), "id": t.get("id"),
             "level": t.get("level"), "children": plain_toc(t.get("children", []))} for t in toc]
