"""The Create pages over HTTP on a real demo portal, signed in as the demo's guest: gallery
filters, the form drawn from a template's schemas (every widget kind), server-side validation
with values kept and passwords never echoed, the task page (cancel, retry, outputs), the task
list and the template editor's dry-run with line numbers."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server
from tests.scaffolder.test_demo_e2e import VALUES, demo, guest, wait_task  # noqa: F401 - fixture

WIDGETS = """\
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: widgets
  title: Every widget
  description: One field of each kind the form knows.
  tags: [testing]
spec:
  owner: group:default/parcel-trackers
  type: other
  parameters:
    - title: Basics
      required: [name, count]
      properties:
        name: {title: Name, type: string, ui:field: EntityNamePicker}
        count: {title: Count, type: integer, default: 2}
        flavour: {title: Flavour, type: string, enum: [plain, spicy], default: spicy}
        enabled: {title: Enabled, type: boolean}
        notes: {title: Notes, type: string, ui:widget: textarea}
        dbPassword: {title: Database password, type: string, ui:widget: password}
    - title: Catalog
      properties:
        team: {title: Team, type: string, ui:field: MyGroupsPicker}
        mine: {title: Something I own, type: string, ui:field: OwnedEntityPicker}
        tags: {title: Tags, type: array, items: {type: string}, ui:field: EntityTagsPicker}
        regions: {title: Regions, type: array, uniqueItems: true, items: {type: string, enum: [eu, us]}}
        repoUrl:
          title: Repository
          type: string
          ui:field: RepoUrlPicker
          ui:options: {allowedHosts: [greenroom, github.com]}
        mode: {title: Mode, type: string, enum: [simple, advanced], default: simple}
      dependencies:
        mode:
          oneOf:
            - properties: {mode: {const: simple}}
            - properties:
                mode: {const: advanced}
                depth: {title: Depth, type: integer}
              required: [depth]
  steps:
    - id: wait
      name: Wait a little
      action: debug:wait
      input: {seconds: "${{ parameters.count }}"}
    - id: log
      name: Say hello
      action: debug:log
      input: {message: "hello ${{ parameters.name }}"}
  output:
    text:
      - title: Next steps
        content: Ask ${{ parameters.team }} to review ${{ parameters.name }}.
"""


@pytest.fixture
def portal(demo: Server, tmp_path: Path) -> Server:  # noqa: F811 - the imported fixture
    folder = tmp_path / "widgets"
    folder.mkdir()
    (folder / "template.yaml").write_text(WIDGETS)
    demo.portal.services["catalog"].register_location("file", str(folder / "template.yaml"))
    return demo


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def field_html(html: str, name: str) -> str:
    m = re.search(rf'<div class="field[^"]*" data-field="{re.escape(name)}">(.*?)\n</div>', html, re.DOTALL)
    assert m, f"no field {name}"
    return m.group(1)


def test_pages_need_sign_in_and_refuse_other_sites(demo: Server) -> None:  # noqa: F811
    r = demo.anonymous.get("/create", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/signin?next=%2Fcreate"
    client = guest(demo)
    r = client.post("/create/templates/default/python-service", data=VALUES,
                    headers={"origin": "https://evil.example"})
    assert r.status_code == 403
    assert client.get("/api/scaffolder/v2/tasks").json()["totalTasks"] == 0


def test_gallery_filters_by_tag_owner_and_text(demo: Server) -> None:  # noqa: F811
    client = guest(demo)
    page = client.get("/create").text
    assert 'href="/create/templates/default/python-service"' in page
    assert 'href="/create/templates/default/docs-site"' in page
    assert 'aria-current="page">Create<' in page
    python = client.get("/create?tag=python").text
    assert "Python service (FastAPI)" in python and "Documentation site" not in text_of(python).split("templates", 1)[1]
    assert "docs-site" not in re.findall(r'href="/create/templates/default/([^"]+)"', python)
    both = client.get("/create?owner=platform-core").text
    assert len(re.findall(r'class="card template-card"', both)) == 2
    assert "No template matches" in client.get("/create?tag=nothing-has-this").text
    docs = client.get("/create?q=handbooks").text
    assert re.findall(r'href="/create/templates/default/([^"]+)" aria-label', docs) == ["docs-site"]


def test_form_offers_catalog_choices(demo: Server) -> None:  # noqa: F811
    html = guest(demo).get("/create/templates/default/python-service").text
    owners = re.findall(r'<option value="([^"]+)"', field_html(html, "owner"))
    assert "group:default/dock-ops" in owners and all(o.startswith("group:") for o in owners if o)
    systems = re.findall(r'<option value="([^"]+)"', field_html(html, "system"))
    assert "system:default/warehouse-ops" in systems and all(s.startswith("system:") for s in systems if s)
    assert "autofocus" in field_html(html, "name")


def test_every_widget_renders_and_posts_back_typed_values(portal: Server) -> None:
    client = guest(portal)
    html = client.get("/create/templates/default/widgets").text
    assert 'type="number"' in field_html(html, "count") and 'value="2"' in field_html(html, "count")
    assert re.search(r'<option value="spicy" selected>', field_html(html, "flavour"))
    assert 'type="checkbox"' in field_html(html, "enabled")
    assert "<textarea" in field_html(html, "notes")
    assert 'type="password"' in field_html(html, "dbPassword")
    teams = re.findall(r'<option value="([^"]+)"', field_html(html, "team"))
    assert set(teams) - {""} == {"group:default/parcel-trackers", "group:default/platform-core"}  # guest's
    owned = re.findall(r'<option value="([^"]+)"', field_html(html, "mine"))
    assert "component:default/tracking-web" in owned
    assert 'list="f-tags-list"' in field_html(html, "tags")
    repo = field_html(html, "repoUrl")
    assert re.findall(r'<option value="([^"]+)"', repo) == ["greenroom", "github.com"]
    assert "Used when “mode” is &#34;advanced&#34;." in html or "Used when “mode” is \"advanced\"." in html

    form = {"name": "Bad Name", "count": "many", "flavour": "plain", "enabled": "true",
            "notes": "line one\nline two", "dbPassword": "pw-SECRET-93ab", "team": "group:default/platform-core",
            "tags": "alpha, beta", "regions": ["eu", "us"], "repoUrl.host": "greenroom",
            "repoUrl.owner": "tidewater", "repoUrl.repo": "widgets-repo", "mode": "advanced", "depth": ""}
    bad = client.post("/create/templates/default/widgets", data=form)
    assert bad.status_code == 400
    assert "pw-SECRET-93ab" not in bad.text  # a password is never sent back
    assert "field-errors" in field_html(bad.text, "name") and "field-errors" in field_html(bad.text, "count")
    assert "Required" in field_html(bad.text, "depth")  # the chosen branch is validated
    assert 'value="many"' in field_html(bad.text, "count")  # kept as typed
    assert "line one\nline two</textarea>" in bad.text
    assert 'value="alpha, beta"' in bad.text and 'value="widgets-repo"' in bad.text

    ok = client.post("/create/templates/default/widgets", follow_redirects=False,
                     data={**form, "name": "widgets-one", "count": "0", "depth": "3"})
    assert ok.status_code == 303, text_of(ok.text)[:2000]
    task_id = ok.headers["location"].rsplit("/", 1)[1]
    spec = portal.client.get(f"/api/scaffolder/v2/tasks/{task_id}").json()["spec"]
    assert spec["parameters"] == {
        "name": "widgets-one", "count": 0, "flavour": "plain", "enabled": True, "notes": "line one\nline two",
        "team": "group:default/platform-core", "tags": ["alpha", "beta"], "regions": ["eu", "us"],
        "repoUrl": "greenroom?owner=tidewater&repo=widgets-repo", "mode": "advanced", "depth": 3}
    assert "pw-SECRET-93ab" not in str(spec)
    assert wait_task(portal, task_id)["status"] == "completed"
    page = client.get(f"/create/tasks/{task_id}").text
    assert "Ask group:default/platform-core to review widgets-one." in page
    assert "[log] hello widgets-one" in page


def test_task_page_cancel_retry_and_list(portal: Server) -> None:
    client = guest(portal)
    r = client.post("/create/templates/default/widgets", follow_redirects=False,
                    data={"name": "slow", "count": "30", "flavour": "plain", "mode": "simple"})
    task_url = r.headers["location"]
    task_id = task_url.rsplit("/", 1)[1]
    page = client.get(task_url).text
    assert 'data-task="' + task_id in page and "Cancel</button>" in page
    assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in page  # no-JS fallback
    deadline = time.monotonic() + 10
    while "processing" not in client.get(f"/api/scaffolder/v2/tasks/{task_id}").text:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    r = client.post(f"{task_url}/cancel", follow_redirects=True)
    assert "Cancel requested" in r.text
    assert wait_task(portal, task_id)["status"] == "cancelled"
    page = client.get(task_url).text
    assert "The task cancelled" in page and "Retry</button>" in page and "Cancel</button>" not in page
    assert re.search(r'data-step="wait" data-status="cancelled"', page)

    # Retry runs it again; cancel again so the test stays short.
    assert "runs again" in client.post(f"{task_url}/retry", follow_redirects=True).text
    client.post(f"{task_url}/cancel")
    wait_task(portal, task_id)

    portal.client.post("/api/scaffolder/v2/tasks", json={"templateRef": "template:default/widgets",
                                                         "values": {"name": "by-token", "count": 0}})
    mine = client.get("/create/tasks").text
    assert f'href="/create/tasks/{task_id}"' in mine and "Every widget" in mine
    assert mine.count('href="/create/tasks/') == 1
    assert client.get("/create/tasks?owner=all").text.count('href="/create/tasks/') == 2
    assert client.get("/create/tasks/not-a-task").status_code == 404


def test_editor_dry_runs_a_loaded_template_and_points_at_error_lines(demo: Server) -> None:  # noqa: F811
    client = guest(demo)
    loaded = client.get("/create/edit?template=template:default/python-service").text
    text = re.search(r'<textarea id="editor-text"[^>]*>(.*?)</textarea>', loaded, re.DOTALL)
    assert text and "fetch:template" in text.group(1)
    import html as html_lib

    yaml_text = html_lib.unescape(text.group(1))
    values = ('{"name": "dry-one", "description": "d", "owner": "group:default/dock-ops", '
              '"system": "system:default/billing"}')
    ran = client.post("/create/edit", data={"text": yaml_text, "values": values,
                                            "template_ref": "template:default/python-service"})
    assert ran.status_code == 200
    assert "Dry-run finished" in ran.text
    for path in ("catalog-info.yaml", ".github/workflows/ci.yml", "src/dry_one/app.py", "docs/index.md"):
        assert f"<code>{path}</code>" in ran.text
    assert "Skipping because publish:greenroom does not support dry-run" in ran.text
    assert client.get("/api/scaffolder/v2/tasks").json()["totalTasks"] == 0  # nothing stored

    broken = yaml_text.replace("action: catalog:register", "action: catalog:registr")
    line = next(i for i, s in enumerate(broken.splitlines(), 1) if "catalog:registr" in s)
    bad = client.post("/create/edit", data={"text": broken, "values": values,
                                            "template_ref": "template:default/python-service"})
    assert f"line {line}</span>" in bad.text and "unknown action &#39;catalog:registr&#39;" in bad.text
    assert f"Error at line {line}" in bad.text

    pasted = client.post("/create/edit", data={"text": yaml_text, "values": "{not json"})
    assert pasted.status_code == 400 and "values: not valid JSON (line 1" in pasted.text
    no_folder = client.post("/create/edit", data={"text": yaml_text, "values": values})
    assert "a pasted template has no folder" in no_folder.text


def test_validation_errors_keep_the_form_usable(demo: Server) -> None:  # noqa: F811
    r: httpx.Response = guest(demo).post("/create/templates/default/python-service",
                                         data={**VALUES, "name": "", "system": ""})
    assert r.status_code == 400
    assert "Required: enter a value." in field_html(r.text, "name")
    assert "Required: enter a value." in field_html(r.text, "system")
    assert f'value="{VALUES["description"]}"' in r.text
    assert re.search(r'<option value="group:default/dock-ops" selected>', r.text)

