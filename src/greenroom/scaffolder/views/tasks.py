"""Task pages: one task (steps, live log, outputs, cancel/retry) and the list of recent tasks.

A task page is complete when rendered: steps with their status, the log so far and, once
finished, the output. ``app.js`` then follows ``/api/scaffolder/v2/tasks/{id}/eventstream``
(the session cookie authenticates it) and reloads the page on completion; without script, an
open task's page refreshes itself every two seconds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from greenroom.core.errors import ConflictError
from greenroom.scaffolder.engine.parameters import secret_fields
from greenroom.scaffolder.views.common import CreatePageRoute, catalog, principal, scaffolder, web

router = APIRouter(route_class=CreatePageRoute)

TERMINAL = ("completed", "failed", "cancelled")
STEP_DONE = ("completed", "failed", "skipped", "cancelled")


def _ts(iso: Any) -> float | None:
    if not isinstance(iso, str):
        return None
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None


def _entity_path(ref: str) -> str:
    kind, _, rest = ref.partition(":")
    if not rest:
        kind, rest = "component", ref
    ns, _, name = rest.partition("/")
    if not name:
        ns, name = "default", ns
    return f"/catalog/{ns.lower()}/{kind.lower()}/{name.lower()}"


def steps_of(task: dict[str, Any], events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every step of the task with the status its events last gave it (``open`` if none yet)."""
    steps = [{"id": str(s.get("id")), "name": str(s.get("name") or s.get("action")), "status": "open",
              "action": s.get("action")} for s in (task.get("spec") or {}).get("steps") or []]
    by_id = {s["id"]: s for s in steps}
    for e in events:
        body = e.get("body") or {}
        step = by_id.get(str(body.get("stepId")))
        if step is not None and body.get("status"):
            step["status"] = body["status"]
    if task.get("status") in TERMINAL:  # steps a finished run never reached
        for s in steps:
            if s["status"] == "processing":
                s["status"] = task["status"] if task["status"] != "completed" else "completed"
    return steps


def outputs_of(request: Request, completion: dict[str, Any] | None) -> dict[str, Any]:
    """Links (entity refs as catalog pages, plus a Docs link for documented entities) and texts."""
    output = ((completion or {}).get("body") or {}).get("output") or {}
    links: list[dict[str, str]] = []
    for link in output.get("links") or []:
        if not isinstance(link, dict):
            continue
        title = str(link.get("title") or link.get("url") or link.get("entityRef") or "Link")
        if link.get("entityRef"):
            ref = str(link["entityRef"])
            links.append({"title": title, "href": _entity_path(ref), "kind": "catalog"})
            entity = catalog(request).get_entity(ref)
            annotations = ((entity or {}).get("metadata") or {}).get("annotations") or {}
            if "backstage.io/techdocs-ref" in annotations:
                links.append({"title": "Docs", "href": _entity_path(ref).replace("/catalog/", "/docs/", 1),
                              "kind": "docs"})
        elif link.get("url"):
            links.append({"title": title, "href": str(link["url"]), "kind": str(link.get("icon") or "link")})
    texts = [{"title": str(t.get("title") or ""), "content": str(t.get("content") or "")}
             for t in output.get("text") or [] if isinstance(t, dict)]
    return {"links": links, "texts": texts}


@router.get("/create/tasks/{task_id}")
async def task_page(request: Request, task_id: str) -> Response:
    svc = scaffolder(request)
    task = await svc.get_task(task_id)
    events = await svc.events(task_id)
    completion = next((e for e in events if e["type"] == "completion"), None)
    info = (task.get("spec") or {}).get("templateInfo") or {}
    template = (info.get("entity") or {}).get("metadata") or {}
    parameters = ((info.get("entity") or {}).get("spec") or {}).get("parameters") or []
    error = ((completion or {}).get("body") or {}).get("error")
    return web(request).render(
        request, "scaffolder/task.html", active="create", task=task, steps=steps_of(task, events),
        log=[e for e in events if e["type"] in ("log", "cancelled", "recovered")],
        done=task["status"] in TERMINAL, completion=completion, error=error,
        outputs=outputs_of(request, completion), tpl=template,
        template_ref=str(info.get("entityRef") or ""), created=_ts(task.get("createdAt")),
        last_event=events[-1]["id"] if events else None,
        secret_names=sorted(secret_fields(parameters if isinstance(parameters, list) else [parameters])),
        notice=request.query_params.get("notice", ""))


@router.post("/create/tasks/{task_id}/cancel")
async def task_cancel(request: Request, task_id: str) -> Response:
    await scaffolder(request).cancel(task_id, principal(request))
    return RedirectResponse(f"/create/tasks/{task_id}?notice=cancel", status_code=303)


@router.post("/create/tasks/{task_id}/retry")
async def task_retry(request: Request, task_id: str) -> Response:
    form = await request.form()
    secrets = {str(k): str(v) for k, v in form.items() if str(k).startswith("secret.") and v}
    svc = scaffolder(request)
    try:
        await svc.retry(task_id, {k.removeprefix("secret."): v for k, v in secrets.items()} or None,
                        principal(request))
    except ConflictError as exc:
        return web(request).error_page(request, 409, exc.message)
    return RedirectResponse(f"/create/tasks/{task_id}?notice=retry", status_code=303)


@router.get("/create/tasks")
async def task_list(request: Request, owner: str = "mine", status: str = "") -> Response:
    """Recent tasks, newest first: mine (default) or everyone's; optionally one status."""
    who = principal(request)
    mine = owner != "all"
    result = await scaffolder(request).list_tasks(
        created_by=[who.subject] if (mine and who) else None, status=[status] if status else None,
        limit=100, order=["desc:createdAt"])
    rows = []
    for t in result["tasks"]:
        info = (t.get("spec") or {}).get("templateInfo") or {}
        meta = (info.get("entity") or {}).get("metadata") or {}
        rows.append({"id": t["id"], "status": t["status"], "created": _ts(t.get("createdAt")),
                     "by": t.get("createdBy") or "", "template": meta.get("title") or meta.get("name") or
                     info.get("entityRef") or "?", "ref": info.get("entityRef") or ""})
    return web(request).render(request, "scaffolder/tasks.html", active="create", rows=rows,
                               total=result["totalTasks"], owner="mine" if mine else "all", only=status)
