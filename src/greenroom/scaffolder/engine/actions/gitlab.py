"""publish:gitlab against GitLab's REST API v4 (gitlab.com or self-hosted).

The owner (a group or user path, possibly nested like ``group/sub``) is resolved with
``GET /namespaces/{path}``; ``skipExisting`` first asks ``GET /projects/{owner/repo}``; the project
is created with ``POST /projects`` (``namespace_id``, ``name``, ``path``, ``visibility``), then the
workspace is committed and pushed to ``http_url_to_repo`` (user ``oauth2``, password the token).
Outputs as Backstage: ``remoteUrl`` (web_url), ``repoContentsUrl`` (``<web_url>/-/blob/<branch>``),
``commitHash``, ``projectId``, ``created``. Branch settings, project variables, topics and
``setUserAsOwner`` are reported in the log as not applied.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from greenroom.core.errors import InputError
from greenroom.scaffolder.engine.actions.base import BaseAction
from greenroom.scaffolder.engine.actions.scm import (
    HTTP_TIMEOUT_SECONDS,
    author,
    commit_and_push,
    describe_http_error,
    parse_target,
    redact,
    source_dir,
)
from greenroom.scaffolder.model import ActionContext, JsonObject

_S: JsonObject = {"type": "string"}
_B: JsonObject = {"type": "boolean"}
_UNSUPPORTED = ("setUserAsOwner", "topics", "settings", "branches", "projectVariables")


_PUBLISH_INPUT: JsonObject = {
    "type": "object", "required": ["repoUrl"],
    "properties": {
        "repoUrl": {**_S, "title": "Repository Location"},
        "repoVisibility": {"type": "string", "enum": ["private", "public", "internal"]},
        "defaultBranch": {**_S, "description": "Defaults to master"},
        "description": _S, "sourcePath": _S, "skipExisting": _B, "token": _S,
        "gitCommitMessage": _S, "gitAuthorName": _S, "gitAuthorEmail": _S,
    },
}
_PUBLISH_OUTPUT: JsonObject = {"type": "object", "properties": {
    "remoteUrl": _S, "repoContentsUrl": _S, "commitHash": _S, "projectId": {"type": "number"},
    "created": _B}}


class PublishGitlabAction(BaseAction):
    id = "publish:gitlab"
    description = "Initializes a git repository of the content in the workspace, and publishes it to GitLab."
    supports_dry_run = False
    input_schema = _PUBLISH_INPUT
    output_schema = _PUBLISH_OUTPUT

    async def handler(self, ctx: ActionContext) -> None:
        integration, parts = parse_target(ctx, self.id, "gitlab")
        if parts.get("project") and not parts.get("owner"):
            raise InputError("publish:gitlab: repoUrl needs ?owner=<group or user>&repo=<name>")
        owner, repo = str(parts["owner"]), str(parts["repo"])
        branch = self.string(ctx, "defaultBranch", "master")
        source = source_dir(ctx)
        token = integration.token or ""
        ignored = [k for k in _UNSUPPORTED if ctx.input.get(k) not in (None, [], {}, False)]
        if ignored:
            ctx.log(f"publish:gitlab: Greenroom does not apply {', '.join(ignored)}; set them on GitLab")
        async with httpx.AsyncClient(base_url=integration.api_base_url, timeout=HTTP_TIMEOUT_SECONDS,
                                     headers={"PRIVATE-TOKEN": token, "User-Agent": "greenroom-scaffolder"}) as c:
            if ctx.input.get("skipExisting"):
                existing = await self._request(c, "looking up the project", "GET",
                                               f"/projects/{quote(f'{owner}/{repo}', safe='')}", token, allow_404=True)
                if existing is not None:
                    ctx.log(f"Project {owner}/{repo} exists already; skipping (skipExisting)")
                    self._outputs(ctx, existing, branch, None, created=False)
                    return
            namespace = await self._request(c, f"looking up namespace {owner}", "GET",
                                            f"/namespaces/{quote(owner, safe='')}", token)
            assert namespace is not None
            body = {"namespace_id": namespace.get("id"), "name": repo, "path": repo,
                    "visibility": self.string(ctx, "repoVisibility", "private"),
                    "description": ctx.input.get("description") or ""}
            ctx.log(f"Creating project {owner}/{repo} on {integration.host}")
            project = await self._request(c, f"creating project {owner}/{repo}", "POST", "/projects", token, body)
            assert project is not None
        clone_url = str(project.get("http_url_to_repo") or "")
        if not clone_url:
            raise InputError(f"publish:gitlab: {integration.host} did not return http_url_to_repo")
        name, email = author(ctx)
        sha = await commit_and_push(source, clone_url, branch=branch,
                                    message=str(ctx.input.get("gitCommitMessage") or "initial commit"),
                                    author_name=name, author_email=email, username="oauth2", password=token)
        ctx.log(f"Pushed {branch} of {owner}/{repo} ({sha[:12]})")
        self._outputs(ctx, project, branch, sha, created=True)

    def _outputs(self, ctx: ActionContext, project: JsonObject, branch: str, sha: str | None, *,
                 created: bool) -> None:
        web_url = str(project.get("web_url") or "")
        ctx.output("remoteUrl", web_url)
        ctx.output("repoContentsUrl", f"{web_url}/-/blob/{branch}")
        ctx.output("projectId", project.get("id"))
        ctx.output("created", created)
        if sha:
            ctx.output("commitHash", sha)

    async def _request(self, client: httpx.AsyncClient, what: str, method: str, path: str, token: str,
                       json: Any = None, allow_404: bool = False) -> JsonObject | None:
        try:
            response = await client.request(method, path, json=json)
        except httpx.HTTPError as exc:
            raise InputError(redact(f"{self.id}: {what} failed: cannot reach {client.base_url}: {exc}",
                                    token)) from None
        if allow_404 and response.status_code == 404:
            return None
        if response.status_code == 400 and "taken" in response.text:
            raise InputError(f"{self.id}: {what}: the project exists already; choose another name or set "
                             "skipExisting: true")
        if response.status_code >= 400:
            raise InputError(describe_http_error(self.id, what, response.status_code, response.text, token))
        data = response.json()
        return data if isinstance(data, dict) else {}
