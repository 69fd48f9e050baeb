"""Runner semantics (if/each/outputs/secrets/cancel) and path safety, on real directories."""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path
from typing import Any

import pytest

from greenroom.scaffolder.engine.actions import load_actions
from greenroom.scaffolder.engine.dryrun import dry_run
from greenroom.scaffolder.engine.runner import TaskFailedError, run_template
from greenroom.scaffolder.model import CancelledError, ParameterValidationError, TemplateInfo


def template(steps: list[dict[str, Any]], parameters: Any = None, output: Any = None) -> dict[str, Any]:
    return {"apiVersion": "scaffolder.backstage.io/v1beta3", "kind": "Template", "metadata": {"name": "t"},
            "spec": {"parameters": parameters or [], "steps": steps, "output": output or {}}}


def skeleton(tmp_path: Path, files: dict[str, str]) -> Path:
    base = tmp_path / "tpl"
    for rel, text in files.items():
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        (base / rel).write_text(text)
    return base


def fetch(**inp: Any) -> dict[str, Any]:
    return {"id": "fetch", "action": "fetch:template", "input": {"url": "./skeleton", **inp}}


def test_templated_folder_names_and_copy_without_templating(tmp_path: Path) -> None:
    base = skeleton(tmp_path, {"skeleton/${{ values.pkg }}/A.java": "package ${{ values.pkg }};\n",
                               "skeleton/.github/workflows/ci.yml": "sha: ${{ github.sha }}\n",
                               "skeleton/${{ values.optional }}": "dropped\n"})
    t = template([fetch(values={"pkg": "io.acme"}, copyWithoutTemplating=[".github/workflows/"])])
    result = asyncio.run(dry_run(t, {}, base_dir=base))
    files = {f.path: f.content.decode() for f in result.directory_contents}
    assert files == {"io.acme/A.java": "package io.acme;\n", ".github/workflows/ci.yml": "sha: ${{ github.sha }}\n"}


@pytest.mark.parametrize("target", ["../escape", "/etc", "a/../../escape"])
def test_target_path_may_not_leave_the_workspace(tmp_path: Path, target: str) -> None:
    base = skeleton(tmp_path, {"skeleton/f.txt": "x"})
    with pytest.raises(TaskFailedError, match="targetPath"):
        asyncio.run(dry_run(template([fetch(targetPath=target)]), {}, base_dir=base))
    assert not (tmp_path / "escape").exists()


def test_skeleton_file_name_rendering_to_traversal_is_refused(tmp_path: Path) -> None:
    base = skeleton(tmp_path, {"skeleton/${{ values.name }}.txt": "x"})
    with pytest.raises(TaskFailedError, match="not allowed"):
        asyncio.run(dry_run(template([fetch(values={"name": "../../../../tmp/pwned"})]), {}, base_dir=base))
    assert not Path("/tmp/pwned.txt").exists()


def test_symlink_escaping_the_template_is_refused(tmp_path: Path) -> None:
    base = skeleton(tmp_path, {"skeleton/ok.txt": "x"})
    (tmp_path / "secret.txt").write_text("TOP SECRET")
    os.symlink(tmp_path / "secret.txt", base / "skeleton" / "leak.txt")
    with pytest.raises(TaskFailedError, match="symlink"):
        asyncio.run(dry_run(template([fetch()]), {}, base_dir=base))


def test_fetch_url_may_not_leave_the_repository(tmp_path: Path) -> None:
    base = skeleton(tmp_path, {"skeleton/ok.txt": "x"})
    with pytest.raises(TaskFailedError, match="outside"):
        asyncio.run(dry_run(template([{"id": "f", "action": "fetch:plain", "input": {"url": "../../.."}}]), {},
                            base_dir=base))


def test_uploaded_directory_contents_may_not_climb(tmp_path: Path) -> None:
    contents = [{"path": "../../evil.txt", "base64Content": base64.b64encode(b"x").decode()}]
    with pytest.raises(Exception, match="not allowed"):
        asyncio.run(dry_run(template([]), {}, directory_contents=contents))


def test_if_each_outputs_and_parameter_defaults(tmp_path: Path) -> None:
    params = [{"required": ["name"], "properties": {"name": {"type": "string"},
                                                    "size": {"type": "string", "default": "s"}}}]
    steps = [
        {"id": "skip", "if": "${{ parameters.size === 'l' }}", "action": "debug:log", "input": {"message": "no"}},
        {"id": "loop", "each": "${{ ['a', 'b'] }}", "action": "catalog:write",
         "input": {"filePath": "${{ each.value }}.yaml", "entity": {"metadata": {"name": "${{ each.key }}"}}}},
        {"id": "bad", "each": "${{ parameters.name }}", "if": False, "action": "debug:log"},
    ]
    out = {"text": "${{ parameters.name }}-${{ parameters.size }}", "skipped": "${{ steps.skip.output.x }}"}
    result = asyncio.run(dry_run(template(steps, params, out), {"name": "svc"}, base_dir=tmp_path))
    assert sorted(f.path for f in result.directory_contents) == ["a.yaml", "b.yaml"]
    assert result.output == {"text": "svc-s"}
    assert any(e["body"].get("status") == "skipped" and e["body"]["stepId"] == "skip" for e in result.log)
    with pytest.raises(ParameterValidationError) as info:
        asyncio.run(dry_run(template(steps, params), {}, base_dir=tmp_path))
    assert info.value.errors[0].property == "instance" and "name" in info.value.errors[0].message
    bad_each = template([{"id": "e", "each": "${{ parameters.name }}", "action": "debug:log"}], params)
    with pytest.raises(TaskFailedError, match="list or an object"):
        asyncio.run(dry_run(bad_each, {"name": "svc"}, base_dir=tmp_path))


def test_secrets_and_password_fields_never_reach_the_log(tmp_path: Path) -> None:
    params = [{"properties": {"pw": {"type": "string", "ui:widget": "password"}}}]
    steps = [{"id": "log", "action": "debug:log",
              "input": {"message": "token=${{ secrets.TOKEN }} pw=${{ parameters.pw }}"}}]
    events: list[Any] = []
    workspace = tmp_path / "ws"
    workspace.mkdir()
    asyncio.run(run_template(template(steps, params), {"pw": "hunter2-pass"}, workspace,
                             actions=load_actions(), template_info=TemplateInfo("template:default/t"),
                             secrets={"TOKEN": "s3cr3t-token-value"}, on_event=events.append))
    text = "\n".join(str(e.body) for e in events)
    # like Backstage, a rendered value that a secret influenced is redacted as a whole
    assert any(e.body.get("stepId") == "log" and e.body["message"] == "***" for e in events)
    assert "s3cr3t-token-value" not in text and "hunter2-pass" not in text


def test_cancellation_stops_at_the_next_step_boundary(tmp_path: Path) -> None:
    steps = [{"id": "a", "action": "debug:log", "input": {"message": "1"}},
             {"id": "b", "action": "debug:log", "input": {"message": "2"}}]
    seen: list[str] = []
    workspace = tmp_path / "ws"
    workspace.mkdir()
    with pytest.raises(CancelledError):
        asyncio.run(run_template(template(steps), {}, workspace, actions=load_actions(),
                                 template_info=TemplateInfo("template:default/t"),
                                 on_event=lambda e: seen.append(e.body["message"]),
                                 is_cancelled=lambda: "Finished step debug:log" in seen))
    assert "2" not in seen
