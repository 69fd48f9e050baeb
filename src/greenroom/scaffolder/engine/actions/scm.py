"""What the GitHub/GitLab actions share: integration lookup, repoUrl parsing, a git push of the
workspace over HTTPS, and error messages that never contain a token.

Integrations come from Backstage-style configuration (``integrations.github[]`` /
``integrations.gitlab[]`` with ``host``, ``token``, ``apiBaseUrl``), handed to actions as
``ctx.services["integrations"]`` (``greenroom.core.config.IntegrationsSection`` or the same shape
as plain mappings). An action's ``token`` input wins over the configured token, as in Backstage.

Pushing. The workspace (or ``sourcePath``) is committed with a git directory *outside* the
workspace (``GIT_DIR`` in a temporary folder), so later steps see the workspace unchanged, then
pushed to the clone URL the host returned. Credentials travel as an ``http.extraHeader`` given
through ``GIT_CONFIG_*`` environment variables: never in the command line (visible in ``ps``),
the remote URL or a config file. Every message that could echo them is passed through ``redact``.
"""

from __future__ import annotations

import asyncio
import base64
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from greenroom.core.errors import InputError
from greenroom.scaffolder.engine.filters import DEFAULT_INTEGRATIONS, parse_repo_url
from greenroom.scaffolder.model import ActionContext

GIT_TIMEOUT_SECONDS = 300.0
HTTP_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Integration:
    """One configured host: where its REST API is and which token to use."""

    kind: str
    host: str
    api_base_url: str
    token: str | None


def _field(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)


def _configured(ctx: ActionContext, kind: str) -> list[Any]:
    section = ctx.services.get("integrations")
    items = _field(section, kind) if section is not None else None
    return list(items or [])


def _default_api(kind: str, host: str) -> str:
    if kind == "github":
        return "https://api.github.com" if host == "github.com" else f"https://{host}/api/v3"
    return f"https://{host}/api/v4"


def host_kinds(ctx: ActionContext) -> dict[str, str]:
    """Host → integration kind: Backstage's defaults plus every configured host."""
    kinds = dict(DEFAULT_INTEGRATIONS)
    for kind in ("github", "gitlab"):
        for item in _configured(ctx, kind):
            if _field(item, "host"):
                kinds[str(_field(item, "host"))] = kind
    return kinds


def parse_target(ctx: ActionContext, action_id: str, kind: str) -> tuple[Integration, dict[str, Any]]:
    """The integration and ``{host, owner, repo, ...}`` named by the ``repoUrl`` input."""
    repo_url = ctx.input.get("repoUrl")
    kinds = host_kinds(ctx)
    named = urlsplit(f"https://{repo_url}").netloc if isinstance(repo_url, str) else ""
    if named and named not in kinds:
        raise InputError(f"{action_id}: no integration for host {named}; add it to app-config.yaml as "
                         f"integrations.{kind}: [{{host: {named}, token: ...}}]")
    parts = parse_repo_url(repo_url, kinds)
    host = str(parts["host"])
    if kinds.get(host) != kind:
        raise InputError(f"{action_id}: repoUrl host {host} is not a {kind} integration; configure "
                         f"integrations.{kind} with host: {host}")
    item = next((i for i in _configured(ctx, kind) if _field(i, "host") == host), None)
    api = str(_field(item, "apiBaseUrl") or "") if item is not None else ""
    token = ctx.input.get("token") or (_field(item, "token") if item is not None else None)
    if not token:
        raise InputError(f"{action_id}: no token for {host}; set integrations.{kind}[].token for host "
                         f"{host} in app-config.yaml or pass the step input `token`")
    return Integration(kind, host, (api or _default_api(kind, host)).rstrip("/"), str(token)), parts


def redact(text: str, *secrets: str | None) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def describe_http_error(action_id: str, what: str, status: int, body: str, token: str) -> str:
    detail = redact(body.strip()[:300], token)
    hint = {401: "the token was rejected; check integrations token or the `token` input",
            403: "the token lacks permission", 404: "not found, or the token cannot see it"}.get(status, "")
    return f"{action_id}: {what} failed with HTTP {status}" + (f" ({hint})" if hint else "") + (
        f": {detail}" if detail else "")


def source_dir(ctx: ActionContext) -> Path:
    from greenroom.scaffolder.engine.paths import safe_child

    source = safe_child(ctx.workspace, str(ctx.input.get("sourcePath") or "."), "sourcePath")
    if not source.is_dir():
        raise InputError(f"sourcePath {ctx.input.get('sourcePath')!r} is not a directory in the workspace")
    return source


async def _git(args: list[str], env: dict[str, str], cwd: Path, secrets: tuple[str, ...]) -> str:
    proc = await asyncio.create_subprocess_exec(
        "git", *args, cwd=str(cwd), env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), GIT_TIMEOUT_SECONDS)
    except (TimeoutError, asyncio.CancelledError):
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        message = redact(err.decode(errors="replace").strip() or out.decode(errors="replace"), *secrets)
        raise InputError(f"git {args[0]} failed: {message[-500:]}")
    return out.decode(errors="replace").strip()


async def commit_and_push(source: Path, remote_url: str, *, branch: str, message: str, author_name: str,
                          author_email: str, username: str, password: str) -> str:
    """Commit every file under ``source`` as the first commit of ``branch`` and push it to
    ``remote_url``; return the commit sha. Raises InputError naming the failing git command."""
    basic = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    with tempfile.TemporaryDirectory(prefix="greenroom-push-") as tmp:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp, "GIT_DIR": f"{tmp}/repo.git",
            "GIT_WORK_TREE": str(source), "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0",
            "GIT_AUTHOR_NAME": author_name, "GIT_AUTHOR_EMAIL": author_email,
            "GIT_COMMITTER_NAME": author_name, "GIT_COMMITTER_EMAIL": author_email,
            "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader",
            "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
        }
        secrets = (password, basic)
        await _git(["init", "-q", f"--initial-branch={branch}"], env, source, secrets)
        await _git(["add", "-A", "."], env, source, secrets)
        await _git(["commit", "-q", "--allow-empty", "--no-verify", "-m", message], env, source, secrets)
        sha = await _git(["rev-parse", "HEAD"], env, source, secrets)
        await _git(["push", "-q", remote_url, f"HEAD:refs/heads/{branch}"], env, source, secrets)
        return sha


def author(ctx: ActionContext) -> tuple[str, str]:
    """Commit author: the step's gitAuthorName/Email, else Backstage's defaults."""
    return (str(ctx.input.get("gitAuthorName") or "Scaffolder"),
            str(ctx.input.get("gitAuthorEmail") or "scaffolder@backstage.io"))
