"""The REST API at /api/forge and raw file URLs, on a real server."""

from __future__ import annotations

import base64
import http.client
from pathlib import Path

import pytest

from greenroom.forge.model import Author
from tests.forge.conftest import TOKEN, ForgeServer, create


@pytest.fixture
def seeded(forge: ForgeServer, repo_name: str, tmp_path: Path) -> str:
    """A repository with two commits on main and one on the branch feature/x."""
    create(forge, "acme", repo_name, description="Seeded", defaultBranch="main")
    src = tmp_path / "src"
    (src / "docs").mkdir(parents=True)
    (src / "README.md").write_text("# Seeded\n\nHello.\n")
    (src / "docs" / "index.md").write_text("# Docs\n")
    (src / "logo.bin").write_bytes(b"\x89PNG\x00\x01\x02")
    (src / "big.txt").write_text("x" * (100 * 1024))  # above the test server's 64 KiB blob cap
    forge.service.push_directory("acme", repo_name, src, "initial", Author("Bob", "bob@example.com"))
    (src / "docs" / "more.md").write_text("more\n")
    forge.service.push_directory("acme", repo_name, src, "more docs")
    (src / "feature.txt").write_text("feature\n")
    forge.service.push_directory("acme", repo_name, src, "feature work", branch="feature/x")
    return repo_name


def test_create_list_and_get(forge: ForgeServer, repo_name: str) -> None:
    body = create(forge, "acme", repo_name, description="Billing service", defaultBranch="trunk")
    assert body["cloneUrl"] == f"{forge.url}/git/acme/{repo_name}.git"
    assert body["webUrl"].endswith(f"/forge/acme/{repo_name}")
    assert body["defaultBranch"] == "trunk" and body["empty"] is True and body["lastCommit"] is None
    with forge.client() as c:
        again = c.post("/api/forge/repositories", json={"org": "acme", "name": repo_name})
        assert again.status_code == 409
        listed = c.get("/api/forge/repositories").json()["items"]
        mine = [r for r in listed if r["name"] == repo_name]
        assert mine and mine[0]["description"] == "Billing service"
        assert c.get(f"/api/forge/repositories/acme/{repo_name}").json()["defaultBranch"] == "trunk"
        missing = c.get("/api/forge/repositories/acme/nope")
        assert missing.status_code == 404
        assert missing.json()["error"]["name"] == "NotFoundError"


@pytest.mark.parametrize("body, field", [
    ({"org": "Acme", "name": "x"}, "org"),
    ({"org": "acme", "name": "x.git"}, "repository"),
    ({"org": "acme", "name": "a..b"}, "repository"),
    ({"org": "acme", "name": "../etc"}, "repository"),
    ({"org": "acme", "name": ".hidden"}, "repository"),
    ({"org": "acme", "name": "ok", "defaultBranch": "bad..branch"}, "defaultBranch"),
    ({"org": "acme", "name": "ok2", "defaultBranch": "-x"}, "defaultBranch"),
])
def test_create_refuses_bad_names(forge: ForgeServer, body: dict[str, str], field: str) -> None:
    with forge.client() as c:
        resp = c.post("/api/forge/repositories", json=body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["message"].startswith(f"{field}:")
    assert not (forge.service.root / "etc.git").exists()


def test_api_needs_credentials(forge: ForgeServer) -> None:
    with forge.client(token=None) as c:
        assert c.get("/api/forge/repositories").status_code == 401


def test_tree_blob_readme_and_last_commit(forge: ForgeServer, seeded: str) -> None:
    base = f"/api/forge/repositories/acme/{seeded}"
    with forge.client() as c:
        repo = c.get(base).json()
        assert repo["lastCommit"]["summary"] == "more docs" and repo["empty"] is False

        root = c.get(f"{base}/tree/main").json()
        assert [(e["name"], e["type"]) for e in root["entries"]] == [
            ("docs", "tree"), ("README.md", "blob"), ("big.txt", "blob"), ("logo.bin", "blob")]
        docs = c.get(f"{base}/tree/main/docs").json()
        assert [e["path"] for e in docs["entries"]] == ["docs/index.md", "docs/more.md"]

        readme = c.get(f"{base}/blob/main/README.md").json()
        assert readme["encoding"] == "utf-8" and readme["content"] == "# Seeded\n\nHello.\n"
        logo = c.get(f"{base}/blob/main/logo.bin").json()
        assert logo["binary"] is True and base64.b64decode(logo["content"]) == b"\x89PNG\x00\x01\x02"
        big = c.get(f"{base}/blob/main/big.txt").json()
        assert big["truncated"] is True and big["content"] is None and big["size"] == 100 * 1024

        assert c.get(f"{base}/readme").json()["markdown"] == "# Seeded\n\nHello.\n"
        assert c.get(f"{base}/readme", params={"ref": "feature/x"}).json()["path"] == "README.md"
        assert c.get(f"{base}/blob/main/nope.md").status_code == 404
        assert c.get(f"{base}/tree/main/README.md").status_code == 400
        assert c.get(f"{base}/tree/no-such-branch").status_code == 404


def test_refs_with_slashes_and_commit_ids(forge: ForgeServer, seeded: str) -> None:
    base = f"/api/forge/repositories/acme/{seeded}"
    with forge.client() as c:
        tree = c.get(f"{base}/tree/feature/x").json()
        assert tree["ref"] == "feature/x"
        assert "feature.txt" in [e["name"] for e in tree["entries"]]
        assert c.get(f"{base}/blob/feature/x/feature.txt").json()["content"] == "feature\n"
        first = c.get(f"{base}/commits", params={"ref": "main"}).json()["items"][-1]["sha"]
        old = c.get(f"{base}/tree/{first}/docs").json()
        assert [e["name"] for e in old["entries"]] == ["index.md"]
        assert c.get(f"{base}/refs").json()["branches"].keys() == {"main", "feature/x"}


def test_commits_are_paged(forge: ForgeServer, seeded: str) -> None:
    base = f"/api/forge/repositories/acme/{seeded}"
    with forge.client() as c:
        page1 = c.get(f"{base}/commits", params={"ref": "feature/x", "limit": 2}).json()
        assert [i["summary"] for i in page1["items"]] == ["feature work", "more docs"]
        cursor = page1["pageInfo"]["nextCursor"]
        assert cursor
        page2 = c.get(f"{base}/commits", params={"limit": 2, "cursor": cursor}).json()
        assert [i["summary"] for i in page2["items"]] == ["initial"]
        assert page2["items"][0]["author"]["name"] == "Bob"
        assert page2["pageInfo"]["nextCursor"] is None
        assert c.get(f"{base}/commits", params={"cursor": "garbage"}).status_code == 400
        history = c.get(f"{base}/commits", params={"path": "docs/more.md"}).json()["items"]
        assert [i["summary"] for i in history] == ["more docs"]


def test_raw_urls_serve_files_and_the_service_reads_them_without_http(forge: ForgeServer,
                                                                        seeded: str) -> None:
    url = forge.service.raw_url("acme", seeded, "main", "docs/index.md")
    assert url == f"{forge.url}/git/acme/{seeded}/raw/main/docs/index.md"
    with forge.client() as c:
        resp = c.get(url)
        assert resp.status_code == 200 and resp.text == "# Docs\n"
        assert resp.headers["content-type"].startswith("text/plain")
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert c.get(f"{forge.url}/git/acme/{seeded}/raw/feature/x/feature.txt").text == "feature\n"
        api_raw = c.get(f"/api/forge/repositories/acme/{seeded}/raw/main/docs/index.md")
        assert api_raw.text == "# Docs\n"
    with forge.client(token=None) as anon:
        assert anon.get(url).status_code == 401
    assert forge.service.read_url(url) == b"# Docs\n"
    assert forge.service.read_file("acme", seeded, "main", "README.md").startswith(b"# Seeded")
    assert forge.service.read_url("https://github.com/acme/x/blob/main/a.yaml") is None


def _raw_get(forge: ForgeServer, path: str) -> int:
    """Send ``path`` byte for byte (HTTP clients would normalise the dot segments away)."""
    conn = http.client.HTTPConnection("127.0.0.1", forge.port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        conn.putheader("Authorization", f"Bearer {TOKEN}")
        conn.endheaders()
        return conn.getresponse().status
    finally:
        conn.close()


@pytest.mark.parametrize("template", [
    "/api/forge/repositories/acme/{repo}/blob/main/../../../../etc/passwd",
    "/api/forge/repositories/acme/{repo}/blob/main/%2e%2e/%2e%2e/HEAD",
    "/api/forge/repositories/acme/{repo}/tree/main/docs/%2E%2E",
    "/api/forge/repositories/acme/{repo}/blob/main/docs/./index.md",
    "/api/forge/repositories/%2e%2e/{repo}",
    "/api/forge/repositories/acme/%2e%2e%2f%2e%2e",
    "/git/acme/{repo}/raw/main/..%2f..%2fconfig",
    "/git/acme/{repo}/raw/main/../../config",
    "/git/%2e%2e/{repo}.git/info/refs?service=git-upload-pack",
    "/git/acme/%2e%2e.git/info/refs?service=git-upload-pack",
    "/git/acme/{repo}.git/../../HEAD",
    "/git/acme/{repo}.git/%2e%2e/config",
])
def test_path_traversal_is_refused(forge: ForgeServer, seeded: str, template: str) -> None:
    status = _raw_get(forge, template.format(repo=seeded))
    assert status in (400, 404), status


def test_traversal_messages_name_the_fix(forge: ForgeServer, seeded: str) -> None:
    with forge.client() as c:
        resp = c.get(f"/api/forge/repositories/acme/{seeded}/blob/main/docs%2F%2E%2E%2FREADME.md")
    assert resp.status_code == 400
    assert "remove '.', '..' and empty segments" in resp.json()["error"]["message"]
