"""The demo's golden path end to end, on a real demo portal (SQLite, workers on, real git):
run "python-service", get a repository on the built-in git host with the rendered files and an
entity in the catalog at once, owned by the chosen team, whose page links to the repository.

Once through the API (``POST /api/scaffolder/v2/tasks``) and once in Debian's Chromium through
the Create pages (screenshots in test-artifacts/create/).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

import greenroom
from greenroom.core.config import LocationSpec
from tests.conftest import TOKEN, Server, make_settings

DEMO = Path(greenroom.__file__).parent / "demo"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "create"
ARTIFACTS.mkdir(parents=True, exist_ok=True)
VALUES = {"name": "parcel-weigher", "description": "Weighs parcels at the dock and flags oversize ones.",
          "owner": "group:default/dock-ops", "system": "system:default/warehouse-ops"}


@pytest.fixture
def demo(tmp_path: Path, server_factory: Any) -> Server:
    """A running demo portal (guest sign-in on) with the demo organisation and its templates,
    registered as ``greenroom serve --demo`` does."""
    settings = make_settings(tmp_path, {"client": "sqlite", "connection": str(tmp_path / "greenroom.db")},
                             greenroom={"demo": True, "home": str(tmp_path / "home"), "logLevel": "warning"})
    settings.catalog.locations.insert(0, LocationSpec(type="file", target=str(DEMO / "catalog-info.yaml")))
    server: Server = server_factory(settings)
    return server


def guest(server: Server) -> httpx.Client:
    """A client signed in as the demo's guest (session cookie, as a browser)."""
    client = httpx.Client(base_url=server.url, timeout=30)
    r = client.post("/signin/guest", data={"next": "/create"})
    assert r.status_code == 303, r.text
    return client


def wait_task(server: Server, task_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        task: dict[str, Any] = server.client.get(f"/api/scaffolder/v2/tasks/{task_id}").json()
        if task["status"] in ("completed", "failed", "cancelled"):
            return task
        assert time.monotonic() < deadline, f"task still {task['status']}"
        time.sleep(0.05)


def completion(server: Server, task_id: str) -> dict[str, Any]:
    events = server.client.get(f"/api/scaffolder/v2/tasks/{task_id}/events").json()
    done = [e for e in events if e["type"] == "completion"]
    assert done, events
    failed = [e["body"]["message"] for e in events if e["body"].get("status") == "failed"]
    assert not done[0]["body"].get("error"), f"task failed: {failed or done[0]['body']}"
    body: dict[str, Any] = done[0]["body"]
    return body


def repository_of(output: dict[str, Any]) -> tuple[str, str]:
    """``(org, repo)`` from the task's "Repository" link (``{web}/forge/<org>/<repo>``)."""
    link = next(link for link in output["links"] if link.get("title") == "Repository")
    parts = urlsplit(link["url"]).path.strip("/").split("/")
    assert parts[0] == "forge" and len(parts) == 3, link
    return parts[1], parts[2]


def clone(server: Server, org: str, repo: str, dest: Path) -> Path:
    """``git clone`` over the portal's smart HTTP with the token as the password."""
    home = dest.parent / "git-home"
    home.mkdir(exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    url = f"http://tests:{TOKEN}@127.0.0.1:{server.port}/git/{org}/{repo}.git"
    proc = subprocess.run(["git", "clone", "-q", url, str(dest)], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr.replace(TOKEN, "<token>")
    return dest


def assert_rendered(checkout: Path, values: dict[str, str]) -> None:
    entity = yaml.safe_load((checkout / "catalog-info.yaml").read_text())
    assert entity["metadata"]["name"] == values["name"]
    assert entity["spec"]["owner"] == values["owner"]
    assert entity["spec"]["system"] == values["system"]
    ci = yaml.safe_load((checkout / ".github" / "workflows" / "ci.yml").read_text())
    assert ci["jobs"], "the CI workflow has jobs"
    assert "pytest" in (checkout / ".github" / "workflows" / "ci.yml").read_text()
    assert (checkout / "mkdocs.yml").is_file() and (checkout / "docs" / "index.md").is_file()
    assert values["name"] in (checkout / "docs" / "index.md").read_text()
    module = values["name"].replace("-", "_")
    assert (checkout / "src" / module / "app.py").is_file()
    assert "${{" not in (checkout / "catalog-info.yaml").read_text()


def entity_page_links_repository(client: httpx.Client, org: str, repo: str) -> list[str]:
    page = client.get(f"/catalog/default/component/{VALUES['name']}")
    assert page.status_code == 200
    hrefs = re.findall(r'href="([^"]+)"', page.text)
    return [h for h in hrefs if f"/{org}/{repo}" in h]


def test_api_runs_python_service_to_a_repository_and_a_catalog_entity(demo: Server, tmp_path: Path) -> None:
    r = demo.client.post("/api/scaffolder/v2/tasks",
                         json={"templateRef": "template:default/python-service", "values": VALUES})
    assert r.status_code == 201, r.text
    task_id = r.json()["id"]
    task = wait_task(demo, task_id)
    output = completion(demo, task_id)["output"]
    assert task["status"] == "completed"

    # Registered at once: visible as soon as the task completed, no refresh cycle needed.
    refs = [link.get("entityRef") for link in output["links"] if link.get("entityRef")]
    assert refs == [f"component:default/{VALUES['name']}"]
    entity = demo.client.get(f"/api/catalog/entities/by-name/component/default/{VALUES['name']}").json()
    assert entity["spec"]["owner"] == VALUES["owner"]
    assert {"type": "ownedBy", "targetRef": VALUES["owner"]} in entity["relations"]
    org, repo = repository_of(output)
    assert repo == VALUES["name"]
    assert entity_page_links_repository(guest(demo), org, repo)

    assert_rendered(clone(demo, org, repo, tmp_path / "checkout"), VALUES)


def test_api_second_run_with_the_same_name_fails_and_says_why(demo: Server) -> None:
    body = {"templateRef": "template:default/python-service", "values": {**VALUES, "name": "dock-scales"}}
    first = demo.client.post("/api/scaffolder/v2/tasks", json=body).json()["id"]
    assert wait_task(demo, first)["status"] == "completed"
    second = demo.client.post("/api/scaffolder/v2/tasks", json=body).json()["id"]
    assert wait_task(demo, second)["status"] == "failed"
    events = demo.client.get(f"/api/scaffolder/v2/tasks/{second}/events").json()
    assert "already exists" in events[-1]["body"]["error"]["message"]


# --- the same journey in a browser ------------------------------------------------------------




def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.mark.browser
def test_browser_create_python_service_from_the_page(browser: Any, demo: Server, tmp_path: Path) -> None:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=demo.url)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # Leaving the task page closes its event stream; that abort is expected, nothing else is.
    page.on("requestfailed", lambda r: None if "/eventstream" in r.url else errors.append(f"failed: {r.url}"))

    page.goto("/create")
    assert "/signin?next=%2Fcreate" in page.url
    page.get_by_role("button", name="Continue as guest").click()
    page.wait_for_url(re.compile(r"/create$"))
    assert page.locator("nav.main-nav a[aria-current=page]").inner_text() == "Create"
    shot(page, "gallery")
    page.get_by_role("link", name="Choose Python service (FastAPI)").click()
    page.wait_for_url("**/create/templates/default/python-service")

    # A wrong name comes back with the error next to the field and the other values kept.
    page.get_by_role("textbox", name=re.compile(r"^Name")).fill("Parcel Weigher")
    page.get_by_label("Description").fill(VALUES["description"])
    page.get_by_label("Owner").select_option(VALUES["owner"])
    page.get_by_label("System").select_option(VALUES["system"])
    page.get_by_role("button", name="Create").click()
    page.wait_for_selector('.field.has-error[data-field="name"] .field-errors')
    assert page.get_by_label("Description").input_value() == VALUES["description"]
    assert page.get_by_label("Owner").input_value() == VALUES["owner"]
    shot(page, "form-errors")

    page.get_by_role("textbox", name=re.compile(r"^Name")).fill(VALUES["name"])
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(r"/create/tasks/[0-9a-f-]{36}$"))
    page.wait_for_selector('#task-status[data-status="completed"]', timeout=30000)
    assert page.locator('.task-steps li[data-status="completed"]').count() == 3
    assert "Finished step Register in the catalog" in page.locator("#task-log").inner_text()
    shot(page, "task-completed")
    repo_href = page.get_by_role("link", name="Repository").get_attribute("href")

    page.get_by_role("link", name="Open in catalog").click()
    page.wait_for_url(f"**/catalog/default/component/{VALUES['name']}")
    assert page.get_by_role("heading", name=VALUES["name"]).first.is_visible()
    assert page.locator("dl.about").get_by_role("link", name="dock-ops", exact=True).is_visible()
    org, repo = urlsplit(repo_href).path.strip("/").split("/")[1:3]
    repo_links = page.locator(f'a[href*="/{org}/{repo}"]')
    assert repo_links.count() >= 1, "the entity page links to its repository"
    shot(page, "entity")
    assert errors == []
    ctx.close()

    assert_rendered(clone(demo, org, repo, tmp_path / "checkout"), VALUES)
