"""publish:github, github:actions:dispatch and publish:gitlab against HTTP-level fakes with real
git repositories behind them (``tests/fakes``), configured the Backstage way (``integrations:``)."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from greenroom.core.config import load_settings
from greenroom.scaffolder.engine.actions import load_actions
from greenroom.scaffolder.engine.runner import TaskFailedError, run_template
from greenroom.scaffolder.model import TaskEvent, TemplateInfo
from tests.fakes.github import FakeGitHub
from tests.fakes.gitlab import FakeGitLab


@pytest.fixture
def github(tmp_path: Path) -> Iterator[FakeGitHub]:
    fake = FakeGitHub(tmp_path / "github")
    yield fake
    fake.close()


@pytest.fixture
def gitlab(tmp_path: Path) -> Iterator[FakeGitLab]:
    fake = FakeGitLab(tmp_path / "gitlab")
    yield fake
    fake.close()


def integrations(kind: str, fake: Any, token: str | None = None) -> Any:
    config = {"integrations": {kind: [{"host": fake.host, "token": token or fake.token,
                                       "apiBaseUrl": fake.api_base_url}]}}
    return load_settings([], overrides=config).integrations


def run(tmp_path: Path, steps: list[dict[str, Any]], services: dict[str, Any], name: str = "ws"
        ) -> tuple[dict[str, Any], list[TaskEvent]]:
    base = tmp_path / "tpl"
    (base / "skeleton" / "src").mkdir(parents=True, exist_ok=True)
    (base / "skeleton" / "README.md").write_text("# ${{ values.name }}\n")
    (base / "skeleton" / "src" / "app.py").write_text("print('${{ values.name }}')\n")
    workspace = tmp_path / name
    workspace.mkdir()
    template = {"apiVersion": "scaffolder.backstage.io/v1beta3", "kind": "Template", "metadata": {"name": "t"},
                "spec": {"steps": [{"id": "fetch", "action": "fetch:template",
                                    "input": {"url": "./skeleton", "values": {"name": "svc"}}}, *steps],
                         "output": {"links": [{"url": "${{ steps.publish.output.remoteUrl }}"}],
                                    "contents": "${{ steps.publish.output.repoContentsUrl }}"}}}
    events: list[TaskEvent] = []
    result = asyncio.run(run_template(template, {}, workspace, actions=load_actions(),
                                      template_info=TemplateInfo("template:default/t", base_dir=base),
                                      services=services, on_event=events.append))
    return result.output, events


def tree(git_dir: Path, ref: str) -> list[str]:
    out = subprocess.run(["git", "--git-dir", str(git_dir), "ls-tree", "-r", "--name-only", ref],
                         capture_output=True, text=True, check=True)
    return out.stdout.split()


def log_text(events: list[TaskEvent]) -> str:
    return "\n".join(repr(e.body) for e in events)


def test_publish_github_to_an_org_then_dispatch_a_workflow(tmp_path: Path, github: FakeGitHub) -> None:
    steps = [
        {"id": "publish", "action": "publish:github",
         "input": {"repoUrl": f"{github.host}?owner=acme&repo=svc", "description": "Svc", "defaultBranch": "main",
                   "repoVisibility": "internal", "topics": ["python"]}},
        {"id": "ci", "action": "github:actions:dispatch",
         "input": {"repoUrl": f"{github.host}?owner=acme&repo=svc", "workflowId": "ci.yml",
                   "branchOrTagName": "main", "workflowInputs": {"env": "dev"}}},
    ]
    output, events = run(tmp_path, steps, {"integrations": integrations("github", github)})
    assert output == {"links": [{"url": f"{github.url}/acme/svc"}], "contents": f"{github.url}/acme/svc/blob/main"}
    assert tree(github.git_dir("acme", "svc"), "main") == ["README.md", "src/app.py"]
    created = next(r for r in github.requests if r.method == "POST" and r.path.endswith("/orgs/acme/repos"))
    assert created.body["visibility"] == "internal" and created.body["private"] is False
    assert github.dispatches == [{"repo": "acme/svc", "workflow": "ci.yml", "ref": "main", "inputs": {"env": "dev"}}]
    author = subprocess.run(["git", "--git-dir", str(github.git_dir("acme", "svc")), "log", "-1", "--format=%an <%ae>",
                             "main"], capture_output=True, text=True, check=True).stdout.strip()
    assert author == "Scaffolder <scaffolder@backstage.io>"
    assert "does not apply topics" in log_text(events)
    assert github.token not in log_text(events)
    assert not (tmp_path / "ws" / ".git").exists()  # the workspace is left as the steps made it


def test_publish_github_for_the_token_user_and_refusals(tmp_path: Path, github: FakeGitHub) -> None:
    step = {"id": "publish", "action": "publish:github",
            "input": {"repoUrl": f"{github.host}?owner=octocat&repo=mine"}}
    output, _ = run(tmp_path, [step], {"integrations": integrations("github", github)})
    assert output["contents"].endswith("/octocat/mine/blob/master")  # Backstage's default branch
    assert tree(github.git_dir("octocat", "mine"), "master") == ["README.md", "src/app.py"]

    with pytest.raises(TaskFailedError, match="already exists"):
        run(tmp_path, [step], {"integrations": integrations("github", github)}, name="ws2")
    wrong = "ghp_wrong_token_abcdef123456"
    with pytest.raises(TaskFailedError, match="token was rejected") as info:
        run(tmp_path, [step], {"integrations": integrations("github", github, wrong)}, name="ws3")
    assert wrong not in str(info.value) and wrong not in log_text(info.value.events)
    with pytest.raises(TaskFailedError, match="integrations.github"):
        run(tmp_path, [step], {}, name="ws4")  # no integration configured for that host


def test_publish_gitlab_creates_pushes_and_skips_existing(tmp_path: Path, gitlab: FakeGitLab) -> None:
    services = {"integrations": integrations("gitlab", gitlab)}
    step = {"id": "publish", "action": "publish:gitlab",
            "input": {"repoUrl": f"{gitlab.host}?owner=platform&repo=svc", "defaultBranch": "main",
                      "repoVisibility": "internal"}}
    output, events = run(tmp_path, [step], services)
    assert output == {"links": [{"url": f"{gitlab.url}/platform/svc"}], "contents": f"{gitlab.url}/platform/svc/-/blob/main"}
    assert tree(gitlab.git_dir("platform/svc"), "main") == ["README.md", "src/app.py"]
    assert gitlab.projects["platform/svc"]["visibility"] == "internal"
    assert gitlab.token not in log_text(events)

    with pytest.raises(TaskFailedError, match="exists already"):
        run(tmp_path, [step], services, name="ws2")
    skip = {**step, "input": {**step["input"], "skipExisting": True}}
    output, events = run(tmp_path, [skip], services, name="ws3")
    assert output["links"] == [{"url": f"{gitlab.url}/platform/svc"}]
    assert "skipping" in log_text(events)
    with pytest.raises(TaskFailedError, match="namespace nobody"):
        run(tmp_path, [{**step, "input": {**step["input"], "repoUrl": f"{gitlab.host}?owner=nobody&repo=x"}}],
            services, name="ws4")
