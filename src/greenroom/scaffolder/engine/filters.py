"""Backstage's scaffolder filters: parseRepoUrl, parseEntityRef, pick, projectSlug.

They behave as in ``@backstage/plugin-scaffolder-backend``: parseRepoUrl reads
``host?owner=o&repo=r`` (query parameters trimmed of ``/``), knows the host's integration type and
refuses a URL lacking what that type needs; projectSlug is ``owner/repo`` of the same parse.
Failures raise ``InputError`` so the expression fails (and, in step inputs, stays raw).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from greenroom.core.errors import InputError

#: host -> integration type; the integrator adds the forge host as type "greenroom".
DEFAULT_INTEGRATIONS: dict[str, str] = {
    "github.com": "github",
    "gitlab.com": "gitlab",
    "dev.azure.com": "azure",
    "bitbucket.org": "bitbucket",
    "www.bitbucket.org": "bitbucket",
}

_REQUIRED: dict[str, tuple[str, ...]] = {
    "bitbucket": ("project", "repo"),
    "azure": ("project", "repo"),
    "gitea": ("repo",),
    "gerrit": ("repo",),
}


def parse_repo_url(repo_url: Any, integrations: Mapping[str, str]) -> dict[str, Any]:
    if not isinstance(repo_url, str) or not repo_url:
        raise InputError(f"Invalid repo URL passed to publisher, got {repo_url!r}")
    try:
        parts = urlsplit(f"https://{repo_url}")
        host = parts.netloc
    except ValueError as exc:
        raise InputError(f"Invalid repo URL passed to publisher, got {repo_url}, {exc}") from exc
    kind = integrations.get(host)
    if kind is None:
        raise InputError(
            f"No matching integration configuration for host {host}, please check your integrations config"
        )
    query = parse_qs(parts.query, keep_blank_values=True)
    found = {k: query[k][0].strip("/") for k in ("owner", "organization", "workspace", "project", "repo")
             if k in query}
    required = _REQUIRED.get(kind, ("repo", "owner"))
    if kind == "gitlab":
        required = () if found.get("project") else ("owner", "repo")
    if kind == "bitbucket" and host == "www.bitbucket.org":
        required = ("workspace", *required)
    for name in required:
        if not found.get(name):
            raise InputError(f"Invalid repo URL passed to publisher: https://{repo_url}, missing {name}")
    result: dict[str, Any] = {"host": host, "repo": found.get("repo")}
    for name in ("owner", "organization", "workspace", "project"):
        if name in found:
            result[name] = found[name]
    return result


def parse_entity_ref(ref: Any, context: Any = None) -> dict[str, str]:
    """``kind:namespace/name`` into parts; ``context`` may give defaultKind/defaultNamespace."""
    if not isinstance(ref, str) or not ref:
        raise InputError(f"Entity reference must be a non-empty string, got {ref!r}")
    ctx = context if isinstance(context, Mapping) else {}
    kind: str | None
    rest = ref
    if ":" in ref:
        kind, rest = ref.split(":", 1)
    else:
        kind = ctx.get("defaultKind")
    if "/" in rest:
        namespace, name = rest.split("/", 1)
    else:
        namespace, name = ctx.get("defaultNamespace") or "default", rest
    if not kind:
        raise InputError(
            f'Entity reference "{ref}" had missing or empty kind (e.g. did not start with "component:" '
            "or similar)"
        )
    if not namespace or not name or "/" in name or ":" in name:
        raise InputError(f'Entity reference "{ref}" is not of the form kind:namespace/name')
    return {"kind": kind, "namespace": namespace, "name": name}


def pick(obj: Any, key: Any) -> Any:
    """lodash ``get(obj, "a.b.c")``; missing paths give None (printed as "")."""
    current = obj
    for part in str(key).replace("[", ".").replace("]", "").split("."):
        if part == "":
            continue
        if isinstance(current, Mapping):
            current = current.get(part)
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return None
    return current


def make_filters(integrations: Mapping[str, str]) -> dict[str, Callable[..., Any]]:
    def project_slug(repo_url: Any) -> str:
        parsed = parse_repo_url(repo_url, integrations)
        return f"{parsed.get('owner')}/{parsed.get('repo')}"

    return {
        "parseRepoUrl": lambda url: parse_repo_url(url, integrations),
        "parseEntityRef": parse_entity_ref,
        "pick": pick,
        "projectSlug": project_slug,
    }
