"""Runs a v1beta3 template's steps against a workspace directory.

Model (as Backstage's NunjucksWorkflowRunner): the context is ``{parameters, steps, secrets, user,
context: {task: {id}}, each}``; for each step in order: check cancellation, evaluate ``if`` (a false
value skips the step and leaves no output), render ``each`` (must be a list or object) and the input
per iteration, validate the input against the action's input schema, run the handler, store
``steps.<id>.output`` (a list per output name when ``each`` is used). At the end ``spec.output`` is
rendered. In a dry-run, inputs are rendered without secrets, and an action that does not support
dry-run is skipped with its outputs made up from its output schema.

Failure behaviour: the first failing step raises ``TaskFailedError`` (after a ``failed`` log event
naming the step); cancellation raises ``CancelledError``; time and workspace size are bounded.
Every log line passes through ``Masker``: secret values, values of password fields and rendered
strings that changed because of a secret are replaced by ``***``.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator

from greenroom.core.errors import InputError, NotFoundError
from greenroom.scaffolder.engine.expressions import ExpressionEngine, is_truthy
from greenroom.scaffolder.engine.jscompat import MISSING
from greenroom.scaffolder.engine.parameters import apply_defaults, secret_fields, validate_parameters
from greenroom.scaffolder.model import (
    Action,
    ActionContext,
    CancelledError,
    EventSink,
    JsonObject,
    RunResult,
    Step,
    TaskEvent,
    TemplateInfo,
    TemplateSpec,
)

MAX_WORKSPACE_BYTES = 200 * 1024 * 1024


class TaskFailedError(InputError):
    """A step failed; ``step_id`` names it and ``events`` holds everything logged so far."""

    def __init__(self, message: str, step_id: str | None, events: list[TaskEvent]) -> None:
        super().__init__(message)
        self.step_id = step_id
        self.events = events


class Masker:
    """Replaces secret substrings in log text (longest first, so overlapping secrets mask fully)."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, *values: Any) -> None:
        for value in values:
            if isinstance(value, str) and len(value) >= 3:
                self._secrets.add(value)

    def __call__(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text


def example_output(schema: Any) -> Any:
    """Backstage's ``generateExampleOutput``: first example, else a placeholder by type."""
    if not isinstance(schema, Mapping):
        return "<unknown>"
    if isinstance(schema.get("examples"), list) and schema["examples"]:
        return schema["examples"][0]
    kind = schema.get("type")
    if kind == "object":
        return {k: example_output(v) for k, v in (schema.get("properties") or {}).items()}
    if kind == "array":
        items = schema.get("items")
        return [example_output(items)] if items else []
    return {"string": "<example>", "number": 0, "integer": 0, "boolean": False}.get(str(kind), "<unknown>")


def _collect_changed(with_secrets: Any, without: Any) -> list[str]:
    if isinstance(with_secrets, str):
        return [with_secrets] if with_secrets != without else []
    if isinstance(with_secrets, list):
        other = without if isinstance(without, list) else []
        return [s for i, v in enumerate(with_secrets) for s in _collect_changed(v, other[i] if i < len(other) else None)]
    if isinstance(with_secrets, dict):
        other = without if isinstance(without, dict) else {}
        return [s for k, v in with_secrets.items() for s in _collect_changed(v, other.get(k))]
    return []


def _workspace_size(path: Path) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files
               if not os.path.islink(os.path.join(d, f)))


class _Run:
    def __init__(self, spec: TemplateSpec, workspace: Path, actions: Mapping[str, Action],
                 info: TemplateInfo, opts: dict[str, Any]) -> None:
        self.spec, self.workspace, self.actions, self.info = spec, workspace, actions, info
        self.dry_run: bool = opts["dry_run"]
        self.secrets: dict[str, str] = dict(opts["secrets"] or {})
        self.sink: EventSink | None = opts["on_event"]
        self.is_cancelled: Callable[[], bool] = opts["is_cancelled"]
        self.engine: ExpressionEngine = opts["expressions"] or ExpressionEngine()
        self.services = {"expressions": self.engine, **(opts["services"] or {})}
        self.deadline = time.monotonic() + opts["max_seconds"]
        self.events: list[TaskEvent] = []
        self.masker = Masker()
        self.masker.add(*self.secrets.values())
        self.user_ref, self.user_entity = opts["user_ref"], opts["user_entity"]

    def emit(self, message: str, step_id: str | None = None, status: str | None = None,
             kind: str = "log", **extra: Any) -> None:
        body: JsonObject = {"message": self.masker(message), **extra}
        if step_id is not None:
            body["stepId"] = step_id
        if status is not None:
            body["status"] = status
        event = TaskEvent(kind, body)  # type: ignore[arg-type]
        self.events.append(event)
        if self.sink is not None:
            self.sink(event)

    def check(self, step: Step) -> None:
        if self.is_cancelled():
            self.emit(f"Step {step.id} has been cancelled.", step.id, "cancelled")
            raise CancelledError(f"Step {step.id} ({step.name}) has been cancelled.")
        if time.monotonic() > self.deadline:
            raise InputError("the task ran out of time")

    async def run(self, context: JsonObject) -> JsonObject:
        self.emit(f"Starting up task with {len(self.spec.steps)} steps")
        for step in self.spec.steps:
            self.check(step)
            try:
                await self.step(step, context)
            except CancelledError:
                raise
            except Exception as exc:
                message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
                self.emit(message, step.id, "failed")
                raise TaskFailedError(f"step {step.id} ({step.action}) failed: {self.masker(message)}",
                                      step.id, self.events) from exc
            self.check(step)
        output = self.engine.evaluate(self.spec.output, context)
        return output if isinstance(output, dict) else {}

    def _render(self, value: Any, context: JsonObject) -> Any:
        rendered = self.engine.evaluate(value, context)
        return None if rendered is MISSING else rendered

    async def step(self, step: Step, context: JsonObject) -> None:
        self.emit(f"Beginning step {step.name}", step.id, "processing")
        if step.if_ is False or (
            isinstance(step.if_, str) and step.each is None
            and not is_truthy(self.engine.evaluate(step.if_, context))
        ):
            self.emit(f"Skipping step {step.id} because its if condition was false", step.id, "skipped")
            return
        action = self.actions.get(step.action)
        if action is None:
            raise NotFoundError(f"Template action with ID '{step.action}' is not registered.")
        if self.dry_run:
            shown = self._render(step.input, {**context, "secrets": {k: "***" for k in self.secrets}})
            self.emit(f"Running {action.id} in dry-run mode with inputs (secrets redacted): "
                      f"{json.dumps(shown, indent=2, ensure_ascii=False)}", step.id)
            if not action.supports_dry_run:
                self.emit(f"Skipping because {action.id} does not support dry-run", step.id, "skipped")
                context["steps"][step.id] = {"output": example_output(action.output_schema) or {}}
                return
        base = {**context, "secrets": {} if self.dry_run else self.secrets}
        if step.each is not None:
            each = self._render(step.each, base)
            if isinstance(each, list):
                pairs = [(str(i), v) for i, v in enumerate(each)]
            elif isinstance(each, dict):
                pairs = list(each.items())
            else:
                raise InputError(f"Invalid value on action {action.id}.each parameter, {step.each!r} "
                                 "must resolve to a list or an object")
            iterations = [{"each": {"key": k, "value": v}} for k, v in pairs]
        else:
            iterations = [{}]
        prepared = []
        for it in iterations:
            full = {**base, **it}
            runs = not it or not isinstance(step.if_, str) or is_truthy(self.engine.evaluate(step.if_, full))
            step_input = self._render(step.input, full) or {}
            label = f"{action.id}[{it['each']['key']}]" if it else action.id
            if runs and action.input_schema:
                errors = [f"instance{''.join('.' + str(p) for p in e.path)} {e.message}"
                          for e in Draft7Validator(action.input_schema).iter_errors(step_input)]
                if errors:
                    raise InputError(f"Invalid input passed to action {label}, {', '.join(errors)}")
            if self.secrets and not self.dry_run:
                plain = self._render(step.input, {**full, "secrets": {}})
                self.masker.add(*_collect_changed(step_input, plain))
            prepared.append((it, runs, step_input))
        outputs: JsonObject = {}

        def output(name: str, value: Any) -> None:
            if step.each is not None:
                outputs.setdefault(name, []).append(value)
            else:
                outputs[name] = value

        for it, runs, step_input in prepared:
            if it:
                self.emit(("Running" if runs else "Skipping") + f" step each: {json.dumps(it['each'], default=str)}",
                          step.id)
            if not runs:
                continue
            ctx = ActionContext(
                input=step_input, workspace=self.workspace, log=lambda m, s=step.id: self.emit(str(m), s),
                output=output, secrets=self.secrets, dry_run=self.dry_run, template_info=self.info,
                step_id=step.id, user_ref=self.user_ref, user_entity=self.user_entity,
                is_cancelled=self.is_cancelled, services=self.services,
            )
            result = action.handler(ctx)
            if inspect.isawaitable(result):
                remaining = max(self.deadline - time.monotonic(), 0.001)
                try:
                    await asyncio.wait_for(result, remaining)
                except TimeoutError:
                    raise InputError(f"step {step.id} did not finish in time") from None
        context["steps"][step.id] = {"output": outputs}
        if _workspace_size(self.workspace) > MAX_WORKSPACE_BYTES:
            raise InputError(f"the workspace grew beyond {MAX_WORKSPACE_BYTES // (1024 * 1024)} MB")
        self.emit(f"Finished step {step.name}", step.id, "completed")


async def run_template(
    template: TemplateSpec | Mapping[str, Any],
    values: Mapping[str, Any],
    workspace: Path,
    *,
    actions: Mapping[str, Action],
    template_info: TemplateInfo,
    secrets: Mapping[str, str] | None = None,
    dry_run: bool = False,
    on_event: EventSink | None = None,
    is_cancelled: Callable[[], bool] = lambda: False,
    user_ref: str | None = None,
    user_entity: JsonObject | None = None,
    task_id: str = "dry-run",
    services: Mapping[str, Any] | None = None,
    expressions: ExpressionEngine | None = None,
    max_seconds: float = 600.0,
    fill_defaults: bool = True,
) -> RunResult:
    """Run ``template`` with the user's ``values`` in ``workspace`` (which must exist).

    Raises ``TemplateError`` (not a v1beta3 template), ``ParameterValidationError`` (bad values),
    ``TaskFailedError`` (a step failed) or ``CancelledError``. Events go to ``on_event`` as they
    happen and are returned in ``RunResult.events`` (a final ``completion`` event included).
    """
    spec = template if isinstance(template, TemplateSpec) else TemplateSpec.from_entity(template)
    params = apply_defaults(spec.parameters, values) if fill_defaults else dict(values)
    validate_parameters(spec.parameters, params)
    run = _Run(spec, workspace, actions, template_info, {
        "dry_run": dry_run, "secrets": secrets, "on_event": on_event, "is_cancelled": is_cancelled,
        "expressions": expressions, "services": services, "max_seconds": max_seconds,
        "user_ref": user_ref, "user_entity": user_entity,
    })
    run.masker.add(*(params.get(name) for name in secret_fields(spec.parameters)))
    context: JsonObject = {
        "parameters": params, "steps": {}, "secrets": {},
        "user": {"ref": user_ref, "entity": user_entity} if user_ref else {},
        "context": {"task": {"id": task_id}},
    }
    try:
        output = await run.run(context)
    except TaskFailedError as exc:
        run.emit("Run completed with status: failed", kind="completion", error={"message": exc.message})
        raise
    except CancelledError:
        run.emit("Run completed with status: cancelled", kind="cancelled")
        raise
    run.emit("Run completed with status: completed", kind="completion", output=output)
    return RunResult(output=output, events=run.events, steps=spec.steps)
