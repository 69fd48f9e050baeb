"""The Create pages: template gallery, the template's form, tasks and the template editor.

``router`` is mounted by ``greenroom.app`` (pages, no ``/api`` prefix). Everything is rendered on
the server through the web shell (``WebService.render``); the only script is the task page's
live log (``EventSource`` on the API's event stream), with a refreshing fallback without it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from greenroom.core.errors import InputError
from greenroom.scaffolder.engine.parameters import apply_defaults, field_errors, secret_fields
from greenroom.scaffolder.model import ParameterValidationError
from greenroom.scaffolder.views import editor, forms, tasks
from greenroom.scaffolder.views.common import CreatePageRoute, catalog, principal, scaffolder, web
from greenroom.scaffolder.views.pickers import PickerOptions

pages = APIRouter(route_class=CreatePageRoute)


def _ref(entity: dict[str, Any]) -> str:
    meta = entity.get("metadata") or {}
    return f"template:{meta.get('namespace') or 'default'}/{meta.get('name')}"


def _card(entity: dict[str, Any]) -> dict[str, Any]:
    meta, spec = entity.get("metadata") or {}, entity.get("spec") or {}
    ns = meta.get("namespace") or "default"
    return {"name": meta.get("name"), "namespace": ns, "title": meta.get("title") or meta.get("name"),
            "description": meta.get("description") or "", "tags": [str(t) for t in meta.get("tags") or []],
            "owner": str(spec.get("owner") or ""), "type": str(spec.get("type") or ""),
            "href": f"/create/templates/{ns}/{meta.get('name')}"}


def _owner_ref(owner: str) -> str:
    return owner if ":" in owner else f"group:{owner if '/' in owner else 'default/' + owner}"


@pages.get("/create")
async def gallery(request: Request, tag: str = "", owner: str = "", q: str = "") -> Response:
    """Templates as cards; ``?tag=``/``?owner=``/``?q=`` filter them (shareable URLs)."""
    cards = [_card(e) for e in await scaffolder(request).list_templates()]
    all_tags = sorted({t for c in cards for t in c["tags"]})
    all_owners = sorted({_owner_ref(c["owner"]).lower() for c in cards if c["owner"]})
    shown = [c for c in cards
             if (not tag or tag in c["tags"])
             and (not owner or _owner_ref(c["owner"]).lower() == _owner_ref(owner).lower())
             and (not q or q.lower() in f"{c['title']} {c['description']} {c['name']}".lower())]
    shown.sort(key=lambda c: str(c["title"]).lower())
    return web(request).render(request, "scaffolder/gallery.html", active="create", cards=shown,
                               total=len(cards), tags=all_tags, owners=all_owners, tag=tag, owner=owner, q=q)


async def _form_page(request: Request, namespace: str, name: str, values: dict[str, Any],
                     errors: dict[str, list[str]] | None = None, form_errors: list[str] | None = None,
                     status: int = 200) -> Response:
    entity = await scaffolder(request).get_template(namespace, "template", name)
    parameters = (entity.get("spec") or {}).get("parameters") or []
    parameters = [parameters] if isinstance(parameters, dict) else parameters
    options = PickerOptions(catalog(request), principal(request))
    sections = forms.build(parameters, values, options, errors)
    orphans = forms.attach_orphans(sections, errors or {})
    return web(request).render(request, "scaffolder/form.html", status=status, active="create",
                               tpl=_card(entity), ref=_ref(entity), sections=sections,
                               form_errors=[*(form_errors or []), *orphans],
                               steps=[str(s.get("name") or s.get("action"))
                                      for s in (entity.get("spec") or {}).get("steps") or []
                                      if isinstance(s, dict)])


@pages.get("/create/templates/{namespace}/{name}")
async def template_form(request: Request, namespace: str, name: str) -> Response:
    return await _form_page(request, namespace, name, {})


@pages.post("/create/templates/{namespace}/{name}")
async def template_submit(request: Request, namespace: str, name: str) -> Response:
    """Validate on the server; on errors show them next to their fields with the values kept,
    else queue the task and go to its page."""
    svc = scaffolder(request)
    entity = await svc.get_template(namespace, "template", name)
    parameters = (entity.get("spec") or {}).get("parameters") or []
    parameters = [parameters] if isinstance(parameters, dict) else parameters
    raw = await request.form()
    form = {k: [str(v) for v in raw.getlist(k)] for k in raw}
    sections = forms.build(parameters, {}, lambda _n, _p: [])
    values = forms.parse(sections, form, parameters)
    hidden = secret_fields(parameters)
    from_widgets = forms.widget_errors(sections, values)
    if from_widgets:  # the schema's own errors too, so the user fixes everything in one go
        errors = forms.errors_by_field(field_errors(parameters, apply_defaults(parameters, values)),
                                       parameters, values, hidden)
        for field_name, messages in from_widgets.items():
            errors.setdefault(field_name, []).extend(messages)
        return await _form_page(request, namespace, name, values, errors, status=400)
    try:
        task_id = await svc.create_task(_ref(entity), values, None, principal(request))
    except ParameterValidationError as exc:
        return await _form_page(request, namespace, name, values,
                                forms.errors_by_field(exc.errors, parameters, values, hidden), status=400)
    except InputError as exc:
        return await _form_page(request, namespace, name, values, form_errors=[exc.message], status=400)
    return RedirectResponse(f"/create/tasks/{task_id}", status_code=303)


router = APIRouter()
router.include_router(pages)
router.include_router(tasks.router)
router.include_router(editor.router)

__all__ = ["router"]
