"""HTTP surface of the built-in git host.

``router`` is the REST API, mounted at ``/api/forge``. ``git_router`` is mounted at ``/git`` and
serves git's smart HTTP protocol (``/git/<org>/<repo>.git/...``, through ``git http-backend``) and
raw files (``/git/<org>/<repo>/raw/<ref>/<path>``, the URL catalog ``url`` locations use).
"""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, field_validator

from greenroom.auth.model import Principal
from greenroom.core.errors import AuthenticationError, NotFoundError
from greenroom.core.http import error_response
from greenroom.forge.model import Blob, Commit, Repository, Tree
from greenroom.forge.service import ForgeService

router = APIRouter()
git_router = APIRouter()


def _service(request: Request) -> ForgeService:
    service: ForgeService = request.app.state.portal.services["forge"]
    return service


def _principal(request: Request) -> Principal | None:
    return getattr(request.state, "principal", None)


class _Schema(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class CommitOut(_Schema):
    sha: str
    parents: list[str]
    summary: str
    message: str
    author: dict[str, str]
    committer: dict[str, str]

    @classmethod
    def of(cls, c: Commit) -> CommitOut:
        return cls(sha=c.sha, parents=list(c.parents), summary=c.summary, message=c.message,
                   author={"name": c.author_name, "email": c.author_email, "date": c.authored_at},
                   committer={"name": c.committer_name, "email": c.committer_email,
                              "date": c.committed_at})


class RepositoryOut(_Schema):
    org: str
    name: str
    description: str
    defaultBranch: str
    cloneUrl: str
    webUrl: str
    empty: bool
    lastCommit: CommitOut | None

    @classmethod
    def of(cls, r: Repository) -> RepositoryOut:
        return cls(org=r.org, name=r.name, description=r.description, defaultBranch=r.default_branch,
                   cloneUrl=r.clone_url, webUrl=r.web_url, empty=r.empty,
                   lastCommit=CommitOut.of(r.last_commit) if r.last_commit else None)


class RepositoryCreate(_Schema):
    org: str = Field(description="Organisation: lowercase letters, digits, '.', '_', '-'.")
    name: str = Field(description="Repository name, without '.git'.")
    description: str = ""
    defaultBranch: str = "main"

    @field_validator("org", "name", "description", "defaultBranch")
    @classmethod
    def _unicode(cls, value: str) -> str:
        # Checked before anything is written: an unpaired surrogate ("\ud800" in JSON) would
        # otherwise fail half-way, after the repository directory exists.
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("contains an unpaired UTF-16 surrogate; send valid Unicode") from None
        return value


class TreeEntryOut(_Schema):
    name: str
    path: str
    type: str
    mode: str
    sha: str
    size: int | None


class TreeOut(_Schema):
    ref: str
    commit: str
    path: str
    entries: list[TreeEntryOut]

    @classmethod
    def of(cls, t: Tree) -> TreeOut:
        return cls(ref=t.ref, commit=t.commit, path=t.path, entries=[
            TreeEntryOut(name=e.name, path=e.path, type=e.kind, mode=e.mode, sha=e.sha, size=e.size)
            for e in t.entries])


class BlobOut(_Schema):
    ref: str
    commit: str
    path: str
    sha: str
    size: int
    binary: bool
    truncated: bool
    encoding: str | None = Field(description="'utf-8' or 'base64'; null when truncated.")
    content: str | None

    @classmethod
    def of(cls, b: Blob) -> BlobOut:
        encoding: str | None = None
        content: str | None = None
        if b.content is not None:
            try:
                if b.binary:
                    raise UnicodeDecodeError("utf-8", b"", 0, 1, "binary")
                content, encoding = b.content.decode("utf-8"), "utf-8"
            except UnicodeDecodeError:
                content, encoding = base64.b64encode(b.content).decode(), "base64"
        return cls(ref=b.ref, commit=b.commit, path=b.path, sha=b.sha, size=b.size, binary=b.binary,
                   truncated=b.truncated, encoding=encoding, content=content)


# -- REST API (/api/forge) -------------------------------------------------------------------
@router.get("/repositories", summary="List repositories")
def list_repositories(request: Request, org: str | None = None) -> dict[str, Any]:
    items = [RepositoryOut.of(r) for r in _service(request).list_repositories(org)]
    return {"items": items, "totalItems": len(items)}


@router.post("/repositories", status_code=201, summary="Create a repository")
def create_repository(request: Request, body: RepositoryCreate) -> RepositoryOut:
    principal = _principal(request)
    if principal is None:
        raise AuthenticationError("creating a repository needs credentials")
    repo = _service(request).create_repository(body.org, body.name, body.description,
                                               body.defaultBranch, principal)
    return RepositoryOut.of(repo)


@router.get("/repositories/{org}/{repo}", summary="Get a repository")
def get_repository(request: Request, org: str, repo: str) -> RepositoryOut:
    return RepositoryOut.of(_service(request).get_repository(org, repo))


@router.get("/repositories/{org}/{repo}/refs", summary="Branches and tags")
def get_refs(request: Request, org: str, repo: str) -> dict[str, Any]:
    refs = _service(request).refs(org, repo)
    return {"defaultBranch": refs.default_branch, "branches": refs.branches, "tags": refs.tags}


@router.get("/repositories/{org}/{repo}/tree/{ref_and_path:path}",
            summary="A directory at a ref: /tree/<ref>/<path>")
def get_tree(request: Request, org: str, repo: str, ref_and_path: str) -> TreeOut:
    service = _service(request)
    ref, commit, path = service.split_ref_path(org, repo, ref_and_path)
    return TreeOut.of(service.tree(org, repo, commit, path)).model_copy(update={"ref": ref})


@router.get("/repositories/{org}/{repo}/blob/{ref_and_path:path}",
            summary="A file at a ref: /blob/<ref>/<path> (content capped in size)")
def get_blob(request: Request, org: str, repo: str, ref_and_path: str) -> BlobOut:
    service = _service(request)
    ref, commit, path = service.split_ref_path(org, repo, ref_and_path)
    return BlobOut.of(service.blob(org, repo, commit, path)).model_copy(update={"ref": ref})


@router.get("/repositories/{org}/{repo}/raw/{ref_and_path:path}",
            summary="A file's bytes at a ref: /raw/<ref>/<path>")
def get_raw(request: Request, org: str, repo: str, ref_and_path: str) -> Response:
    return _raw(_service(request), org, repo, ref_and_path)


@router.get("/repositories/{org}/{repo}/readme", summary="The README as raw markdown")
def get_readme(request: Request, org: str, repo: str, ref: str | None = None) -> dict[str, Any]:
    readme = _service(request).readme(org, repo, ref)
    if readme is None:
        raise NotFoundError(f"{org}/{repo} has no README at the root of {ref or 'the default branch'}")
    return {"ref": readme.ref, "commit": readme.commit, "path": readme.path,
            "markdown": readme.markdown}


@router.get("/repositories/{org}/{repo}/commits", summary="Commit log, newest first, paged")
def get_commits(request: Request, org: str, repo: str, ref: str | None = None,
                limit: int = Query(20, ge=1, le=100), cursor: str | None = None,
                path: str = "") -> dict[str, Any]:
    page = _service(request).commits(org, repo, ref, limit, cursor, path)
    return {"items": [CommitOut.of(c) for c in page.commits],
            "pageInfo": {"nextCursor": page.next_cursor}}


def _raw(service: ForgeService, org: str, repo: str, ref_and_path: str) -> Response:
    _ref, commit, path = service.split_ref_path(org, repo, ref_and_path)
    data = service.read_file(org, repo, commit, path)
    # Never let a browser interpret repository content as a page of the portal's origin.
    media = "application/octet-stream" if b"\0" in data[:8000] else "text/plain; charset=utf-8"
    return Response(data, media_type=media, headers={
        "x-content-type-options": "nosniff",
        "content-security-policy": "sandbox; default-src 'none'",
        "etag": f'"{commit}"',
        "x-greenroom-commit": commit,
    })


# -- git smart HTTP and raw files (/git) ------------------------------------------------------
def _challenge(request: Request, message: str) -> Response:
    resp = error_response(request, 401, "AuthenticationError", message)
    resp.headers["WWW-Authenticate"] = 'Basic realm="greenroom", charset="UTF-8"'
    return resp


@git_router.get("/{org}/{repo}/raw/{ref_and_path:path}", include_in_schema=False)
def git_raw(request: Request, org: str, repo: str, ref_and_path: str) -> Response:
    service = _service(request)
    if _principal(request) is None and not service.anonymous_read:
        return _challenge(request, "reading needs credentials: send 'Authorization: Bearer <token>'")
    return _raw(service, org, repo, ref_and_path)


@git_router.api_route("/{org}/{repo}.git/{service_path:path}", methods=["GET", "POST"],
                      include_in_schema=False, response_model=None)
async def git_smart_http(request: Request, org: str, repo: str, service_path: str) -> Response:
    service = _service(request)
    try:
        return await run_in_threadpool(
            service.smart_http, org, repo, service_path, request.method,
            request.query_params.get("service"), _principal(request), request.headers,
            request.client.host if request.client else None,
        )
    except AuthenticationError as e:
        return _challenge(request, e.message)
