"""catalog:write, catalog:register, catalog:fetch (the last two through ``CatalogPort``)."""

from __future__ import annotations

import yaml

from greenroom.core.errors import InputError, NotFoundError
from greenroom.scaffolder.engine.actions.base import BaseAction, strict_object
from greenroom.scaffolder.engine.filters import parse_entity_ref
from greenroom.scaffolder.engine.paths import safe_child
from greenroom.scaffolder.model import ActionContext, JsonObject

SOURCE_TEMPLATE_ANNOTATION = "backstage.io/source-template"


def entity_ref(entity: JsonObject) -> str:
    meta = entity.get("metadata") or {}
    return f"{str(entity.get('kind', '')).lower()}:{meta.get('namespace') or 'default'}/{meta.get('name')}"


class CatalogWriteAction(BaseAction):
    id = "catalog:write"
    description = "Writes the catalog-info.yaml for your template"
    input_schema = strict_object({
        "filePath": {"type": "string", "title": "Catalog file path",
                     "description": "Defaults to catalog-info.yaml"},
        "entity": {"type": "object", "title": "Entity info to write catalog-info.yaml"},
    }, ["entity"])

    async def handler(self, ctx: ActionContext) -> None:
        entity = ctx.input.get("entity")
        if not isinstance(entity, dict):
            raise InputError("catalog:write: input `entity` must be an object")
        path = safe_child(ctx.workspace, self.string(ctx, "filePath", "catalog-info.yaml"), "filePath")
        ctx.log("Writing catalog-info.yaml")
        metadata = dict(entity.get("metadata") or {})
        if ctx.template_info.entity_ref:
            metadata["annotations"] = {**(metadata.get("annotations") or {}),
                                       SOURCE_TEMPLATE_ANNOTATION: ctx.template_info.entity_ref}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump({**entity, "metadata": metadata}, sort_keys=False, allow_unicode=True))


class CatalogRegisterAction(BaseAction):
    id = "catalog:register"
    description = "Registers entities from a catalog descriptor file in the workspace into the software catalog."
    supports_dry_run = False
    input_schema = {
        "oneOf": [
            strict_object({"catalogInfoUrl": {"type": "string"}, "optional": {"type": "boolean"}},
                          ["catalogInfoUrl"]),
            strict_object({"repoContentsUrl": {"type": "string"}, "catalogInfoPath": {"type": "string"},
                           "optional": {"type": "boolean"}}, ["repoContentsUrl"]),
        ]
    }
    output_schema = {"type": "object", "properties": {
        "entityRef": {"type": "string"}, "catalogInfoUrl": {"type": "string"}}}

    async def handler(self, ctx: ActionContext) -> None:
        url = ctx.input.get("catalogInfoUrl")
        if not url:
            base = self.string(ctx, "repoContentsUrl").rstrip("/")
            url = base + "/" + str(ctx.input.get("catalogInfoPath") or "/catalog-info.yaml").lstrip("/")
        ctx.log(f"Registering {url} in the catalog")
        catalog = self.service(ctx, "catalog")
        try:
            result = await catalog.register_location(url)
        except Exception as exc:
            if not ctx.input.get("optional"):
                raise
            ctx.log(f"Failed to register {url} (optional, continuing): {exc}")
            ctx.output("catalogInfoUrl", url)
            return
        refs = [entity_ref(e) for e in result.get("entities") or []]
        chosen = (next((r for r in refs if r.startswith("component:")), None)
                  or next((r for r in refs if not r.startswith("location:")), None)
                  or (refs[0] if refs else None))
        if chosen:
            ctx.output("entityRef", chosen)
        ctx.output("catalogInfoUrl", url)


class CatalogFetchAction(BaseAction):
    id = "catalog:fetch"
    description = "Returns entity or entities from the catalog by entity reference(s)"
    input_schema = strict_object({
        "entityRef": {"type": "string"}, "entityRefs": {"type": "array", "items": {"type": "string"}},
        "optional": {"type": "boolean"}, "defaultKind": {"type": "string"}, "defaultNamespace": {"type": "string"},
    })
    output_schema = {"type": "object", "properties": {
        "entity": {"type": "object"}, "entities": {"type": "array", "items": {"type": "object"}}}}

    async def handler(self, ctx: ActionContext) -> None:
        catalog = self.service(ctx, "catalog")
        defaults = {"defaultKind": ctx.input.get("defaultKind"),
                    "defaultNamespace": ctx.input.get("defaultNamespace")}
        optional = bool(ctx.input.get("optional"))

        def full_ref(ref: str) -> str:
            p = parse_entity_ref(ref, defaults)
            return f"{p['kind'].lower()}:{p['namespace']}/{p['name']}"

        if ctx.input.get("entityRef") is None and ctx.input.get("entityRefs") is None:
            raise InputError("catalog:fetch: give `entityRef` or `entityRefs`")
        if ctx.input.get("entityRef") is not None:
            ref = full_ref(self.string(ctx, "entityRef"))
            entity = await catalog.get_entity(ref)
            if entity is None and not optional:
                raise NotFoundError(f"Entity {ref} not found")
            ctx.output("entity", entity)
        if ctx.input.get("entityRefs") is not None:
            found = []
            for raw in self.strings(ctx, "entityRefs") or []:
                ref = full_ref(raw)
                entity = await catalog.get_entity(ref)
                if entity is None and not optional:
                    raise NotFoundError(f"Entity {ref} not found")
                found.append(entity)
            ctx.output("entities", found)
