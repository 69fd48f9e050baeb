"""publish:greenroom: create a repository on the built-in git host and push the workspace."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from greenroom.core.errors import InputError
from greenroom.scaffolder.engine.actions.base import BaseAction, strict_object
from greenroom.scaffolder.engine.paths import safe_child
from greenroom.scaffolder.model import ActionContext


class PublishGreenroomAction(BaseAction):
    id = "publish:greenroom"
    description = "Creates a repository on Greenroom's built-in git host and pushes the workspace to it."
    supports_dry_run = False
    input_schema = strict_object({
        "repoUrl": {"type": "string", "title": "Repository Location",
                    "description": "`<host>?owner=<owner>&repo=<name>` as the RepoUrlPicker writes it"},
        "description": {"type": "string"},
        "defaultBranch": {"type": "string", "description": "Defaults to main"},
        "sourcePath": {"type": "string", "description": "Workspace subdirectory to publish"},
        "gitCommitMessage": {"type": "string"},
        "gitAuthorName": {"type": "string"},
        "gitAuthorEmail": {"type": "string"},
    }, ["repoUrl"])
    output_schema = {"type": "object", "properties": {
        "remoteUrl": {"type": "string"}, "repoContentsUrl": {"type": "string"},
        "commitHash": {"type": "string"}, "cloneUrl": {"type": "string"}}}

    async def handler(self, ctx: ActionContext) -> None:
        repo_url = self.string(ctx, "repoUrl")
        query = parse_qs(urlsplit(f"https://{repo_url}").query)
        owner = (query.get("owner") or [""])[0].strip("/")
        name = (query.get("repo") or [""])[0].strip("/")
        if not owner or not name:
            raise InputError(f"publish:greenroom: repoUrl {repo_url!r} needs ?owner=<owner>&repo=<name>")
        source = safe_child(ctx.workspace, self.string(ctx, "sourcePath", "."), "sourcePath")
        branch = self.string(ctx, "defaultBranch", "main")
        publisher = self.service(ctx, "publisher")
        created = await publisher.create_repository(owner, name, str(ctx.input.get("description") or ""))
        author = str(ctx.input.get("gitAuthorName") or ctx.user_ref or "Scaffolder")
        pushed = await publisher.push_directory(
            owner, name, source, branch=branch,
            message=str(ctx.input.get("gitCommitMessage") or "initial commit"), author=author,
        )
        ctx.log(f"Published {owner}/{name} to {created.get('remoteUrl')}")
        ctx.output("remoteUrl", created.get("remoteUrl"))
        if created.get("cloneUrl"):
            ctx.output("cloneUrl", created["cloneUrl"])
        ctx.output("repoContentsUrl", publisher.contents_url(owner, name, branch))
        if pushed.get("commitHash"):
            ctx.output("commitHash", pushed["commitHash"])
