"""``POST /v2/dry-run``: run a template in dry-run mode in a throw-away directory.

The template's files come either as ``directory_contents`` (what Backstage's template editor
uploads: ``[{path, base64Content}]``; relative fetches may not leave that folder, as in Backstage)
or as ``base_dir`` (+ ``repository_root``) on disk, which lets rhdh-style templates reach
``../../../skeletons`` inside their repository. Uploaded paths that are absolute or climb out are
refused. The result carries the log, every workspace file (base64) and the rendered output.
"""

from __future__ import annotations

import base64
import binascii
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from greenroom.core.errors import InputError
from greenroom.scaffolder.engine.actions import load_actions
from greenroom.scaffolder.engine.expressions import ExpressionEngine
from greenroom.scaffolder.engine.paths import safe_child, walk_tree
from greenroom.scaffolder.engine.runner import run_template
from greenroom.scaffolder.model import (
    DRY_RUN_TEMPLATE_REF,
    Action,
    DryRunResult,
    SerializedFile,
    TemplateInfo,
    TemplateSpec,
)


def write_directory_contents(contents: list[Mapping[str, Any]], target: Path) -> None:
    for item in contents:
        path = item.get("path")
        if not isinstance(path, str) or not path:
            raise InputError("directoryContents[].path must be a non-empty string")
        out = safe_child(target, path, "directoryContents path")
        try:
            data = base64.b64decode(str(item.get("base64Content") or ""), validate=True)
        except binascii.Error as exc:
            raise InputError(f"directoryContents {path}: base64Content is not valid base64") from exc
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
        if item.get("executable"):
            os.chmod(out, 0o755)


def serialize_directory(root: Path) -> list[SerializedFile]:
    files = []
    for rel, full, is_dir in walk_tree(root):
        if not is_dir:
            files.append(SerializedFile(rel, full.read_bytes(), bool(os.stat(full).st_mode & 0o111)))
    return files


async def dry_run(
    template: Mapping[str, Any],
    values: Mapping[str, Any],
    *,
    directory_contents: list[Mapping[str, Any]] | None = None,
    base_dir: Path | None = None,
    repository_root: Path | None = None,
    secrets: Mapping[str, str] | None = None,
    actions: Mapping[str, Action] | None = None,
    services: Mapping[str, Any] | None = None,
    expressions: ExpressionEngine | None = None,
    user_ref: str | None = None,
    max_seconds: float = 60.0,
) -> DryRunResult:
    """Dry-run ``template`` (a Template entity as a dict) with ``values``.

    Raises ``TemplateError``/``ParameterValidationError`` before running, ``TaskFailedError``
    (with ``.events``) when a step fails. Give exactly one of ``directory_contents``/``base_dir``
    (neither: the template cannot fetch relative paths).
    """
    spec = TemplateSpec.from_entity(template)
    with tempfile.TemporaryDirectory(prefix="greenroom-dry-run-") as tmp:
        workspace = Path(tmp) / "workspace"
        workspace.mkdir()
        if directory_contents is not None:
            base = Path(tmp) / "template"
            base.mkdir()
            write_directory_contents(directory_contents, base)
            info = TemplateInfo(DRY_RUN_TEMPLATE_REF, base_dir=base, repository_root=base)
        else:
            info = TemplateInfo(DRY_RUN_TEMPLATE_REF, base_dir=base_dir,
                                repository_root=repository_root or base_dir)
        result = await run_template(
            spec, values, workspace, actions=actions or load_actions(), template_info=info,
            secrets=secrets, dry_run=True, services=services, expressions=expressions,
            user_ref=user_ref, max_seconds=max_seconds,
        )
        files = serialize_directory(workspace)
    log = [{"body": e.body} for e in result.events if e.type == "log"]
    return DryRunResult(log=log, directory_contents=files, output=result.output,
                        steps=[s.as_json() for s in spec.steps])
