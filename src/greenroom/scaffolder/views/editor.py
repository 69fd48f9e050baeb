"""The template editor page: paste (or load) a template, give values as JSON, dry-run it.

Nothing is stored or published: ``service.editor.editor_dry_run`` lints the text (problems carry
line numbers) and dry-runs it. A template loaded from the catalog keeps its ref in the form, so
its relative ``./skeleton`` fetches resolve in its own folder on the server.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from fastapi import APIRouter, Form, Request, Response

from greenroom.core.errors import InputError
from greenroom.scaffolder.service.editor import editor_dry_run
from greenroom.scaffolder.views.common import CreatePageRoute, principal, scaffolder, web

router = APIRouter(route_class=CreatePageRoute)


def _sample_values(entity: dict[str, Any]) -> dict[str, Any]:
    """Defaults of the template's parameters, as a starting point for the values box."""
    out: dict[str, Any] = {}
    params = (entity.get("spec") or {}).get("parameters") or []
    for page in params if isinstance(params, list) else [params]:
        for name, prop in ((page or {}).get("properties") or {}).items():
            if isinstance(prop, dict) and "default" in prop:
                out[name] = prop["default"]
    return out


def _as_yaml(entity: dict[str, Any]) -> str:
    """The entity as its author wrote it: without what the catalog added."""
    meta = {k: v for k, v in (entity.get("metadata") or {}).items() if k not in ("uid", "etag", "annotations")}
    authored = {"apiVersion": entity.get("apiVersion"), "kind": entity.get("kind"), "metadata": meta,
                "spec": entity.get("spec") or {}}
    return str(yaml.safe_dump(authored, sort_keys=False, allow_unicode=True, width=100))


async def _render(request: Request, status: int = 200, **ctx: Any) -> Response:
    entities = await scaffolder(request).list_templates()
    choices = [(f"template:{(e['metadata'].get('namespace') or 'default')}/{e['metadata']['name']}",
                e["metadata"].get("title") or e["metadata"]["name"]) for e in entities]
    defaults: dict[str, Any] = {"text": "", "values": "{}", "template_ref": "", "result": None, "error": None}
    return web(request).render(request, "scaffolder/editor.html", status=status, active="create",
                               choices=choices, **{**defaults, **ctx})


async def _entity(request: Request, ref: str) -> dict[str, Any]:
    kind_ns, _, name = ref.partition("/")
    namespace = kind_ns.partition(":")[2] or "default"
    return await scaffolder(request).get_template(namespace, "template", name)


# Aliases may refer to aliases, so a dozen lines can stand for millions of values ("billion
# laughs") that every later step walks. The text is measured as it would be expanded, on the node
# graph where each alias is still one shared node.
MAX_YAML_NODES = 200_000


def _expanded_size(text: str) -> int:
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        sizes[id(node)] = 1  # a recursive alias counts once
        if isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total = 1 + sum(size(key) + size(value) for key, value in node.value)
        else:
            total = 1
        sizes[id(node)] = total
        return total

    try:
        return sum(size(doc) for doc in yaml.compose_all(text))
    except yaml.YAMLError:
        return 0  # the dry run reports the syntax error, with its line
    except RecursionError:
        return MAX_YAML_NODES + 1


@router.get("/create/edit")
async def editor_page(request: Request, template: str = "") -> Response:
    if not template:
        return await _render(request)
    entity = await _entity(request, template)
    return await _render(request, text=_as_yaml(entity), template_ref=template,
                         values=json.dumps(_sample_values(entity), indent=2))


@router.post("/create/edit")
async def editor_run(request: Request, text: str = Form(""), values: str = Form("{}"),
                     template_ref: str = Form("")) -> Response:
    ctx: dict[str, Any] = {"text": text, "values": values, "template_ref": template_ref}
    try:
        parsed = json.loads(values or "{}")
    except json.JSONDecodeError as exc:
        return await _render(request, status=400, **ctx,
                             error=f"values: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}")
    if not text.strip():
        return await _render(request, status=400, **ctx, error="Paste a template's YAML or load one first.")
    if _expanded_size(text) > MAX_YAML_NODES:
        return await _render(request, status=400, **ctx,
                             error=f"The YAML expands to more than {MAX_YAML_NODES} values through its aliases "
                                   "(*name); write fewer of them.")
    entity = await _entity(request, template_ref) if template_ref else None
    try:
        result = await editor_dry_run(scaffolder(request), text, parsed, entity, principal(request))
    except InputError as exc:
        return await _render(request, status=400, **ctx, error=exc.message)
    return await _render(request, status=200, **ctx, result=result,
                         output_json=json.dumps(result.output, indent=2, ensure_ascii=False))
