"""The template editor's use case: lint a pasted template and dry-run it, with line numbers.

Model. The editor sends YAML text (pasted, or loaded from a catalog Template entity) and values.
``lint`` runs ``engine.lint`` on the text (problems carry ``line``); ``editor_dry_run`` runs the
template in dry-run mode (nothing published, nothing stored) and answers with the produced files,
the log and, when a step fails, the step and the line of the template it starts on.

Where relative fetches resolve. Only a template loaded from the catalog (``template_ref`` given)
fetches relative to that template's own folder, derived on the server from the entity's
``managed-by-location`` annotation, exactly as a real run would (a template on the built-in git
host is exported into a scratch folder for the call); the client never names a directory. A pasted template without a ref has no folder, so ``./skeleton`` cannot be fetched and
the error says so.

Failure behaviour: every problem is data in the result (``problems``/``error``), never a 500;
``InputError`` only for unusable requests (values not an object).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from greenroom.auth.model import Principal
from greenroom.core.errors import GreenroomError, InputError
from greenroom.scaffolder.engine import dryrun
from greenroom.scaffolder.engine.lint import Problem, lint_template
from greenroom.scaffolder.engine.runner import TaskFailedError
from greenroom.scaffolder.model import JsonObject, ParameterValidationError

MAX_TEXT = 256 * 1024  # a template larger than this is not something a person pastes
PREVIEW_BYTES = 64 * 1024  # per file shown in the editor


@dataclass
class EditorFile:
    path: str
    size: int
    text: str | None  # None when the file is binary
    truncated: bool = False


@dataclass
class EditorResult:
    """What the editor page shows after Dry-run."""

    problems: list[Problem] = field(default_factory=list)
    files: list[EditorFile] = field(default_factory=list)
    log: list[JsonObject] = field(default_factory=list)
    output: JsonObject = field(default_factory=dict)
    error: str | None = None
    error_line: int | None = None
    field_errors: list[str] = field(default_factory=list)
    ran: bool = False


def _line_of(text: str, path: list[Any]) -> int | None:
    """1-based line of the node at ``path`` in the YAML text (its nearest existing ancestor)."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    if node is None:
        return None
    for part in path:
        if isinstance(node, yaml.MappingNode):
            found = next((v for k, v in node.value if k.value == part), None)
            if found is None:
                break
            node = found
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
    return int(node.start_mark.line) + 1


def _steps(text: str) -> list[Any]:
    """The steps of the Template in ``text`` (best effort: lint reports what is wrong with it)."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if isinstance(d, Mapping)]
    except yaml.YAMLError:
        return []
    template = next((d for d in docs if d.get("kind") == "Template"), None)
    spec = template.get("spec") if template is not None else None
    steps = spec.get("steps") if isinstance(spec, Mapping) else None
    return steps if isinstance(steps, list) else []


def lint_text(text: str, base_dir: Path | None, known_actions: set[str]) -> list[Problem]:
    """``engine.lint`` over pasted text. Missing relative fetch URLs are judged against the
    template's real folder when it has one (the text itself is linted from a temporary file)."""
    with tempfile.TemporaryDirectory(prefix="greenroom-editor-") as tmp:
        file = Path(tmp) / "template.yaml"
        file.write_text(text, encoding="utf-8")
        found = lint_template(file, known_actions=known_actions)
    out = []
    for p in found:
        if p.severity == "warning" and "does not exist relative to the template" in p.message:
            if base_dir is None:
                p = Problem("template.yaml", p.line, p.message + " (a pasted template has no folder; load it "
                            "from the catalog to fetch its files)", p.severity)
            else:
                url = p.message.split("'")[1] if "'" in p.message else ""
                if url and (base_dir / url).exists():
                    continue
        out.append(Problem("template.yaml", p.line, p.message, p.severity))
    return out


def _files(result: Any) -> list[EditorFile]:
    files = []
    for f in result.directory_contents:
        try:
            text: str | None = f.content[:PREVIEW_BYTES].decode("utf-8")
        except UnicodeDecodeError:
            text = None
        files.append(EditorFile(f.path, len(f.content), text, len(f.content) > PREVIEW_BYTES))
    return sorted(files, key=lambda x: x.path)


async def editor_dry_run(service: Any, text: str, values: Any, template_entity: Mapping[str, Any] | None,
                         principal: Principal | None) -> EditorResult:
    """Lint ``text`` and, unless it has errors, dry-run it with ``values``.

    ``service`` is the ``ScaffolderService`` (its actions, ports and expression engine are used);
    ``template_entity`` is the catalog entity the text was loaded from, if any (its folder is
    where relative fetches start)."""
    if len(text) > MAX_TEXT:
        raise InputError(f"template: longer than {MAX_TEXT // 1024} KiB; paste a single template")
    if not isinstance(values, Mapping):
        raise InputError("values: must be a JSON object, e.g. {\"name\": \"my-service\"}")
    try:
        async with service.template_files(template_entity, _steps(text)) as files:
            return await _lint_and_run(service, text, values, files.base_dir, files.repository_root, principal)
    except GreenroomError as exc:  # the template's files could not be had
        result = EditorResult(problems=lint_text(text, None, set(service.actions)))
        result.error = exc.message
        result.error_line = _line_of(text, ["spec", "steps"])
        return result


async def _lint_and_run(service: Any, text: str, values: Mapping[str, Any], base_dir: Path | None,
                        root_dir: Path | None, principal: Principal | None) -> EditorResult:
    result = EditorResult(problems=lint_text(text, base_dir, set(service.actions)))
    errors = [p for p in result.problems if p.severity == "error"]
    if errors:
        result.error = "Fix the problems listed before running the template."
        result.error_line = errors[0].line
        return result
    docs = [d for d in yaml.safe_load_all(text) if isinstance(d, Mapping)]
    template = next((d for d in docs if d.get("kind") == "Template"), None)
    if template is None:
        result.error = "No document with kind: Template found; paste a scaffolder.backstage.io/v1beta3 Template."
        result.error_line = 1
        return result
    try:
        run = await dryrun.dry_run(
            template, values, base_dir=base_dir, repository_root=root_dir, actions=service.actions,
            services=service.services(), expressions=service.expressions,
            user_ref=principal.subject if principal else None,
        )
    except ParameterValidationError as exc:
        result.error = "The values do not satisfy the template's parameters."
        result.field_errors = [f"{e.property}: {e.message}" for e in exc.errors]
        result.error_line = _line_of(text, ["spec", "parameters"])
        return result
    except TaskFailedError as exc:
        result.ran = True
        result.error = exc.message
        result.log = [{"body": e.body} for e in exc.events if e.type == "log"]
        steps = (template.get("spec") or {}).get("steps") or []
        index = next((i for i, s in enumerate(steps) if isinstance(s, Mapping)
                      and str(s.get("id") or f"step-{i}") == exc.step_id), None)
        if index is not None:
            result.error_line = _line_of(text, ["spec", "steps", index])
        return result
    except GreenroomError as exc:
        result.error = exc.message
        result.error_line = _line_of(text, ["spec"])
        return result
    result.ran = True
    result.log = run.log
    result.output = run.output
    result.files = _files(run)
    return result
