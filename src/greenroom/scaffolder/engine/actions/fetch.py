"""fetch:plain, fetch:plain:file, fetch:template, fetch:template:file.

Sources: a relative ``url`` is read from the template's own directory (it may climb with ``..``
while it stays inside the template's repository root); an absolute URL needs the ``url_reader``
service. A missing source is an error (as in Backstage, whose copy fails with ENOENT).

fetch:template mirrors Backstage: every entry's *path* is rendered (``${{ values.x }}/`` folder
names), contents are rendered unless matched by ``copyWithoutTemplating`` (path still rendered) or
``copyWithoutRender`` (path not rendered either); ``templateFileExtension`` renders only files with
that extension and strips it; a rendered path that is empty, starts with ``/`` or contains ``//`` is
skipped (that is how templates drop optional files); existing files are kept unless ``replace``.
Binary files are copied as they are. Render failures fail the step naming file and line.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from greenroom.core.errors import InputError
from greenroom.scaffolder.engine.actions.base import BaseAction, strict_object
from greenroom.scaffolder.engine.expressions import ExpressionEngine, ExpressionError
from greenroom.scaffolder.engine.paths import (
    glob_match,
    is_absolute_url,
    resolve_source,
    safe_child,
    walk_tree,
)
from greenroom.scaffolder.model import ActionContext

_URL = {"title": "Fetch URL", "type": "string",
        "description": "Relative path or absolute URL pointing to the directory tree to fetch"}
_TARGET = {"title": "Target Path", "type": "string",
           "description": "Target path within the working directory. Defaults to the working directory root."}
_TEMPLATE_INPUT = {
    "url": _URL,
    "targetPath": _TARGET,
    "values": {"title": "Template Values", "type": "object",
               "description": "Values to pass on to the templating engine"},
    "copyWithoutRender": {"type": "array", "items": {"type": "string"},
                          "title": "[Deprecated] Copy Without Render",
                          "description": "Glob patterns copied without rendering paths or contents."},
    "copyWithoutTemplating": {"type": "array", "items": {"type": "string"}, "title": "Copy Without Templating",
                              "description": "Glob patterns whose contents are copied unrendered (paths are rendered)."},
    "cookiecutterCompat": {"type": "boolean", "title": "Cookiecutter compatibility mode",
                           "description": "Use {{ cookiecutter.x }} syntax and the jsonify filter."},
    "templateFileExtension": {"type": ["string", "boolean"], "title": "Template File Extension",
                              "description": "Only render files with this extension (true means .njk)."},
    "replace": {"type": "boolean", "title": "Replace files",
                "description": "Replace files in targetPath instead of skipping existing ones."},
    "trimBlocks": {"type": "boolean"},
    "lstripBlocks": {"type": "boolean"},
}


def is_binary(data: bytes) -> bool:
    if b"\0" in data[:8000]:
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _engine(ctx: ActionContext) -> ExpressionEngine:
    engine = ctx.services.get("expressions")
    return engine if isinstance(engine, ExpressionEngine) else ExpressionEngine()


def local_source(ctx: ActionContext, url: str, *, is_file: bool = False) -> Path:
    """The template-relative source path, checked to exist and to stay inside the repository."""
    source = resolve_source(ctx.template_info, url)
    if is_file and not source.is_file():
        raise InputError(f"cannot fetch {url!r}: no such file beside the template ({source.name})")
    if not is_file and not source.is_dir():
        raise InputError(
            f"cannot fetch {url!r}: no such directory beside the template; check the step's url "
            "against the template's folder layout"
        )
    return source


async def _materialize_remote(ctx: ActionContext, url: str, dest: Path, is_file: bool) -> None:
    reader = ctx.services.get("url_reader")
    if reader is None:
        raise InputError(
            f"cannot fetch {url}: fetching from remote URLs needs network access, which this "
            "scaffolder is not configured for; put the files beside the template and use a relative url"
        )
    if is_file:
        dest.write_bytes(await reader.read_file(url))
    else:
        dest.mkdir(parents=True, exist_ok=True)
        await reader.read_tree(url, dest)


async def fetch_source(ctx: ActionContext, url: str, scratch: Path, *, is_file: bool = False) -> Path:
    """Local path of the fetched content; remote content is downloaded into ``scratch``."""
    if is_absolute_url(url):
        await _materialize_remote(ctx, url, scratch / "content", is_file)
        return scratch / "content"
    return local_source(ctx, url, is_file=is_file)


def copy_tree(source: Path, dest: Path) -> int:
    count = 0
    for rel, full, is_dir in walk_tree(source):
        out = safe_child(dest, rel, "skeleton path")
        if is_dir:
            out.mkdir(parents=True, exist_ok=True)
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(full, out)
        shutil.copymode(full, out)
        count += 1
    return count


class FetchPlainAction(BaseAction):
    id = "fetch:plain"
    description = "Downloads content and places it in the workspace, or optionally in a subdirectory."
    input_schema = strict_object({"url": _URL, "targetPath": _TARGET, "token": {"type": "string"}}, ["url"])

    async def handler(self, ctx: ActionContext) -> None:
        url = self.string(ctx, "url")
        target = safe_child(ctx.workspace, self.string(ctx, "targetPath", "./"), "targetPath")
        ctx.log(f"Fetching plain content from {url}")
        with tempfile.TemporaryDirectory(prefix="greenroom-fetch-") as tmp:
            source = await fetch_source(ctx, url, Path(tmp))
            copy_tree(source, target)


class FetchPlainFileAction(BaseAction):
    id = "fetch:plain:file"
    description = "Downloads a single file and places it in the workspace."
    input_schema = strict_object({"url": _URL, "targetPath": _TARGET, "token": {"type": "string"}},
                                 ["url", "targetPath"])

    async def handler(self, ctx: ActionContext) -> None:
        url = self.string(ctx, "url")
        target = safe_child(ctx.workspace, self.string(ctx, "targetPath"), "targetPath")
        with tempfile.TemporaryDirectory(prefix="greenroom-fetch-") as tmp:
            source = await fetch_source(ctx, url, Path(tmp), is_file=True)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)


class FetchTemplateAction(BaseAction):
    id = "fetch:template"
    description = (
        "Downloads a skeleton, templates variables into file and directory names and content, and "
        "places the result in the workspace, or optionally in a subdirectory given by `targetPath`."
    )
    input_schema = strict_object(_TEMPLATE_INPUT, ["url"])

    async def handler(self, ctx: ActionContext) -> None:
        url = self.string(ctx, "url")
        output_dir = safe_child(ctx.workspace, self.string(ctx, "targetPath", "./"), "targetPath")
        no_render = self.strings(ctx, "copyWithoutRender")
        no_template = self.strings(ctx, "copyWithoutTemplating")
        if no_render is not None and no_template is not None:
            raise InputError(
                "Fetch action input copyWithoutRender and copyWithoutTemplating can not be used at the same time"
            )
        patterns = no_render if no_render is not None else (no_template or [])
        render_names_always = no_render is None
        compat = bool(ctx.input.get("cookiecutterCompat"))
        extension: str | None = None
        ext_input = ctx.input.get("templateFileExtension")
        if ext_input:
            if patterns or compat:
                raise InputError(
                    "Fetch action input extension incompatible with copyWithoutRender/copyWithoutTemplating "
                    "and cookiecutterCompat"
                )
            extension = ".njk" if ext_input is True else str(ext_input)
            extension = extension if extension.startswith(".") else f".{extension}"
        values = ctx.input.get("values") or {}
        context = {"cookiecutter" if compat else "values": values}
        engine = _engine(ctx)
        options = {"cookiecutter": compat, "trim_blocks": bool(ctx.input.get("trimBlocks")),
                   "lstrip_blocks": bool(ctx.input.get("lstripBlocks"))}

        def render(text: str, where: str) -> str:
            try:
                return engine.render_text(text, context, **options)
            except ExpressionError as exc:
                line = f":{exc.line}" if exc.line else ""
                raise InputError(f"fetch:template: failed to render {where}{line}: {exc.message}") from None

        replace = bool(ctx.input.get("replace"))
        ctx.log("Fetching template content from remote URL" if is_absolute_url(url) else f"Fetching template content from {url}")
        with tempfile.TemporaryDirectory(prefix="greenroom-fetch-") as tmp:
            template_dir = await fetch_source(ctx, url, Path(tmp))
            if os.path.realpath(output_dir).startswith(os.path.realpath(template_dir) + os.sep):
                raise InputError("targetPath must not be within template path")
            entries = list(walk_tree(template_dir))
            ctx.log(f"Processing {len(entries)} template files/directories with input values")
            for location, full, is_dir in entries:
                local = location
                if extension:
                    render_contents = os.path.splitext(local)[1] == extension
                    if render_contents:
                        local = local[: -len(extension)]
                    local = render(local, f"path {location}")
                else:
                    render_contents = not any(glob_match(p, location) for p in patterns)
                    if render_names_always or render_contents:
                        local = render(local, f"path {location}")
                if local == "" or local.startswith("/") or "//" in local:
                    continue  # a rendered-away segment: Backstage skips these entries
                out = safe_child(output_dir, local, f"skeleton path {location!r} rendered as")
                if out.exists() and not replace:
                    continue
                if is_dir:
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                data = full.read_bytes()
                out.parent.mkdir(parents=True, exist_ok=True)
                if os.path.islink(out):
                    out.unlink()
                if is_binary(data) or not render_contents:
                    out.write_bytes(data)
                else:
                    out.write_text(render(data.decode("utf-8"), location), encoding="utf-8")
                os.chmod(out, os.stat(full).st_mode & 0o777)
        ctx.log(f"Template result written to {os.path.relpath(output_dir, ctx.workspace)}")


class FetchTemplateFileAction(BaseAction):
    id = "fetch:template:file"
    description = "Downloads a single file and templates variables into it."
    input_schema = strict_object(
        {k: _TEMPLATE_INPUT[k] for k in ("url", "targetPath", "values", "cookiecutterCompat", "replace",
                                         "trimBlocks", "lstripBlocks")},
        ["url", "targetPath"],
    )

    async def handler(self, ctx: ActionContext) -> None:
        url = self.string(ctx, "url")
        target = safe_child(ctx.workspace, self.string(ctx, "targetPath"), "targetPath")
        if target.exists() and not ctx.input.get("replace"):
            ctx.log(f"File {target.name} already exists in the workspace; not replacing it")
            return
        compat = bool(ctx.input.get("cookiecutterCompat"))
        context = {"cookiecutter" if compat else "values": ctx.input.get("values") or {}}
        with tempfile.TemporaryDirectory(prefix="greenroom-fetch-") as tmp:
            source = await fetch_source(ctx, url, Path(tmp), is_file=True)
            data = source.read_bytes()
            target.parent.mkdir(parents=True, exist_ok=True)
            if is_binary(data):
                target.write_bytes(data)
                return
            try:
                text = _engine(ctx).render_text(
                    data.decode("utf-8"), context, cookiecutter=compat,
                    trim_blocks=bool(ctx.input.get("trimBlocks")), lstrip_blocks=bool(ctx.input.get("lstripBlocks")),
                )
            except ExpressionError as exc:
                line = f":{exc.line}" if exc.line else ""
                raise InputError(f"fetch:template:file: failed to render {url}{line}: {exc.message}") from None
            target.write_text(text, encoding="utf-8")
