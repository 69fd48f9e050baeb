"""Domain types and extension Protocols of the scaffolder (no I/O here).

A *template* (``scaffolder.backstage.io/v1beta3``) is a list of parameter forms (JSON schemas), a
list of steps (each one action with an input that may contain ``${{ }}`` expressions) and an
output (links and text shown to the user). The engine (``greenroom.scaffolder.engine``) runs the
steps against a private *workspace* directory; actions are the only code that touches it.

Extension points:

* ``Action`` – one step kind, e.g. ``fetch:template``. Third-party actions are objects named by the
  entry-point group ``greenroom.scaffolder.actions`` (see ``engine.actions.load_actions``).
* ``CatalogPort`` / ``PublisherPort`` / ``UrlReaderPort`` – services the integrator supplies so the
  built-in ``catalog:*`` and ``publish:greenroom`` actions (and ``fetch:*`` with absolute URLs) can
  work without the engine knowing about the database or HTTP.

Handlers are ``async def handler(ctx) -> None``; a synchronous ``def handler(ctx)`` is also accepted
(the runner awaits the result only when it is awaitable). Handlers report results through
``ctx.output(name, value)`` and raise ``greenroom.core.errors.InputError`` (or any exception) to
fail the step.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from greenroom.core.errors import InputError

JsonObject = dict[str, Any]

TEMPLATE_API_VERSION = "scaffolder.backstage.io/v1beta3"
LEGACY_API_VERSIONS = ("backstage.io/v1beta2", "backstage.io/v1beta1", "backstage.io/v1alpha1")
DRY_RUN_TEMPLATE_REF = "template:default/dry-run"


class TemplateError(InputError):
    """The template document itself is unusable (wrong apiVersion, steps not a list, ...)."""

    name = "InputError"


class CancelledError(Exception):
    """The task was cancelled between steps (or an action saw ``ctx.is_cancelled()``)."""


@dataclass(frozen=True)
class FieldError:
    """One parameter validation problem, in the shape of Backstage's ``ValidationError``."""

    path: tuple[str | int, ...]
    property: str
    message: str
    name: str
    argument: Any = None
    instance: Any = None
    schema: Any = None

    @property
    def stack(self) -> str:
        return f"{self.property} {self.message}"

    def as_json(self) -> JsonObject:
        return {
            "path": list(self.path),
            "property": self.property,
            "message": self.message,
            "name": self.name,
            "argument": self.argument,
            "instance": self.instance,
            "schema": self.schema,
            "stack": self.stack,
        }


class ParameterValidationError(InputError):
    """``values`` do not satisfy the template's parameter schemas; ``errors`` lists every field."""

    def __init__(self, errors: list[FieldError]) -> None:
        detail = "; ".join(f"{e.property}: {e.message}" for e in errors[:10])
        super().__init__(f"Template parameters are invalid: {detail}")
        self.errors = errors


@dataclass(frozen=True)
class Step:
    """One ``spec.steps[]`` entry. ``id`` defaults to ``step-<index>``, ``name`` to the action id."""

    id: str
    name: str
    action: str
    input: JsonObject = field(default_factory=dict)
    if_: Any = None  # bool, string expression or None (always run)
    each: Any = None  # expression or literal list/object; None = run once
    raw: JsonObject = field(default_factory=dict)

    def as_json(self) -> JsonObject:
        """The step as the dry-run response lists it (``{id, name, action, ...}``)."""
        return {**self.raw, "id": self.id, "name": self.name, "action": self.action}


@dataclass(frozen=True)
class TemplateSpec:
    """A parsed v1beta3 template: what the runner executes."""

    name: str
    namespace: str
    parameters: list[JsonObject]
    steps: list[Step]
    output: JsonObject
    title: str = ""

    @property
    def entity_ref(self) -> str:
        return f"template:{self.namespace}/{self.name}"

    @classmethod
    def from_entity(cls, entity: Mapping[str, Any]) -> TemplateSpec:
        """Read a Template entity (already parsed YAML/JSON); raise ``TemplateError`` with the fix."""
        api_version = entity.get("apiVersion")
        if api_version in LEGACY_API_VERSIONS:
            raise TemplateError(
                f"apiVersion {api_version} templates are no longer supported; rewrite the template as "
                f"apiVersion: {TEMPLATE_API_VERSION} (parameters stay, steps use `${{{{ parameters.x }}}}` "
                "instead of `{{ parameters.x }}`, and fetch:cookiecutter skeletons become fetch:template)"
            )
        if api_version != TEMPLATE_API_VERSION or entity.get("kind") != "Template":
            raise TemplateError(
                f"not a software template: expected apiVersion {TEMPLATE_API_VERSION} and kind Template, "
                f"got apiVersion {api_version!r} kind {entity.get('kind')!r}"
            )
        metadata = entity.get("metadata") or {}
        spec = entity.get("spec") or {}
        params = spec.get("parameters") or []
        if isinstance(params, dict):
            params = [params]
        if not isinstance(params, list) or not all(isinstance(p, dict) for p in params):
            raise TemplateError("spec.parameters: must be an object or a list of objects (JSON schemas)")
        raw_steps = spec.get("steps") or []
        if not isinstance(raw_steps, list):
            raise TemplateError("spec.steps: must be a list of steps")
        steps: list[Step] = []
        for index, raw in enumerate(raw_steps):
            if not isinstance(raw, dict) or not isinstance(raw.get("action"), str):
                raise TemplateError(f"spec.steps[{index}]: each step needs an `action` string")
            step_input = raw.get("input") or {}
            if not isinstance(step_input, dict):
                raise TemplateError(f"spec.steps[{index}].input: must be an object")
            step_id = str(raw.get("id") or f"step-{index}")
            steps.append(
                Step(
                    id=step_id,
                    name=str(raw.get("name") or raw["action"]),
                    action=raw["action"],
                    input=step_input,
                    if_=raw.get("if"),
                    each=raw.get("each"),
                    raw=dict(raw),
                )
            )
        output = spec.get("output") or {}
        if not isinstance(output, dict):
            raise TemplateError("spec.output: must be an object")
        return cls(
            name=str(metadata.get("name") or "unnamed"),
            namespace=str(metadata.get("namespace") or "default"),
            title=str(metadata.get("title") or ""),
            parameters=params,
            steps=steps,
            output=output,
        )


@dataclass(frozen=True)
class TemplateInfo:
    """Where a template came from, so relative ``url`` inputs of fetch actions can be resolved.

    ``base_dir`` is the directory holding ``template.yaml``; relative fetch URLs resolve against it
    and may climb (``../../../skeletons``) only while they stay inside ``repository_root``.
    ``base_url`` is set instead (or as well) when the template was read from a URL.
    """

    entity_ref: str
    base_dir: Path | None = None
    repository_root: Path | None = None
    base_url: str | None = None


@dataclass(frozen=True)
class TaskEvent:
    """One event of a running task, in the shape of Backstage's task events (type + body)."""

    type: Literal["log", "completion", "cancelled"]
    body: JsonObject

    def as_json(self) -> JsonObject:
        return {"type": self.type, "body": self.body}


LogFunction = Callable[[str], None]
EventSink = Callable[[TaskEvent], None]


@runtime_checkable
class CatalogPort(Protocol):
    """What catalog actions need from the catalog service (implemented by the integrator)."""

    async def get_entity(self, ref: str) -> JsonObject | None:
        """Return the entity for a full ref like ``component:default/x``, or None if absent."""
        ...

    async def register_location(self, url: str, *, dry_run: bool = False) -> JsonObject:
        """Register (or, with dry_run, analyse) a location; return ``{"entities": [entity, ...]}``.

        Raise ``InputError`` when the URL cannot be read or holds no entities.
        """
        ...


@runtime_checkable
class PublisherPort(Protocol):
    """The built-in git host (forge) as the ``publish:greenroom`` action sees it."""

    async def create_repository(self, owner: str, name: str, description: str) -> JsonObject:
        """Create an empty repository; return ``{"remoteUrl", "cloneUrl", "defaultBranch"}``.

        Raise ``ConflictError`` if it exists already.
        """
        ...

    async def push_directory(
        self, owner: str, name: str, directory: Path, *, branch: str, message: str, author: str
    ) -> JsonObject:
        """Commit every file of ``directory`` to ``branch`` and push; return ``{"commitHash"}``."""
        ...

    def contents_url(self, owner: str, name: str, branch: str) -> str:
        """The URL catalog:register reads files from (``…/blob/<branch>``-style)."""
        ...


@runtime_checkable
class UrlReaderPort(Protocol):
    """Reads remote trees/files for fetch actions given absolute URLs (optional)."""

    async def read_tree(self, url: str, target_dir: Path) -> None:
        """Write the directory tree at ``url`` into ``target_dir``; raise ``InputError`` on failure."""
        ...

    async def read_file(self, url: str) -> bytes:
        """Return the bytes of the file at ``url``; raise ``InputError`` on failure."""
        ...


@dataclass
class ActionContext:
    """Everything an action handler may use. Actions write only below ``workspace``.

    ``output(name, value)`` records a step output (``steps.<id>.output.<name>``); ``log(message)``
    streams a line to the task log (secrets already masked); ``is_cancelled()`` should be polled by
    long-running actions. ``services`` holds the ports (``catalog``, ``publisher``, ``url_reader``,
    ``renderer``); an action must raise ``InputError`` naming the missing port if it needs one.
    """

    input: JsonObject
    workspace: Path
    log: LogFunction
    output: Callable[[str, Any], None]
    secrets: Mapping[str, str]
    dry_run: bool
    template_info: TemplateInfo
    step_id: str
    user_ref: str | None = None
    user_entity: JsonObject | None = None
    is_cancelled: Callable[[], bool] = lambda: False
    services: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Action(Protocol):
    """A step kind. ``input_schema``/``output_schema`` are JSON schemas (served by GET /v2/actions).

    ``supports_dry_run`` False means a dry-run skips the action and fakes its outputs from
    ``output_schema``. ``handler`` may be ``async def`` or plain ``def``.
    """

    id: str
    description: str
    input_schema: JsonObject
    output_schema: JsonObject
    supports_dry_run: bool

    def handler(self, ctx: ActionContext) -> Awaitable[None] | None: ...


@dataclass(frozen=True)
class SerializedFile:
    """One workspace file of a dry-run result (``base64Content`` in JSON)."""

    path: str
    content: bytes
    executable: bool = False

    def as_json(self) -> JsonObject:
        import base64

        return {
            "path": self.path,
            "base64Content": base64.b64encode(self.content).decode("ascii"),
            "executable": self.executable,
        }


@dataclass
class RunResult:
    """Outcome of a finished run: rendered ``output`` and the events that were emitted."""

    output: JsonObject
    events: list[TaskEvent]
    steps: list[Step]


@dataclass
class DryRunResult:
    """The body of ``POST /v2/dry-run``'s 200 response (see ``as_json``)."""

    log: list[JsonObject]
    directory_contents: list[SerializedFile]
    output: JsonObject
    steps: list[JsonObject]

    def as_json(self) -> JsonObject:
        return {
            "log": self.log,
            "directoryContents": [f.as_json() for f in self.directory_contents],
            "output": self.output,
            "steps": self.steps,
        }
