"""From a Template entity to what a task stores and what the runner needs.

The stored task spec follows Backstage's ``TaskSpec``: ``{apiVersion, steps (ids filled in),
output, parameters (the user's values, secret fields removed), user: {ref, entity},
templateInfo: {entityRef, baseUrl, entity: {metadata, spec: {parameters}}}}``. The template's
parameter schemas ride along under ``templateInfo.entity.spec`` so a run (or a retry after a
restart) validates and masks exactly as at creation, even if the catalog changed since.

Where relative ``fetch:*`` URLs resolve: a template read from a ``file:`` location uses its
directory; climbing with ``..`` is allowed up to the repository root (the nearest ancestor with
``.git``, else the directory of the origin location, else the template's own directory).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from greenroom.core.errors import InputError
from greenroom.scaffolder.engine.parameters import secret_fields
from greenroom.scaffolder.model import JsonObject, TemplateInfo, TemplateSpec

ANNOTATION_LOCATION = "backstage.io/managed-by-location"
ANNOTATION_ORIGIN_LOCATION = "backstage.io/managed-by-origin-location"


def _file_dir(location: str | None) -> Path | None:
    """Directory of a ``file:`` location annotation value, else None."""
    if not location or not location.startswith("file:"):
        return None
    target = location[len("file:"):]
    if target.startswith("//"):
        target = unquote(urlsplit(location).path)
    return Path(target).parent


def _git_root(start: Path) -> Path | None:
    for candidate in (start, *start.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


def base_urls(entity: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """``(baseUrl, rootUrl)`` of a template: where its relative fetches start and how far up they
    may climb. URL locations give ``(directory URL, None)``."""
    annotations = (entity.get("metadata") or {}).get("annotations") or {}
    location = str(annotations.get(ANNOTATION_LOCATION) or "")
    base = _file_dir(location)
    if base is None:
        if location.startswith("url:"):
            url = location[len("url:"):]
            return url.rsplit("/", 1)[0] + "/", None
        return None, None
    root = _git_root(base)
    if root is None:
        origin = _file_dir(str(annotations.get(ANNOTATION_ORIGIN_LOCATION) or ""))
        inside = origin is not None and (base == origin or origin in base.parents)
        root = origin if inside and origin is not None else base
    return base.as_uri() + "/", root.as_uri() + "/"


def template_info(spec: Mapping[str, Any]) -> TemplateInfo:
    info = spec.get("templateInfo") or {}
    ref = str(info.get("entityRef") or "template:default/unknown")
    base, root = info.get("baseUrl"), info.get("rootUrl")
    if isinstance(base, str) and base.startswith("file:"):
        base_dir = Path(unquote(urlsplit(base).path))
        root_dir = Path(unquote(urlsplit(root).path)) if isinstance(root, str) else base_dir
        return TemplateInfo(ref, base_dir=base_dir, repository_root=root_dir)
    return TemplateInfo(ref, base_url=base if isinstance(base, str) else None)


def split_secret_values(parameters: list[JsonObject], values: Mapping[str, Any]) -> tuple[JsonObject, JsonObject]:
    """``(values to store, values of password/Secret fields kept only in memory)``."""
    hidden = secret_fields(parameters)
    stored = {k: v for k, v in values.items() if k not in hidden}
    secret = {k: v for k, v in values.items() if k in hidden}
    return stored, secret


def build_task_spec(entity: Mapping[str, Any], stored_values: JsonObject, user_ref: str | None,
                    user_entity: JsonObject | None) -> JsonObject:
    parsed = TemplateSpec.from_entity(entity)
    metadata = copy.deepcopy(dict(entity.get("metadata") or {}))
    base, root = base_urls(entity)
    return {
        "apiVersion": entity.get("apiVersion"),
        "steps": [s.as_json() for s in parsed.steps],
        "output": parsed.output,
        "parameters": stored_values,
        "user": {"ref": user_ref, **({"entity": user_entity} if user_entity else {})},
        "templateInfo": {
            "entityRef": parsed.entity_ref,
            **({"baseUrl": base} if base else {}),
            **({"rootUrl": root} if root else {}),
            "entity": {"metadata": metadata, "spec": {"parameters": parsed.parameters}},
        },
    }


def entity_from_spec(spec: Mapping[str, Any]) -> JsonObject:
    """The Template entity a stored task spec runs (inverse of ``build_task_spec``)."""
    entity = (spec.get("templateInfo") or {}).get("entity") or {}
    steps = []
    for step in spec.get("steps") or []:
        raw = dict(step)
        steps.append(raw)
    return {"apiVersion": spec.get("apiVersion"), "kind": "Template", "metadata": entity.get("metadata") or {},
            "spec": {"parameters": (entity.get("spec") or {}).get("parameters") or [], "steps": steps,
                     "output": spec.get("output") or {}}}


def parameter_schema(entity: Mapping[str, Any]) -> JsonObject:
    """Backstage's ``GET …/parameter-schema`` body."""
    metadata = entity.get("metadata") or {}
    parsed = TemplateSpec.from_entity(entity)
    body: JsonObject = {
        "title": metadata.get("title") or metadata.get("name"),
        "description": metadata.get("description"),
        "steps": [{"title": page.get("title") or "Please enter the following information",
                   "description": page.get("description"), "schema": page} for page in parsed.parameters],
    }
    if "ui:options" in metadata:
        body["ui:options"] = metadata["ui:options"]
    return body


def check_template_kind(kind: str) -> None:
    if kind.lower() != "template":
        raise InputError(f"Invalid kind, only 'Template' kind is supported (got {kind!r})")


def as_path_or_none(value: str | os.PathLike[str] | None) -> Path | None:
    return Path(value) if value is not None else None
