"""Pages of the built-in git host, mounted at "/": the repository list, a repository's home (file
tree, README, clone instructions), directories, files, the commit log and "New repository".

Everything shown here is repository content, i.e. user input: templates autoescape, file text is
escaped by Pygments, and README Markdown is rendered to HTML and then sanitized with nh3 (an
allow list; ``<script>``, event handlers and ``javascript:`` URLs never reach the page).

Names and paths are validated by the forge service. A page that names an invalid path (``..``,
an empty segment, a control character) is a page that does not exist: 404, not 400.
"""

from __future__ import annotations

import posixpath
from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import markdown
import nh3
from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse
from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_for_filename
from pygments.util import ClassNotFound

from greenroom.core.errors import ConflictError, InputError
from greenroom.forge.model import Blob, Repository, Tree
from greenroom.forge.service import ForgeService
from greenroom.web.service import PageRoute, WebService

MAX_HIGHLIGHT = 200_000  # bytes of text coloured; longer files are shown escaped but plain
COMMITS_PER_PAGE = 30
_FORMATTER = HtmlFormatter(nowrap=True, classprefix="tok-")

# Served as a file because the pages' CSP allows scripts from our own origin only.
COPY_JS = """// Copy buttons on forge pages: <button data-copy="text">.
document.addEventListener("click", function (ev) {
  var b = ev.target.closest && ev.target.closest("button[data-copy]");
  if (!b || !navigator.clipboard) return;
  navigator.clipboard.writeText(b.getAttribute("data-copy")).then(function () {
    var label = b.textContent; b.textContent = "Copied"; b.setAttribute("data-copied", "true");
    setTimeout(function () { b.textContent = label; }, 1500);
  });
});
"""


class ForgePageRoute(PageRoute):
    """Forge pages take org, repo, ref and path from the URL: an invalid one is a missing page."""

    missing_on_input_error = True


router = APIRouter(route_class=ForgePageRoute, include_in_schema=False)


def _web(request: Request) -> WebService:
    svc: WebService = request.app.state.portal.services["web"]
    return svc


def _forge(request: Request) -> ForgeService:
    svc: ForgeService = request.app.state.portal.services["forge"]
    return svc


def _page(request: Request, template: str, status: int = 200, **ctx: Any) -> Response:
    return _web(request).render(request, f"forge/{template}", status=status, active="forge", url=quote,
                                **ctx)


def _base(org: str, repo: str) -> str:
    return f"/forge/{quote(org)}/{quote(repo)}"


def _crumbs(org: str, repo: str, ref: str, path: str) -> list[tuple[str, str]]:
    """``(label, href)`` from the repository down to ``path``'s parent directories."""
    out = [(f"{org}/{repo}", _base(org, repo))]
    parts = path.split("/") if path else []
    for i, part in enumerate(parts):
        out.append((part, f"{_base(org, repo)}/tree/{quote(ref)}/{quote('/'.join(parts[:i + 1]))}"))
    return out


def _when(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso


# -- rendering repository content -----------------------------------------------------------------

def render_readme(text: str, blob_base: str, raw_base: str) -> Markup:
    """README Markdown as sanitized HTML. Relative links point at the file pages of the same ref
    (``blob_base``), relative images at raw files (``raw_base``); absolute URLs stay as they are
    if their scheme is harmless."""
    html = markdown.markdown(text, extensions=["fenced_code", "tables", "sane_lists"],
                             output_format="html")

    def rewrite(tag: str, attr: str, value: str) -> str | None:
        if (tag, attr) in (("a", "href"), ("img", "src")):
            parts = urlsplit(value)
            if parts.scheme or parts.netloc or not parts.path:
                return value  # absolute (nh3 checks the scheme) or an anchor on this page
            target = posixpath.normpath(parts.path.lstrip("/"))
            if target.startswith(".."):
                return None
            base = raw_base if tag == "img" else blob_base
            return f"{base}/{quote(target)}" + (f"#{parts.fragment}" if parts.fragment else "")
        return value

    return Markup(nh3.clean(html, attribute_filter=rewrite, link_rel="noopener noreferrer"))


def render_lines(text: str, filename: str) -> list[Markup]:
    """The file as one escaped (and, if small enough, highlighted) HTML fragment per line.
    Pygments closes its spans at every newline, so splitting its output keeps tags balanced."""
    html: str | None = None
    if len(text) <= MAX_HIGHLIGHT:
        try:
            html = str(highlight(text, get_lexer_for_filename(filename, stripnl=False), _FORMATTER))
        except ClassNotFound:
            html = None
    if html is None:
        html = escape(text)
    lines = html.split("\n")
    if lines and lines[-1] == "":  # a final newline ends the last line; it does not start one
        lines.pop()
    return [Markup(line) for line in lines]


# -- pages ----------------------------------------------------------------------------------------

@router.get("/forge/-/forge.js")
def copy_script() -> Response:
    return Response(COPY_JS, media_type="text/javascript",
                    headers={"cache-control": "public, max-age=3600"})


@router.get("/forge")
def repositories(request: Request) -> Response:
    repos = _forge(request).list_repositories()
    return _page(request, "list.html", repos=repos, when=_when)


@router.get("/forge/new")
def new_repository_page(request: Request) -> Response:
    return _page(request, "new.html", form={"default_branch": "main"}, error=None)


@router.post("/forge/new")
def new_repository(request: Request, org: str = Form(""), name: str = Form(""),
                   description: str = Form(""), default_branch: str = Form("main")) -> Response:
    form = {"org": org.strip(), "name": name.strip(), "description": description,
            "default_branch": default_branch.strip() or "main"}
    try:
        repo = _forge(request).create_repository(
            form["org"], form["name"], description, form["default_branch"],
            principal=getattr(request.state, "principal", None))
    except (InputError, ConflictError) as e:
        return _page(request, "new.html", status=e.status_code, form=form, error=e.message)
    return RedirectResponse(_base(repo.org, repo.name), status_code=303)


@router.get("/forge/{org}/{repo}")
def repository(request: Request, org: str, repo: str) -> Response:
    forge = _forge(request)
    info = forge.get_repository(org, repo)
    tree = readme = None
    if not info.empty:
        tree = forge.tree(org, repo, info.default_branch, "")
        found = forge.readme(org, repo, tree.commit)
        if found is not None:
            readme = render_readme(found.markdown, f"{_base(org, repo)}/blob/{quote(info.default_branch)}",
                                   forge.raw_url(org, repo, tree.commit, "").rstrip("/"))
    return _page(request, "repository.html", repo=info, tree=tree, readme=readme,
                 refs=forge.refs(org, repo), ref=info.default_branch, base=_base(org, repo),
                 crumbs=_crumbs(org, repo, info.default_branch, ""), when=_when)


@router.get("/forge/{org}/{repo}/tree/{ref_and_path:path}")
def tree(request: Request, org: str, repo: str, ref_and_path: str) -> Response:
    forge = _forge(request)
    ref, commit, path = forge.split_ref_path(org, repo, ref_and_path)
    try:
        listing: Tree = forge.tree(org, repo, commit, path)
    except InputError:
        forge.blob(org, repo, commit, path, max_bytes=0)  # a file: its page; anything else: 404
        return RedirectResponse(f"{_base(org, repo)}/blob/{quote(ref)}/{quote(path)}", status_code=303)
    return _page(request, "tree.html", repo=forge.get_repository(org, repo), tree=listing, ref=ref,
                 file_path=path, base=_base(org, repo), crumbs=_crumbs(org, repo, ref, path))


@router.get("/forge/{org}/{repo}/blob/{ref_and_path:path}")
def blob(request: Request, org: str, repo: str, ref_and_path: str) -> Response:
    forge = _forge(request)
    ref, commit, path = forge.split_ref_path(org, repo, ref_and_path)
    if not path:
        return RedirectResponse(f"{_base(org, repo)}/tree/{quote(ref)}", status_code=303)
    try:
        file: Blob = forge.blob(org, repo, commit, path)
    except InputError:
        forge.tree(org, repo, commit, path)  # a directory: its page; anything else: 404
        return RedirectResponse(f"{_base(org, repo)}/tree/{quote(ref)}/{quote(path)}", status_code=303)
    lines: list[Markup] = []
    if file.content is not None and not file.binary:
        lines = render_lines(file.content.decode("utf-8", "replace"), posixpath.basename(path))
    return _page(request, "blob.html", repo=forge.get_repository(org, repo), file=file, ref=ref,
                 file_path=path, lines=lines, raw=forge.raw_url(org, repo, ref, path), base=_base(org, repo),
                 crumbs=_crumbs(org, repo, ref, posixpath.dirname(path)), name=posixpath.basename(path))


@router.get("/forge/{org}/{repo}/commits")
def commits(request: Request, org: str, repo: str, ref: str | None = None,
            cursor: str | None = None) -> Response:
    forge = _forge(request)
    info: Repository = forge.get_repository(org, repo)
    ref = ref or info.default_branch
    page = None if info.empty else forge.commits(org, repo, ref, limit=COMMITS_PER_PAGE, cursor=cursor)
    older = (f"{_base(org, repo)}/commits?{urlencode({'ref': ref, 'cursor': page.next_cursor})}"
             if page and page.next_cursor else None)
    return _page(request, "commits.html", repo=info, ref=ref, page=page, older=older,
                 first=bool(cursor), base=_base(org, repo), when=_when)
