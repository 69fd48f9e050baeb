"""publish:github and github:actions:dispatch against GitHub's REST API (github.com or GHE).

publish:github: ``GET /users/{owner}`` tells an organization from a user; the repository is created
with ``POST /orgs/{owner}/repos`` or ``POST /user/repos``, then the workspace is committed and
pushed to the returned ``clone_url`` (user ``x-access-token``, password the token, as GitHub
apps and PATs accept). Outputs as Backstage: ``remoteUrl`` (html_url), ``repoContentsUrl``
(``<html_url>/blob/<branch>``), ``commitHash``. Options Greenroom does not apply (branch
protection, collaborators, topics, repository variables and secrets) are reported in the log, not
silently dropped. An existing repository fails the step (GitHub answers 422).

github:actions:dispatch: ``POST /repos/{owner}/{repo}/actions/workflows/{workflowId}/dispatches``
with ``{ref, inputs}``; GitHub answers 204.
"""

from __future__ import annotations

from typing import Any

import httpx

from greenroom.core.errors import InputError
from greenroom.scaffolder.engine.actions.base import BaseAction
from greenroom.scaffolder.engine.actions.scm import (
    HTTP_TIMEOUT_SECONDS,
    Integration,
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
_UNSUPPORTED = ("access", "requireCodeOwnerReviews", "requiredStatusCheckContexts", "requireBranchesToBeUpToDate",
                "requiredConversationResolution", "protectDefaultBranch", "protectEnforceAdmins",
                "collaborators", "topics", "repoVariables", "secrets", "oidcCustomization",
                "requiredApprovingReviewCount", "restrictions", "requiredCommitSigning", "customProperties")


def _client(integration: Integration) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=integration.api_base_url, timeout=HTTP_TIMEOUT_SECONDS,
        headers={"Authorization": f"token {integration.token}", "Accept": "application/vnd.github+json",
                 "X-GitHub-Api-Version": "2022-11-28", "User-Agent": "greenroom-scaffolder"},
    )


async def _call(client: httpx.AsyncClient, action_id: str, what: str, method: str, path: str,
                token: str, json: Any = None) -> httpx.Response:
    try:
        response = await client.request(method, path, json=json)
    except httpx.HTTPError as exc:
        raise InputError(redact(f"{action_id}: {what} failed: cannot reach {client.base_url}: {exc}", token)) from None
    if response.status_code >= 400:
        raise InputError(describe_http_error(action_id, what, response.status_code, response.text, token))
    return response


_PUBLISH_INPUT: JsonObject = {
    "type": "object", "required": ["repoUrl"],
    "properties": {
        "repoUrl": {**_S, "title": "Repository Location"}, "description": _S, "homepage": _S,
        "defaultBranch": {**_S, "description": "Defaults to master"},
        "repoVisibility": {"type": "string", "enum": ["private", "public", "internal"]},
        "deleteBranchOnMerge": _B, "allowMergeCommit": _B, "allowSquashMerge": _B, "allowRebaseMerge": _B,
        "allowAutoMerge": _B, "hasProjects": _B, "hasWiki": _B, "hasIssues": _B,
        "sourcePath": _S, "gitCommitMessage": _S, "gitAuthorName": _S, "gitAuthorEmail": _S, "token": _S,
    },
}
_PUBLISH_OUTPUT: JsonObject = {"type": "object", "properties": {
    "remoteUrl": _S, "repoContentsUrl": _S, "commitHash": _S}}
_DISPATCH_INPUT: JsonObject = {
    "type": "object", "required": ["repoUrl", "workflowId", "branchOrTagName"],
    "properties": {
        "repoUrl": {**_S, "title": "Repository Location"},
        "workflowId": {**_S, "title": "Workflow ID", "description": "The GitHub Action Workflow filename"},
        "branchOrTagName": {**_S, "title": "Branch or Tag name"},
        "workflowInputs": {"type": "object", "title": "Workflow Inputs"},
        "token": _S,
    },
}
_DISPATCH_OUTPUT: JsonObject = {}


class PublishGithubAction(BaseAction):
    id = "publish:github"
    description = "Initializes a git repository of contents in workspace and publishes it to GitHub."
    supports_dry_run = False
    input_schema = _PUBLISH_INPUT
    output_schema = _PUBLISH_OUTPUT

    async def handler(self, ctx: ActionContext) -> None:
        integration, parts = parse_target(ctx, self.id, "github")
        owner, repo = str(parts["owner"]), str(parts["repo"])
        branch = self.string(ctx, "defaultBranch", "master")
        visibility = self.string(ctx, "repoVisibility", "private")
        source = source_dir(ctx)
        ignored = [k for k in _UNSUPPORTED if ctx.input.get(k) not in (None, [], {})]
        if ignored:
            ctx.log(f"publish:github: Greenroom does not apply {', '.join(ignored)}; set them on GitHub")
        body: JsonObject = {
            "name": repo, "private": visibility == "private", "visibility": visibility,
            "description": ctx.input.get("description") or "", "homepage": ctx.input.get("homepage") or "",
            "delete_branch_on_merge": bool(ctx.input.get("deleteBranchOnMerge", False)),
            "allow_merge_commit": bool(ctx.input.get("allowMergeCommit", True)),
            "allow_squash_merge": bool(ctx.input.get("allowSquashMerge", True)),
            "allow_rebase_merge": bool(ctx.input.get("allowRebaseMerge", True)),
            "allow_auto_merge": bool(ctx.input.get("allowAutoMerge", False)),
            "has_projects": ctx.input.get("hasProjects"), "has_wiki": ctx.input.get("hasWiki"),
            "has_issues": ctx.input.get("hasIssues"),
        }
        body = {k: v for k, v in body.items() if v is not None}
        token = integration.token or ""
        async with _client(integration) as client:
            who = (await _call(client, self.id, f"looking up owner {owner}", "GET", f"/users/{owner}", token)).json()
            if who.get("type") == "Organization":
                path = f"/orgs/{owner}/repos"
            else:
                path = "/user/repos"
            ctx.log(f"Creating repository {owner}/{repo} on {integration.host}")
            try:
                created = (await _call(client, self.id, f"creating repository {owner}/{repo}", "POST", path,
                                       token, body)).json()
            except InputError as exc:
                if "HTTP 422" in exc.message and "exist" in exc.message:
                    raise InputError(f"publish:github: repository {owner}/{repo} already exists on "
                                     f"{integration.host}; choose another name") from None
                raise
        html_url, clone_url = str(created.get("html_url") or ""), str(created.get("clone_url") or "")
        if not clone_url:
            raise InputError(f"publish:github: {integration.host} did not return a clone_url for {owner}/{repo}")
        name, email = author(ctx)
        sha = await commit_and_push(source, clone_url, branch=branch,
                                    message=str(ctx.input.get("gitCommitMessage") or "initial commit"),
                                    author_name=name, author_email=email, username="x-access-token",
                                    password=token)
        ctx.log(f"Pushed {branch} of {owner}/{repo} ({sha[:12]})")
        ctx.output("remoteUrl", html_url)
        ctx.output("repoContentsUrl", f"{html_url}/blob/{branch}")
        ctx.output("commitHash", sha)


class GithubActionsDispatchAction(BaseAction):
    id = "github:actions:dispatch"
    description = "Dispatches a GitHub Action workflow for a given branch or tag"
    supports_dry_run = False
    input_schema = _DISPATCH_INPUT
    output_schema = _DISPATCH_OUTPUT

    async def handler(self, ctx: ActionContext) -> None:
        integration, parts = parse_target(ctx, self.id, "github")
        owner, repo = str(parts["owner"]), str(parts["repo"])
        workflow = self.string(ctx, "workflowId")
        ref = self.string(ctx, "branchOrTagName")
        inputs = ctx.input.get("workflowInputs") or {}
        if not isinstance(inputs, dict):
            raise InputError("github:actions:dispatch: workflowInputs must be an object")
        ctx.log(f"Dispatching workflow {workflow} for repo {owner}/{repo} on {ref}")
        async with _client(integration) as client:
            await _call(client, self.id, f"dispatching workflow {workflow}", "POST",
                        f"/repos/{owner}/{repo}/actions/workflows/{workflow}/dispatches",
                        integration.token or "", {"ref": ref, "inputs": inputs})
        ctx.log(f"Workflow {workflow} dispatched successfully")
