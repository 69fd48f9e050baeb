"""Stand-ins for actions of other Backstage plugins that templates in the wild use.

Greenroom does not talk to GitHub/GitLab/Azure/ArgoCD, but templates name these actions. Knowing
their ids and schemas lets a dry-run behave as Backstage's does (skipped, outputs faked from the
output schema; ``publish:github:pull-request`` supports dry-run and validates its input strictly)
and lets a real run fail with a message that says what to use instead.
"""

from __future__ import annotations

from greenroom.core.errors import InputError
from greenroom.scaffolder.engine.actions.base import BaseAction, strict_object
from greenroom.scaffolder.engine.filters import DEFAULT_INTEGRATIONS, parse_repo_url
from greenroom.scaffolder.model import ActionContext, JsonObject

_S = {"type": "string"}
_B = {"type": "boolean"}
_N = {"type": "number"}
_LS = {"type": "array", "items": {"type": "string"}}


class ForeignAction(BaseAction):
    """An action Greenroom knows by name only; a real run refuses with a clear message."""

    def __init__(self, action_id: str, description: str, output: JsonObject | None = None,
                 input_schema: JsonObject | None = None, instead: str = "") -> None:
        self.id = action_id
        self.description = f"{description} (not available in Greenroom; dry-run only)"
        self.output_schema = {"type": "object", "properties": output} if output else {}
        self.input_schema = input_schema or {"type": "object"}
        self.supports_dry_run = False
        self.instead = instead

    async def handler(self, ctx: ActionContext) -> None:
        hint = f"; {self.instead}" if self.instead else ""
        raise InputError(f"action {self.id} is not available in Greenroom{hint}")


class GithubPullRequestStandIn(ForeignAction):
    """publish:github:pull-request supports dry-run in Backstage: it validates and fakes outputs."""

    def __init__(self) -> None:
        super().__init__(
            "publish:github:pull-request", "Creates a pull request on GitHub",
            {"targetBranchName": _S, "remoteUrl": _S, "pullRequestNumber": _N},
            strict_object({
                "repoUrl": _S, "branchName": _S, "filesToDelete": _LS, "targetBranchName": _S, "title": _S,
                "description": _S, "draft": _B, "sourcePath": _S, "targetPath": _S, "token": _S,
                "reviewers": _LS, "assignees": _LS, "teamReviewers": _LS, "commitMessage": _S, "update": _B,
                "forceFork": _B, "gitAuthorName": _S, "gitAuthorEmail": _S, "forceEmptyGitAuthor": _B,
                "createWhenEmpty": _B,
            }, ["repoUrl", "branchName", "title", "description"]),
            "Greenroom cannot open GitHub pull requests",
        )
        self.supports_dry_run = True

    async def handler(self, ctx: ActionContext) -> None:
        if not ctx.dry_run:
            await super().handler(ctx)
        parse_repo_url(ctx.input["repoUrl"], DEFAULT_INTEGRATIONS)
        ctx.log("Performing dry run of creating pull request")
        ctx.output("targetBranchName", ctx.input["branchName"])
        ctx.output("remoteUrl", ctx.input["repoUrl"])
        ctx.output("pullRequestNumber", 43)
        ctx.log("Dry run complete")


_PUBLISH_OUT = {"remoteUrl": _S, "repoContentsUrl": _S, "commitHash": _S}
_USE_GREENROOM = "use publish:greenroom to publish to Greenroom's built-in git host"


def foreign_actions() -> list[BaseAction]:
    return [
        # publish:github, publish:gitlab and github:actions:dispatch are real actions (github.py, gitlab.py)
        ForeignAction("publish:gitlab:merge-request", "Creates a GitLab merge request",
                      {"projectid": _S, "projectPath": _S, "mergeRequestUrl": _S}),
        ForeignAction("publish:azure", "Publishes to Azure DevOps",
                      {**_PUBLISH_OUT, "repositoryId": _S}, instead=_USE_GREENROOM),
        ForeignAction("publish:bitbucket", "Publishes to Bitbucket", _PUBLISH_OUT, instead=_USE_GREENROOM),
        GithubPullRequestStandIn(),
        ForeignAction("fetch:cookiecutter", "Runs cookiecutter on a skeleton",
                      instead="use fetch:template with cookiecutterCompat: true"),
        ForeignAction("fetch:rails", "Runs `rails new` to create a project"),
        ForeignAction("argocd:create-resources", "Creates Argo CD resources"),
        ForeignAction("roadiehq:utils:merge", "Merges data into a workspace file"),
        ForeignAction("notification:send", "Sends a Backstage notification"),
    ]
