"""Scaffolder use cases: templates, tasks, their events, dry-runs. One transaction per call.

Model. ``create_task`` validates the user's values against the template's parameter schemas
(``ParameterValidationError`` lists every field), stores the task spec *without* secrets and
answers with its id; a worker (``greenroom.scaffolder.worker``, one per replica) claims it under a
lease, runs it and writes its events as they happen. Clients read ``events(after)`` (long poll)
or ``stream_events`` (server-sent events).

Secrets. The request's ``secrets`` and the values of ``ui:widget: password`` / ``ui:field:
Secret`` fields are never written to the database or a log: they stay in this process's memory
until a worker of *this* replica claims the task (the task row is pinned to the replica with
``lease_owner`` while open, for ``secret_pin_seconds``), and are dropped when the run ends. So:

* a task whose secrets were lost (the replica stopped before or while running it) fails with a
  ``recovered`` event, and ``retry`` needs the secrets again (``POST …/retry {secrets}``; password
  field values may be given there under their field names). Backstage behaves the same: it clears
  a task's secrets when the task starts and asks for them on retry.

Template files. A template whose relative ``fetch:*`` urls need its folder gets it on disk through
``TemplateSources`` (``sources.py``): a template on the built-in git host is exported at its ref
into ``<tasks>/<id>.template`` when the task is claimed (beside the workspace, removed when the
task finishes, or by the periodic sweep if the run was lost); dry-runs and the editor use a
scratch copy for the length of the call. If the files cannot be had, the task fails at once with
the reason.

Failure behaviour. A worker whose lease expires (process died, machine paused) loses the task:
``recover_expired`` (run by every worker at start and periodically) marks it ``failed`` with a
``recovered`` event and a completion event, so the user sees why and can retry. Cancellation is a
flag the worker reads while heartbeating; the run stops at the next step boundary.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine

from greenroom.auth.model import Principal
from greenroom.core.config import Settings
from greenroom.core.db import reading, transaction
from greenroom.core.errors import ConflictError, InputError, NotFoundError
from greenroom.core.logs import event as log_event
from greenroom.forge import service as forge_service
from greenroom.scaffolder import store
from greenroom.scaffolder.engine import dryrun
from greenroom.scaffolder.engine.actions import describe, load_actions
from greenroom.scaffolder.engine.expressions import ExpressionEngine
from greenroom.scaffolder.engine.filters import DEFAULT_INTEGRATIONS, parse_entity_ref
from greenroom.scaffolder.engine.parameters import apply_defaults, validate_parameters
from greenroom.scaffolder.model import Action, JsonObject, PublisherPort, TemplateSpec, UrlReaderPort
from greenroom.scaffolder.service import templates
from greenroom.scaffolder.service.sources import TaskTemplateFiles, TemplateFiles, TemplateSources

log = logging.getLogger("greenroom.scaffolder")

EventKind = str


class TemplateCatalogPort(Protocol):
    """What the scaffolder needs from the catalog: ``CatalogPort`` plus listing by kind."""

    async def get_entity(self, ref: str) -> JsonObject | None: ...

    async def register_location(self, url: str, *, dry_run: bool = False) -> JsonObject: ...

    async def list_entities(self, kind: str) -> list[JsonObject]: ...


@dataclass
class TaskSecrets:
    """What lives only in memory: request secrets and password-field values."""

    secrets: dict[str, str] = field(default_factory=dict)
    values: JsonObject = field(default_factory=dict)


@dataclass(frozen=True)
class ClaimedTask:
    """A task a worker holds the lease on, with its secrets (empty if this replica has none)."""

    id: str
    spec: JsonObject
    created_by: str | None
    attempts: int
    secrets: TaskSecrets


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def task_json(row: store.TaskRow) -> JsonObject:
    """``SerializedTask`` (never secrets: the row has none)."""
    body: JsonObject = {"id": row.id, "spec": row.spec, "status": row.status, "createdAt": iso(row.created_at),
                        "lastHeartbeatAt": iso(row.last_heartbeat_at)}
    if row.created_by:
        body["createdBy"] = row.created_by
    return body


def event_json(row: store.EventRow) -> JsonObject:
    """``SerializedTaskEvent``."""
    return {"id": row.id, "isTaskRecoverable": False, "taskId": row.task_id, "body": row.body,
            "type": row.type, "createdAt": iso(row.created_at)}


class ScaffolderService:
    def __init__(self, engine: Engine, settings: Settings, catalog: TemplateCatalogPort | None,
                 publisher: PublisherPort | None, *, url_reader: UrlReaderPort | None = None,
                 actions: list[Action] | None = None, lease_seconds: float = 30.0,
                 secret_pin_seconds: float = 600.0, task_timeout_seconds: float = 1800.0,
                 poll_seconds: float = 0.25, replica_id: str | None = None,
                 forge: forge_service.ForgeService | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.catalog = catalog
        self.publisher = publisher
        self.url_reader = url_reader
        self.actions: dict[str, Action] = load_actions(actions)
        self.lease_seconds = lease_seconds
        self.secret_pin_seconds = secret_pin_seconds
        self.task_timeout_seconds = task_timeout_seconds
        self.poll_seconds = poll_seconds
        self.replica_id = replica_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.workspace_root = settings.home / "scaffolder" / "tasks"
        hosts = dict(DEFAULT_INTEGRATIONS)
        for kind in ("github", "gitlab"):
            hosts.update({i.host: kind for i in getattr(settings.integrations, kind)})
        self.expressions = ExpressionEngine(integrations=hosts)
        self._secrets: dict[str, TaskSecrets] = {}
        # the built-in host, for templates kept there; ForgePublisher already carries it
        carried = getattr(publisher, "forge", None)
        if forge is None and isinstance(carried, forge_service.ForgeService):
            forge = carried
        self.sources = TemplateSources(settings, forge)
        self.task_files = TaskTemplateFiles(self.sources, self.workspace_root)

    # -- ports handed to actions ---------------------------------------------------------------
    def services(self) -> dict[str, Any]:
        out: dict[str, Any] = {"integrations": self.settings.integrations}
        for name, port in (("catalog", self.catalog), ("publisher", self.publisher),
                           ("url_reader", self.url_reader)):
            if port is not None:
                out[name] = port
        return out

    def _catalog(self) -> TemplateCatalogPort:
        if self.catalog is None:
            raise InputError("the scaffolder was started without a catalog; templates cannot be looked up")
        return self.catalog

    # -- templates and actions -----------------------------------------------------------------
    def list_actions(self) -> list[JsonObject]:
        return [describe(a) for a in sorted(self.actions.values(), key=lambda a: a.id)]

    def templating_extensions(self) -> JsonObject:
        """``GET /v2/templating-extensions``: filter names (no schemas) and no globals."""
        names = self.expressions.filter_names
        return {"filters": {n: {} for n in names}, "globals": {"functions": {}, "values": {}}}

    async def list_templates(self) -> list[JsonObject]:
        return await self._catalog().list_entities("Template")

    async def get_template(self, namespace: str, kind: str, name: str) -> JsonObject:
        templates.check_template_kind(kind)
        ref = f"template:{namespace}/{name}"
        entity = await self._catalog().get_entity(ref)
        if entity is None:
            raise NotFoundError(f"Template {ref} not found; register the template's location in the catalog")
        TemplateSpec.from_entity(entity)  # refuses legacy apiVersions with the fix
        return entity

    async def get_parameter_schema(self, namespace: str, kind: str, name: str) -> JsonObject:
        return templates.parameter_schema(await self.get_template(namespace, kind, name))

    # -- tasks -----------------------------------------------------------------------------------
    async def create_task(self, template_ref: str, values: Mapping[str, Any], secrets: Mapping[str, str] | None,
                          principal: Principal | None) -> str:
        """Validate, store (without secrets) and queue a task; return its id."""
        if not isinstance(values, Mapping):
            raise InputError("values: must be an object of the template's parameters")
        parts = parse_entity_ref(template_ref, {"defaultKind": "template", "defaultNamespace": "default"})
        entity = await self.get_template(parts["namespace"], parts["kind"], parts["name"])
        parsed = TemplateSpec.from_entity(entity)
        validate_parameters(parsed.parameters, apply_defaults(parsed.parameters, values))
        stored, secret_values = templates.split_secret_values(parsed.parameters, values)
        user_ref = principal.subject if principal else None
        user_entity = None
        if principal is not None and principal.subject.startswith("user:"):
            user_entity = await self._catalog().get_entity(principal.subject)
        spec = templates.build_task_spec(entity, stored, user_ref, user_entity)
        self.sources.check(spec["templateInfo"].get("baseUrl"), spec["steps"])
        held = TaskSecrets(dict(secrets or {}), secret_values)
        task_id = str(uuid.uuid4())
        now = time.time()
        pinned = self.replica_id if (held.secrets or held.values) else None

        def write() -> None:
            with transaction(self.engine) as conn:
                store.create_task(conn, task_id, spec, user_ref, now, pinned_to=pinned,
                                  pin_until=now + self.secret_pin_seconds)

        if pinned:
            self._secrets[task_id] = held
        await asyncio.to_thread(write)
        log_event(log, "scaffolder.task_created", task=task_id, template=parsed.entity_ref, by=user_ref)
        return task_id

    async def get_task(self, task_id: str) -> JsonObject:
        return task_json(await asyncio.to_thread(self._row, task_id))

    def _row(self, task_id: str) -> store.TaskRow:
        with reading(self.engine) as conn:
            row = store.get_task(conn, task_id)
        if row is None:
            raise NotFoundError(f"No task with id '{task_id}' found")
        return row

    async def list_tasks(self, *, created_by: list[str] | None = None, status: list[str] | None = None,
                         limit: int | None = None, offset: int = 0, order: list[str] | None = None) -> JsonObject:
        bad = [s for s in status or [] if s not in store.STATUSES]
        if bad:
            raise InputError(f"status: unknown value {bad[0]!r}; use one of {', '.join(store.STATUSES)}")
        columns = {"createdAt": "created_at", "created_at": "created_at", "status": "status",
                   "createdBy": "created_by", "created_by": "created_by", "lastHeartbeatAt": "last_heartbeat_at"}
        parsed_order = []
        for item in order or []:
            direction, _, name = item.partition(":") if ":" in item else ("asc", "", item)
            if name not in columns or direction not in ("asc", "desc"):
                raise InputError(f"order: {item!r} is not valid; use e.g. desc:createdAt")
            parsed_order.append((columns[name], direction == "desc"))

        def read() -> tuple[list[store.TaskRow], int]:
            with reading(self.engine) as conn:
                return store.list_tasks(conn, created_by=created_by or (), status=status or (), limit=limit,
                                        offset=offset, order=parsed_order)

        rows, total = await asyncio.to_thread(read)
        return {"tasks": [task_json(r) for r in rows], "totalTasks": total}

    async def cancel(self, task_id: str, principal: Principal | None) -> JsonObject:
        """Open: cancelled at once. Processing: flagged; stops at the next step boundary."""
        def write() -> str:
            now = time.time()
            with transaction(self.engine) as conn:
                row = store.get_task(conn, task_id)
                if row is None:
                    raise NotFoundError(f"No task with id '{task_id}' found")
                if row.status in store.TERMINAL:
                    return row.status
                step = store.last_step_id(conn, task_id)
                body = {"message": f"Step {step or 0} has been cancelled.", "stepId": step or 0,
                        "status": "cancelled"}
                store.append_events(conn, task_id, [("cancelled", body)], now)
                if row.status == "open":
                    store.cancel_open(conn, task_id, {"message": "Run completed with status: cancelled"}, now)
                else:
                    store.request_cancel(conn, task_id)
                return "cancelled"

        status = await asyncio.to_thread(write)
        self._secrets.pop(task_id, None)
        log_event(log, "scaffolder.task_cancel", task=task_id, by=principal.subject if principal else None)
        return {"status": status}

    async def retry(self, task_id: str, secrets: Mapping[str, str] | None, principal: Principal | None) -> str:
        """Run a finished task again from the start; ``secrets`` are needed again (never stored).
        Keys naming a password field of the template are used as that field's value."""
        row = await asyncio.to_thread(self._row, task_id)
        if row.status not in store.TERMINAL:
            raise ConflictError(f"Task {task_id} is {row.status}; only a completed, failed or cancelled task "
                                "can be retried")
        parameters = templates.entity_from_spec(row.spec)["spec"]["parameters"]
        given = dict(secrets or {})
        _, field_values = templates.split_secret_values(parameters, given)
        held = TaskSecrets({k: v for k, v in given.items() if k not in field_values}, field_values)
        pinned = self.replica_id if (held.secrets or held.values) else None

        def write() -> bool:
            now = time.time()
            with transaction(self.engine) as conn:
                return store.reopen(conn, task_id, now, pinned_to=pinned, pin_until=now + self.secret_pin_seconds)

        if pinned:
            self._secrets[task_id] = held
        if not await asyncio.to_thread(write):
            self._secrets.pop(task_id, None)
            raise ConflictError(f"Task {task_id} changed while retrying; try again")
        log_event(log, "scaffolder.task_retried", task=task_id, by=principal.subject if principal else None)
        return task_id

    # -- events ----------------------------------------------------------------------------------
    def _events(self, task_id: str, after: int | None) -> list[JsonObject]:
        with reading(self.engine) as conn:
            if store.get_task(conn, task_id) is None:
                raise NotFoundError(f"No task with id '{task_id}' found")
            return [event_json(e) for e in store.list_events(conn, task_id, after)]

    async def events(self, task_id: str, after: int | None = None, wait_seconds: float = 0.0) -> list[JsonObject]:
        """Events after ``after`` (the completion event always included); with ``wait_seconds``,
        wait that long for at least one (long poll) and return [] if none came."""
        deadline = time.monotonic() + wait_seconds
        while True:
            found = await asyncio.to_thread(self._events, task_id, after)
            if found or time.monotonic() >= deadline:
                return found
            await asyncio.sleep(self.poll_seconds)

    async def stream_events(self, task_id: str, after: int | None = None) -> AsyncIterator[JsonObject]:
        """Every event after ``after`` as it is written, ending after the completion event."""
        await asyncio.to_thread(self._row, task_id)
        while True:
            found = await asyncio.to_thread(self._events, task_id, after)
            fresh = [e for e in found if after is None or e["id"] > after or e["type"] == "completion"]
            for item in fresh:
                yield item
                if item["type"] == "completion":
                    return
            if fresh:
                after = fresh[-1]["id"]
            await asyncio.sleep(self.poll_seconds)

    # -- worker side -----------------------------------------------------------------------------
    def claim(self) -> ClaimedTask | None:
        """The next open task, leased to this replica, its template files on disk; a task whose
        files cannot be had is failed here with the reason, and the next one is tried."""
        while True:
            with transaction(self.engine) as conn:
                row = store.claim_next(conn, self.replica_id, time.time(), self.lease_seconds)
            if row is None:
                return None
            held = self._secrets.pop(row.id, None) or TaskSecrets()
            log_event(log, "scaffolder.task_claimed", task=row.id, owner=self.replica_id, attempt=row.attempts)
            try:
                spec = self.task_files.prepare(row.id, row.spec)
            except Exception as exc:  # noqa: BLE001 - any failure here is this task's failure
                message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
                log.warning("scaffolder.template_files_failed", extra={"fields": {"task": row.id}})
                self.finish(row.id, "failed", {"message": "Run completed with status: failed",
                                               "error": {"name": "InputError", "message": message}})
                continue
            return ClaimedTask(row.id, spec, row.created_by, row.attempts, held)

    def sweep_template_files(self) -> None:
        """Remove materialised template files of runs that ended without ``finish`` (lease lost,
        shutdown) and, by age, those a stopped process left behind."""
        def ours(task_id: str) -> bool:
            with reading(self.engine) as conn:
                row = store.get_task(conn, task_id)
            return row is not None and row.status == "processing" and row.lease_owner == self.replica_id

        self.task_files.sweep(ours, older_than=self.task_timeout_seconds + 2 * self.lease_seconds + 60)

    def heartbeat(self, task_id: str) -> tuple[bool, bool]:
        """``(still_ours, cancel_requested)``."""
        with transaction(self.engine) as conn:
            row = store.heartbeat(conn, task_id, self.replica_id, time.time(), self.lease_seconds)
        return (row is not None, bool(row and row.cancel_requested))

    def append_events(self, task_id: str, events: list[tuple[EventKind, JsonObject]]) -> None:
        with transaction(self.engine) as conn:
            store.append_events(conn, task_id, events, time.time())

    def finish(self, task_id: str, status: str, body: JsonObject, output: JsonObject | None = None) -> bool:
        with transaction(self.engine) as conn:
            done = store.finish(conn, task_id, self.replica_id, status, body, time.time(), output)
        self.task_files.drop(task_id)
        log_event(log, "scaffolder.task_finished", task=task_id, status=status, written=done)
        return done

    def recover_expired(self) -> list[str]:
        """Fail every task whose lease (or secret pin) ran out, with ``recovered`` + completion."""
        now = time.time()
        with reading(self.engine) as conn:
            candidates = store.expired(conn, now)
        failed = []
        for row in candidates:
            if row.status == "processing":
                message = ("The worker running this task stopped (its lease expired at "
                           f"{iso(row.lease_until)}); retry the task, giving its secrets again")
            else:
                message = ("The replica holding this task's secrets stopped before running it; retry the "
                           "task, giving its secrets again")
            with transaction(self.engine) as conn:
                hung = self._hung_steps(conn, row.id)
                events = [("log", {"message": message, "stepId": s, "status": "failed"}) for s in hung]
                events.append(("recovered", {"message": message, "recoverStrategy": "none"}))
                completion = {"message": "Run completed with status: failed",
                              "error": {"name": "TaskRecoveredError", "message": message}}
                if store.fail_expired(conn, row, now, events, completion):
                    failed.append(row.id)
        for task_id in failed:
            self._secrets.pop(task_id, None)
            log_event(log, "scaffolder.task_recovered", task=task_id, by=self.replica_id)
        self.sweep_template_files()
        return failed

    @staticmethod
    def _hung_steps(conn: Any, task_id: str) -> list[str]:
        started: list[str] = []
        ended: set[str] = set()
        for e in store.list_events(conn, task_id):
            step, status = e.body.get("stepId"), e.body.get("status")
            if step and status == "processing" and step not in started:
                started.append(str(step))
            elif step and status in ("completed", "failed", "skipped", "cancelled"):
                ended.add(str(step))
        return [s for s in started if s not in ended]

    def workspace_for(self, task_id: str) -> Path:
        return self.workspace_root / task_id

    # -- dry run ---------------------------------------------------------------------------------
    async def dry_run(self, template: Any, values: Any, directory_contents: Any,
                      secrets: Mapping[str, str] | None, principal: Principal | None) -> JsonObject:
        """``POST /v2/dry-run``: nothing is stored; the result carries log, files and output."""
        if not isinstance(template, Mapping):
            raise InputError("template: must be a Template entity object")
        if not isinstance(values, Mapping):
            raise InputError("values: must be an object")
        if directory_contents is not None and not isinstance(directory_contents, list):
            raise InputError("directoryContents: must be a list of {path, base64Content}")
        # Without uploaded files, a template registered in the catalog fetches from its own folder
        # (found from the catalog's entity, never from annotations the client sent).
        registered = None if directory_contents else await self._registered(template)
        steps = (template.get("spec") or {}).get("steps") if isinstance(template.get("spec"), Mapping) else []
        async with self.template_files(registered, steps if isinstance(steps, list) else []) as files:
            where: dict[str, Any] = ({"base_dir": files.base_dir, "repository_root": files.repository_root}
                                     if files.base_dir is not None else {"directory_contents": directory_contents or []})
            result = await dryrun.dry_run(
                template, values, secrets=secrets, actions=self.actions, services=self.services(),
                expressions=self.expressions, user_ref=principal.subject if principal else None, **where,
            )
        return result.as_json()

    async def _registered(self, template: Mapping[str, Any]) -> JsonObject | None:
        metadata = template.get("metadata")
        if self.catalog is None or not isinstance(metadata, Mapping) or not metadata.get("name"):
            return None
        return await self.catalog.get_entity(f"template:{metadata.get('namespace') or 'default'}/{metadata['name']}")

    def template_files(self, entity: Mapping[str, Any] | None,
                       steps: Sequence[Any]) -> AbstractAsyncContextManager[TemplateFiles]:
        """The folder of a catalog Template ``entity`` on disk while the ``async with`` block runs
        (a scratch copy beside the task workspaces if the template is not a local file)."""
        base, root = templates.base_urls(entity) if entity is not None else (None, None)
        return self.sources.files(base, root, steps, self.workspace_root / f"dry-run-{uuid.uuid4().hex}.template")
