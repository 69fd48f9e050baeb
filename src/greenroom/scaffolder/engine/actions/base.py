"""Shared pieces of the built-in actions: a base class carrying id/description/schemas, and
helpers to read typed input with error messages that name the action and the field."""

from __future__ import annotations

from typing import Any

from greenroom.core.errors import InputError
from greenroom.scaffolder.model import ActionContext, JsonObject


def strict_object(properties: JsonObject, required: list[str] | None = None) -> JsonObject:
    """An input/output schema that refuses unknown keys, as Backstage's zod schemas do."""
    schema: JsonObject = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


class BaseAction:
    """Convenience base; subclasses set the class attributes and implement ``handler``."""

    id: str = ""
    description: str = ""
    input_schema: JsonObject = {"type": "object"}
    output_schema: JsonObject = {}
    supports_dry_run: bool = True

    async def handler(self, ctx: ActionContext) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def string(self, ctx: ActionContext, key: str, default: str | None = None) -> str:
        value = ctx.input.get(key, default)
        if not isinstance(value, str):
            raise InputError(f"{self.id}: input `{key}` must be a string, got {value!r}")
        return value

    def optional_string(self, ctx: ActionContext, key: str) -> str | None:
        value = ctx.input.get(key)
        return None if value is None else self.string(ctx, key)

    def strings(self, ctx: ActionContext, key: str) -> list[str] | None:
        value: Any = ctx.input.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InputError(f"{self.id}: input `{key}` must be a list of strings, got {value!r}")
        return value

    def service(self, ctx: ActionContext, name: str) -> Any:
        port = ctx.services.get(name)
        if port is None:
            raise InputError(f"{self.id} needs the `{name}` service, which this scaffolder was not given")
        return port
