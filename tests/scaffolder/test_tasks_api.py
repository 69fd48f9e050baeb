"""The /api/scaffolder routes over HTTP: a real uvicorn server with the router, a worker in the
server's lifespan, and a principal set by middleware (as the app's auth middleware does)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import uvicorn
import yaml
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError

from greenroom.auth.model import Principal
from greenroom.core.errors import GreenroomError
from greenroom.core.http import describe_validation, error_response
from greenroom.scaffolder import api
from greenroom.scaffolder.service import ScaffolderService
from greenroom.scaffolder.worker import ScaffolderWorker
from tests.conftest import CORPUS, free_port
from tests.scaffolder.conftest import SECRET_PASSWORD, SECRET_TOKEN, Stack, values


def build_app(service: ScaffolderService) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        worker = asyncio.create_task(ScaffolderWorker(service, idle_seconds=0.05).run_forever())
        yield
        worker.cancel()
        with contextlib.suppress(BaseException):
            await worker

    app = FastAPI(lifespan=lifespan)
    app.state.portal = SimpleNamespace(services={"scaffolder": service})

    @app.middleware("http")
    async def identify(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        request.state.principal = Principal("user:default/guest", kind="user")
        return await call_next(request)

    @app.exception_handler(GreenroomError)
    async def _error(request: Request, exc: GreenroomError) -> Response:
        return error_response(request, exc.status_code, exc.name, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return error_response(request, 400, "InputError", describe_validation(exc))

    app.include_router(api.router, prefix="/api/scaffolder")
    return app


@pytest.fixture
def client(stack: Stack) -> Iterator[httpx.Client]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(build_app(stack.service), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started:
        assert time.time() < deadline, "server did not start"
        time.sleep(0.02)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/scaffolder", timeout=30) as c:
        yield c
    server.should_exit = True
    thread.join(timeout=10)


def sse_frames(client: httpx.Client, path: str, **kwargs: Any) -> list[dict[str, str]]:
    frames, current = [], {}
    with client.stream("GET", path, **kwargs) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if not line:
                if current:
                    frames.append(current)
                current = {}
                continue
            key, _, value = line.partition(": ")
            current[key] = value
    return frames


def test_task_over_http_with_sse_long_poll_and_listing(client: httpx.Client, stack: Stack) -> None:
    created = client.post("/v2/tasks", json={"templateRef": "template:default/svc", "values": values(),
                                             "secrets": {"apiToken": SECRET_TOKEN}})
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]

    frames = sse_frames(client, f"/v2/tasks/{task_id}/eventstream")
    kinds = [f["event"] for f in frames]
    assert kinds[-1] == "completion" and set(kinds[:-1]) == {"log"}
    ids = [int(f["id"]) for f in frames]
    assert ids == sorted(ids)
    first = json.loads(frames[0]["data"])
    assert first["taskId"] == task_id and first["type"] == "log" and first["id"] == ids[0]
    done = json.loads(frames[-1]["data"])
    assert done["body"]["output"]["links"][0]["url"].endswith("/forge/acme/billing")
    assert SECRET_TOKEN not in "".join(f["data"] for f in frames)
    assert SECRET_PASSWORD not in "".join(f["data"] for f in frames)

    # resuming after the second-to-last event gives the completion only; Last-Event-ID works too
    resumed = sse_frames(client, f"/v2/tasks/{task_id}/eventstream", headers={"Last-Event-ID": str(ids[-2])})
    assert [f["event"] for f in resumed] == ["completion"]
    polled = client.get(f"/v2/tasks/{task_id}/events", params={"after": ids[-2]}).json()
    assert [e["type"] for e in polled] == ["completion"]

    task = client.get(f"/v2/tasks/{task_id}").json()
    assert task["status"] == "completed" and task["createdBy"] == "user:default/guest"
    assert "secrets" not in task and "dbPassword" not in task["spec"]["parameters"]
    listed = client.get("/v2/tasks", params={"createdBy": "user:default/guest", "limit": 1}).json()
    assert listed["totalTasks"] == 1 and [t["id"] for t in listed["tasks"]] == [task_id]
    assert client.get("/v2/tasks", params={"status": "open"}).json() == {"tasks": [], "totalTasks": 0}

    missing = client.get("/v2/tasks/no-such-task")
    assert missing.status_code == 404 and missing.json()["error"]["name"] == "NotFoundError"
    retry = client.post(f"/v2/tasks/{task_id}/retry", json={"secrets": {"apiToken": SECRET_TOKEN}})
    assert retry.status_code == 201 and retry.json() == {"id": task_id}


def test_invalid_values_answer_400_with_field_names(client: httpx.Client) -> None:
    response = client.post("/v2/tasks", json={"templateRef": "template:default/svc",
                                              "values": {"name": "Not Valid", "wait": "soon"}})
    assert response.status_code == 400
    body = response.json()
    assert body["error"]["name"] == "InputError"
    by_property = {e["property"]: e["message"] for e in body["errors"]}
    assert "does not match" in by_property["instance.name"]
    assert "'owner' is a required property" in by_property["instance"]
    assert "is not of type 'number'" in by_property["instance.wait"]
    assert client.get("/v2/tasks").json()["totalTasks"] == 0


def test_cancel_over_http_and_long_poll_timeout(client: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "LONG_POLL_SECONDS", 0.5)
    task_id = client.post("/v2/tasks", json={"templateRef": "svc", "values": values(wait=10)}).json()["id"]
    deadline = time.time() + 20
    while not any(e["body"].get("stepId") == "wait" for e in client.get(f"/v2/tasks/{task_id}/events").json()):
        assert time.time() < deadline
    last = client.get(f"/v2/tasks/{task_id}/events").json()[-1]["id"]
    started = time.monotonic()
    assert client.get(f"/v2/tasks/{task_id}/events", params={"after": last}).json() == []
    assert time.monotonic() - started >= 0.4  # waited for new events before answering
    assert client.post(f"/v2/tasks/{task_id}/cancel").json() == {"status": "cancelled"}
    frames = sse_frames(client, f"/v2/tasks/{task_id}/eventstream", params={"after": last})
    assert [f["event"] for f in frames][:1] == ["cancelled"] and frames[-1]["event"] == "completion"
    assert client.get(f"/v2/tasks/{task_id}").json()["status"] == "cancelled"


def test_actions_schema_and_extensions(client: httpx.Client) -> None:
    actions = {a["id"]: a for a in client.get("/v2/actions").json()}
    assert {"fetch:template", "publish:github", "publish:gitlab", "github:actions:dispatch"} <= set(actions)
    assert "repoUrl" in actions["publish:github"]["schema"]["input"]["properties"]
    schema = client.get("/v2/templates/default/template/svc/parameter-schema").json()
    assert schema["title"] == "Service" and [s["title"] for s in schema["steps"]] == ["Basics", "Behaviour"]
    assert schema["steps"][0]["schema"]["required"] == ["name", "owner"]
    assert client.get("/v2/templates/default/template/nope/parameter-schema").status_code == 404
    assert client.get("/v2/templates/default/component/svc/parameter-schema").status_code == 400
    assert "parseRepoUrl" in client.get("/v2/templating-extensions").json()["filters"]
    assert client.post("/v2/autocomplete/github/repositories", json={"token": "x", "context": {}}).status_code == 400


def test_dry_run_of_a_corpus_template_returns_its_files(client: httpx.Client) -> None:
    folder = CORPUS / "templates" / "create-app__example-template"
    template = yaml.safe_load((folder / "template.yaml").read_text())
    contents = [{"path": str(p.relative_to(folder)), "base64Content": base64.b64encode(p.read_bytes()).decode()}
                for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "template.yaml"]
    body = {"template": template, "values": {"name": "demo", "repoUrl": "github.com?owner=o&repo=demo"},
            "secrets": {}, "directoryContents": contents}
    response = client.post("/v2/dry-run", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    files = {f["path"]: base64.b64decode(f["base64Content"]).decode() for f in result["directoryContents"]}
    assert sorted(files) == ["catalog-info.yaml", "index.js", "package.json"]
    assert "demo" in files["catalog-info.yaml"]
    assert [s["id"] for s in result["steps"]] == ["fetch-base", "publish", "register", "notify"]
    assert any("does not support dry-run" in e["body"]["message"] for e in result["log"])
    bad = client.post("/v2/dry-run", json={**body, "values": {}})
    assert bad.status_code == 400 and {e["property"] for e in bad.json()["errors"]} == {"instance"}
    legacy = client.post("/v2/dry-run", json={**body, "template": {**template, "apiVersion": "backstage.io/v1beta2"}})
    assert legacy.status_code == 400 and "v1beta3" in legacy.json()["error"]["message"]
