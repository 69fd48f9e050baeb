"""fs:delete, fs:rename, debug:log, debug:wait: workspace housekeeping and diagnostics."""

from __future__ import annotations

import asyncio
import os
import shutil
import time

from greenroom.core.errors import InputError
from greenroom.scaffolder.engine.actions.base import BaseAction, strict_object
from greenroom.scaffolder.engine.paths import glob_match, safe_child, walk_tree
from greenroom.scaffolder.model import ActionContext

MAX_WAIT_SECONDS = 60.0  # debug:wait is for demos; a task must not sleep for long on a worker


class FsDeleteAction(BaseAction):
    id = "fs:delete"
    description = "Deletes files and directories (glob patterns) from the workspace."
    input_schema = strict_object(
        {"files": {"type": "array", "items": {"type": "string"}, "title": "Files",
                   "description": "Glob patterns of files and directories to delete"}},
        ["files"],
    )

    async def handler(self, ctx: ActionContext) -> None:
        for pattern in self.strings(ctx, "files") or []:
            safe_child(ctx.workspace, pattern.replace("*", "x"), "files entry")  # refuse escaping patterns
            matches = [rel for rel, _, _ in walk_tree(ctx.workspace) if glob_match(pattern, rel)]
            for rel in sorted(matches, key=len, reverse=True):
                path = safe_child(ctx.workspace, rel, "files entry")
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                elif path.exists() or path.is_symlink():
                    path.unlink()
                ctx.log(f"File {rel} deleted successfully")


class FsRenameAction(BaseAction):
    id = "fs:rename"
    description = "Renames files and directories in the workspace."
    input_schema = strict_object(
        {"files": {"type": "array", "items": {
            "type": "object", "required": ["from", "to"],
            "properties": {"from": {"type": "string"}, "to": {"type": "string"},
                           "overwrite": {"type": "boolean"}}}}},
        ["files"],
    )

    async def handler(self, ctx: ActionContext) -> None:
        for item in ctx.input.get("files") or []:
            source = safe_child(ctx.workspace, item["from"], "files[].from")
            dest = safe_child(ctx.workspace, item["to"], "files[].to")
            if not source.exists():
                raise InputError(f"fs:rename: {item['from']!r} does not exist in the workspace")
            if dest.exists() and not item.get("overwrite"):
                raise InputError(f"fs:rename: {item['to']!r} already exists; set overwrite: true to replace it")
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.is_dir() and item.get("overwrite"):
                shutil.rmtree(dest)
            os.replace(source, dest)
            ctx.log(f"File {item['from']} renamed to {item['to']} successfully")


class DebugLogAction(BaseAction):
    id = "debug:log"
    description = "Writes a message into the log and/or lists all files in the workspace."
    input_schema = strict_object({
        "message": {"type": "string", "title": "Message to output."},
        "listWorkspace": {"type": ["boolean", "string"], "enum": [True, False, "with-filenames", "with-contents"],
                          "title": "List all files in the workspace, if true."},
        "extra": {"title": "Extra info"},
    })

    async def handler(self, ctx: ActionContext) -> None:
        if ctx.input.get("message") is not None:
            ctx.log(str(ctx.input["message"]))
        mode = ctx.input.get("listWorkspace")
        if mode:
            lines = []
            for rel, full, is_dir in walk_tree(ctx.workspace):
                if is_dir:
                    continue
                if mode == "with-contents":
                    lines.append(f"{rel}:\n{full.read_text(errors='replace')}")
                else:
                    lines.append(f"  {rel}")
            ctx.log("Workspace:\n" + "\n".join(lines))


class DebugWaitAction(BaseAction):
    id = "debug:wait"
    description = f"Waits for a certain period of time (at most {int(MAX_WAIT_SECONDS)} s)."
    input_schema = strict_object({
        "minutes": {"type": "number"}, "seconds": {"type": "number"}, "milliseconds": {"type": "number"},
    })

    async def handler(self, ctx: ActionContext) -> None:
        total = (float(ctx.input.get("minutes") or 0) * 60 + float(ctx.input.get("seconds") or 0)
                 + float(ctx.input.get("milliseconds") or 0) / 1000)
        if total > MAX_WAIT_SECONDS:
            raise InputError(f"debug:wait: waiting time cannot exceed {int(MAX_WAIT_SECONDS)} seconds")
        deadline = time.monotonic() + total
        while (left := deadline - time.monotonic()) > 0:
            if ctx.is_cancelled():
                return
            await asyncio.sleep(min(left, 0.1))
