"""The forge's pages on a real portal (SQLite) with a repository pushed by the real git client:
repository list, repository home with a sanitized README, directories, files, commit log, the
"New repository" form, and 404s for every path that tries to leave the repository."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import TOKEN, Server, make_settings
from tests.forge.conftest import GitClient

ORG, REPO = "acme", "site"
EXTRA_COMMITS = 34  # with the 3 content commits: two pages of 30

README = """# Hello forge

Read the [guide](docs/guide.md) or the [source](src/).

<script>document.title = "pwned"</script>
<img src="x.png" onerror="alert(1)">
[click me](javascript:alert(2))
<a href="#" onclick="alert(3)">anchor</a>

| a | b |
|---|---|
| 1 | 2 |
"""

APP_PY = 'def greet(name: str) -> str:\n    """Say hello."""\n    return f"hello {name}"\n'


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A portal with acme/site: README, docs/, src/, a binary, a 1.2 MB file, a feature branch
    whose name has a slash, and 37 commits on main."""
    tmp = tmp_path_factory.mktemp("forge-pages")
    server = Server(make_settings(tmp, {"client": "sqlite", "connection": str(tmp / "g.db")}),
                    run_workers=False)
    try:
        r = server.client.post("/api/forge/repositories",
                               json={"org": ORG, "name": REPO, "description": "The <b>public</b> site"})
        assert r.status_code == 201, r.text
        git = GitClient(tmp / "git-home")
        work = tmp / "work"
        work.mkdir()
        git.run("init", "-q", "-b", "main", cwd=work)
        git.commit_file(work, "README.md", README, "Add README")
        git.commit_file(work, "docs/guide.md", "# Guide\n\nSteps.\n", "Add guide")
        (work / "src").mkdir()
        (work / "src" / "app.py").write_text(APP_PY)
        (work / "logo.bin").write_bytes(b"\x89PNG\0\0\x01binary")
        (work / "big.txt").write_text("x" * 99 + "\n" * 1 + ("y" * 99 + "\n") * 12_000)
        git.run("add", ".", cwd=work)
        git.run("commit", "-q", "-m", "Add app, logo and a big file", cwd=work)
        for i in range(EXTRA_COMMITS):
            git.run("commit", "-q", "--allow-empty", "-m", f"Tweak {i}", cwd=work)
        git.run("checkout", "-q", "-b", "feature/x", cwd=work)
        git.commit_file(work, "feature.txt", "only on the branch\n", "Feature work")
        remote = f"http://tests:{TOKEN}@127.0.0.1:{server.port}/git/{ORG}/{REPO}.git"
        git.run("push", "-q", remote, "main", "feature/x", cwd=work)
        yield server
    finally:
        server.stop()


def page(server: Server, path: str, **kw: Any) -> httpx.Response:
    return server.client.get(path, **kw)


def test_pages_need_sign_in(site: Server) -> None:
    r = site.anonymous.get(f"/forge/{ORG}/{REPO}")
    assert r.status_code == 303
    assert r.headers["location"].startswith("/signin?next=%2Fforge%2Facme%2Fsite")


def test_repository_list(site: Server) -> None:
    r = page(site, "/forge")
    assert r.status_code == 200
    html = r.text
    assert f'href="/forge/{ORG}/{REPO}"' in html
    assert "The &lt;b&gt;public&lt;/b&gt; site" in html  # description is text, not markup
    assert "<code>main</code>" in html
    assert "Feature work" not in html and "Tweak 33" in html  # last commit of the default branch
    clone = f"http://127.0.0.1:{site.port}/git/{ORG}/{REPO}.git"
    assert f'data-copy="{clone}"' in html and f'value="{clone}"' in html
    assert '<script src="/forge/-/forge.js" defer></script>' in html
    js = page(site, "/forge/-/forge.js")
    assert js.status_code == 200 and "clipboard" in js.text


def test_repository_home_tree_and_clone_instructions(site: Server) -> None:
    html = page(site, f"/forge/{ORG}/{REPO}").text
    base = f"/forge/{ORG}/{REPO}"
    for link in (f"{base}/tree/main/docs", f"{base}/tree/main/src", f"{base}/blob/main/README.md",
                 f"{base}/blob/main/logo.bin"):
        assert f'href="{link}"' in html, link
    assert f"git clone http://127.0.0.1:{site.port}/git/{ORG}/{REPO}.git" in html
    assert "access token as the password" in html
    assert f'href="{base}/tree/feature/x"' in html  # branch list, slash kept readable


def test_readme_is_rendered_and_sanitized(site: Server) -> None:
    html = page(site, f"/forge/{ORG}/{REPO}").text
    readme = html.split('<div class="markdown">', 1)[1].split("</section>", 1)[0]
    assert "<h1>Hello forge</h1>" in readme
    assert "<table>" in readme and "<td>2</td>" in readme
    assert f'href="/forge/{ORG}/{REPO}/blob/main/docs/guide.md"' in readme  # relative link rewritten
    lowered = readme.lower()
    for bad in ("<script", "pwned", "onerror", "onclick", "javascript:"):
        assert bad not in lowered, bad
    assert "anchor" in readme  # the link's text survives, its handler does not


def test_directory_and_branch_with_slash(site: Server) -> None:
    html = page(site, f"/forge/{ORG}/{REPO}/tree/main/docs").text
    assert f'href="/forge/{ORG}/{REPO}/blob/main/docs/guide.md"' in html
    assert "README.md" not in html
    feature = page(site, f"/forge/{ORG}/{REPO}/tree/feature/x").text
    assert f'href="/forge/{ORG}/{REPO}/blob/feature/x/feature.txt"' in feature
    assert "feature.txt" not in page(site, f"/forge/{ORG}/{REPO}/tree/main").text
    # A file under /tree/ and a directory under /blob/ lead to the right page.
    r = page(site, f"/forge/{ORG}/{REPO}/tree/main/src/app.py")
    assert r.status_code == 303 and r.headers["location"] == f"/forge/{ORG}/{REPO}/blob/main/src/app.py"
    r = page(site, f"/forge/{ORG}/{REPO}/blob/main/docs")
    assert r.status_code == 303 and r.headers["location"] == f"/forge/{ORG}/{REPO}/tree/main/docs"


def test_file_with_line_numbers_highlighting_and_raw_link(site: Server) -> None:
    html = page(site, f"/forge/{ORG}/{REPO}/blob/main/src/app.py").text
    assert html.count('<tr id="L') == 3 and 'href="#L3"' in html
    assert 'class="tok-k">def</span>' in html  # Pygments colours Python
    raw = f"http://127.0.0.1:{site.port}/git/{ORG}/{REPO}/raw/main/src/app.py"
    assert f'href="{raw}"' in html
    assert site.client.get(raw).text == APP_PY
    # The README's source is shown as escaped text, never as markup.
    source = page(site, f"/forge/{ORG}/{REPO}/blob/main/README.md").text
    assert "&lt;script&gt;document.title" in source and "<script>document" not in source


def test_binary_and_too_large_files_are_not_shown(site: Server) -> None:
    binary = page(site, f"/forge/{ORG}/{REPO}/blob/main/logo.bin").text
    assert "binary file" in binary and 'id="L1"' not in binary
    big = page(site, f"/forge/{ORG}/{REPO}/blob/main/big.txt").text
    assert "too large to show" in big and 'id="L1"' not in big
    assert f"/git/{ORG}/{REPO}/raw/main/big.txt" in big


def test_commit_log_pages(site: Server) -> None:
    first = page(site, f"/forge/{ORG}/{REPO}/commits").text
    summaries = re.findall(r'class="commit-summary"[^>]*>([^<]+)<', first)
    assert len(summaries) == 30 and summaries[0] == f"Tweak {EXTRA_COMMITS - 1}"
    older = re.search(r'href="([^"]+)" rel="next"', first)
    assert older is not None
    second = page(site, older.group(1).replace("&amp;", "&")).text
    rest = re.findall(r'class="commit-summary"[^>]*>([^<]+)<', second)
    assert rest[-1] == "Add README" and len(rest) == 3 + EXTRA_COMMITS - 30
    assert 'rel="next"' not in second
    feature = page(site, f"/forge/{ORG}/{REPO}/commits", params={"ref": "feature/x"}).text
    assert re.findall(r'class="commit-summary"[^>]*>([^<]+)<', feature)[0] == "Feature work"


@pytest.mark.parametrize("path", [
    f"/forge/{ORG}/{REPO}/blob/main/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    f"/forge/{ORG}/{REPO}/blob/main/docs/%2e%2e%2f%2e%2e%2fconfig",
    f"/forge/{ORG}/{REPO}/tree/main/docs/%2e%2e",
    f"/forge/{ORG}/{REPO}/tree/main/a%00b",
    f"/forge/{ORG}/{REPO}/blob/main/nope.txt",
    f"/forge/{ORG}/{REPO}/blob/no-such-branch/README.md",
    f"/forge/{ORG}/%2e%2e",
    f"/forge/%2e%2e/{REPO}",
    f"/forge/{ORG}/site.git",
    f"/forge/{ORG}/missing",
    f"/forge/{ORG}/{REPO}/commits?ref=%2e%2e",
    f"/forge/{ORG}/{REPO}/commits?cursor=bogus",
])
def test_bad_paths_are_404_pages(site: Server, path: str) -> None:
    r = page(site, path)
    assert r.status_code == 404, (path, r.status_code)
    assert "Page not found" in r.text and "root:" not in r.text


def test_new_repository_form(site: Server) -> None:
    form = page(site, "/forge/new").text
    assert 'action="/forge/new"' in form and 'name="default_branch"' in form
    data = {"org": ORG, "name": "fresh", "description": "Brand new", "default_branch": "trunk"}
    cross = site.client.post("/forge/new", data=data, headers={"origin": "https://evil.example"})
    assert cross.status_code == 403
    assert site.client.get("/api/forge/repositories/acme/fresh").status_code == 404
    origin = {"origin": site.url}
    r = site.client.post("/forge/new", data=data, headers=origin)
    assert r.status_code == 303 and r.headers["location"] == "/forge/acme/fresh"
    empty = page(site, "/forge/acme/fresh").text
    assert "This repository is empty" in empty and "git push -u origin trunk" in empty
    assert "Brand new" in page(site, "/forge").text
    again = site.client.post("/forge/new", data=data, headers=origin)
    assert again.status_code == 409 and "already exists" in again.text
    bad = site.client.post("/forge/new", data={**data, "name": "../escape"}, headers=origin)
    assert bad.status_code == 400 and "is not a valid name" in bad.text
    assert 'value="../escape"' in bad.text  # the form keeps what was typed


def test_empty_repository_commits_page(site: Server) -> None:
    site.client.post("/api/forge/repositories", json={"org": ORG, "name": "hollow"})
    r = page(site, "/forge/acme/hollow/commits")
    assert r.status_code == 200 and "No commits yet" in r.text


ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "forge"
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


@pytest.mark.browser
def test_browser_repository_page_and_file(site: Server) -> None:
    """Sign in with a token, open the repository, copy its clone URL, open a file from the tree,
    jump to a line; the README's script never runs. Screenshots in test-artifacts/forge/."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (/usr/bin/chromium)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            ctx = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=site.url)
            ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
            page = ctx.new_page()
            errors: list[str] = []
            dialogs: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(f"/forge/{ORG}/{REPO}")
            assert "/signin" in page.url
            page.get_by_label("Access token").fill(TOKEN)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"**/forge/{ORG}/{REPO}")
            assert page.get_by_role("heading", name="Hello forge").is_visible()
            assert page.title() != "pwned" and dialogs == []
            page.locator(".forge-head").get_by_role("button", name=re.compile("Copy clone URL")).click()
            page.get_by_text("Copied").first.wait_for(timeout=5000)
            clone = f"http://127.0.0.1:{site.port}/git/{ORG}/{REPO}.git"
            assert page.evaluate("navigator.clipboard.readText()") == clone
            page.screenshot(path=str(ARTIFACTS / "repository.png"), full_page=True)
            page.locator("table.forge-tree").get_by_role("link", name="src/").click()
            page.wait_for_url(f"**/forge/{ORG}/{REPO}/tree/main/src")
            page.get_by_role("link", name="app.py").click()
            page.wait_for_url(f"**/forge/{ORG}/{REPO}/blob/main/src/app.py")
            assert page.locator("#L1 td.lc").inner_text().startswith("def greet(name: str)")
            page.get_by_label("Line 3").click()
            assert page.url.endswith("#L3")
            assert page.locator("#L3").evaluate("e => getComputedStyle(e).backgroundColor") != "rgba(0, 0, 0, 0)"
            page.screenshot(path=str(ARTIFACTS / "file.png"), full_page=True)
            page.goto("/forge")
            page.screenshot(path=str(ARTIFACTS / "list.png"), full_page=True)
            assert errors == []
        finally:
            browser.close()
