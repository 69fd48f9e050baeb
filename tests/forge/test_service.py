"""ForgeService without HTTP: names, commits made by the portal, listeners, reading by URL."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from greenroom.core.errors import ConflictError, InputError, NotFoundError
from greenroom.forge.model import Author, RefUpdate, check_name, check_path
from greenroom.forge.service import ForgeService


@pytest.fixture
def service(tmp_path: Path) -> ForgeService:
    return ForgeService(tmp_path / "git", base_url="http://portal.test:7007/",
                        web_base_url="http://portal.test:3000")


@pytest.mark.parametrize("name", ["a", "payments", "my.repo_2-x", "0day"])
def test_valid_names(name: str) -> None:
    assert check_name(name, "repository") == name


@pytest.mark.parametrize("name", ["", "A", "-x", ".x", "_x", "a/b", "a..b", "..", "x.git", "x.lock",
                                  "a b", "é", "a" * 101, "a\x00"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(InputError) as e:
        check_name(name, "repository")
    assert e.value.message.startswith("repository:")


@pytest.mark.parametrize("path, expected", [("", ""), ("/", ""), ("a/b.md", "a/b.md"),
                                            ("/docs/", "docs"), ("a/.b/c..d", "a/.b/c..d")])
def test_paths_are_normalised(path: str, expected: str) -> None:
    assert check_path(path) == expected


@pytest.mark.parametrize("path", ["..", "a/../b", "a/./b", "a//b", "a/\nb", "a\x00", "./a"])
def test_paths_that_could_escape_are_refused(path: str) -> None:
    with pytest.raises(InputError):
        check_path(path)


def test_repositories_live_under_the_root_as_bare_git(service: ForgeService) -> None:
    repo = service.create_repository("acme", "pay", "Payments", "main")
    path = service.root / "acme" / "pay.git"
    out = subprocess.run(["git", f"--git-dir={path}", "rev-parse", "--is-bare-repository"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "true"
    assert repo.clone_url == "http://portal.test:7007/git/acme/pay.git"
    assert repo.web_url == "http://portal.test:3000/forge/acme/pay"
    assert [r.name for r in service.list_repositories()] == ["pay"]
    assert service.list_repositories("other") == []


def test_concurrent_creation_lets_exactly_one_win(service: ForgeService) -> None:
    outcomes: list[str] = []

    def attempt() -> None:
        try:
            service.create_repository("acme", "race")
            outcomes.append("created")
        except ConflictError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict"] * 3 + ["created"]


def test_push_directory_commits_notifies_and_honours_gitignore(service: ForgeService,
                                                               tmp_path: Path) -> None:
    service.create_repository("acme", "svc")
    calls: list[tuple[str, str, list[RefUpdate]]] = []

    def broken(org: str, repo: str, updates: list[RefUpdate]) -> None:
        raise RuntimeError("a buggy listener")

    service.add_push_listener(broken)
    service.add_push_listener(lambda o, r, u: calls.append((o, r, u)))
    src = tmp_path / "skeleton"
    (src / "node_modules").mkdir(parents=True)
    (src / "node_modules" / "junk.js").write_text("junk")
    (src / ".gitignore").write_text("node_modules/\n")
    (src / "catalog-info.yaml").write_text("kind: Component\n")

    first = service.push_directory("acme", "svc", src, "Initial commit",
                                   Author("Scaffolder", "scaffolder@example.com"))
    assert first.old is None and first.ref == "refs/heads/main"
    assert calls == [("acme", "svc", [first])]  # the buggy listener did not stop the next one
    names = {e.name for e in service.tree("acme", "svc", "main").entries}
    assert names == {".gitignore", "catalog-info.yaml"}
    commit = service.commit("acme", "svc", first.new or "")
    assert (commit.author_name, commit.committer_name) == ("Scaffolder", "Greenroom")

    (src / "catalog-info.yaml").unlink()
    second = service.push_directory("acme", "svc", src, "Remove catalog file")
    assert second.old == first.new
    assert {e.name for e in service.tree("acme", "svc", None).entries} == {".gitignore"}
    assert service.read_file("acme", "svc", first.new, "catalog-info.yaml") == b"kind: Component\n"


def test_push_directory_refuses_bad_input(service: ForgeService, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        service.push_directory("acme", "missing", tmp_path, "x")
    service.create_repository("acme", "svc")
    with pytest.raises(InputError):
        service.push_directory("acme", "svc", tmp_path / "nope", "x")
    with pytest.raises(InputError):
        service.push_directory("acme", "svc", tmp_path, "x", branch="bad..name")


def test_reading_an_empty_repository_says_so(service: ForgeService) -> None:
    service.create_repository("acme", "empty")
    with pytest.raises(NotFoundError) as e:
        service.tree("acme", "empty", None)
    assert "empty" in e.value.message
    assert service.get_repository("acme", "empty").empty


def test_raw_urls_round_trip(service: ForgeService, tmp_path: Path) -> None:
    url = service.raw_url("acme", "svc", "feature/x", "docs/a b.md")
    assert url == "http://portal.test:7007/git/acme/svc/raw/feature/x/docs/a%20b.md"
    loc = service.parse_raw_url(url)
    assert loc is not None and (loc.org, loc.repo, loc.ref_and_path) == ("acme", "svc",
                                                                         "feature/x/docs/a b.md")
    web = service.parse_raw_url("http://portal.test:3000/forge/acme/svc/blob/main/catalog-info.yaml")
    assert web is not None and web.ref_and_path == "main/catalog-info.yaml"
    assert service.parse_raw_url("http://elsewhere.test:7007/git/acme/svc/raw/main/x") is None
    assert service.read_url("https://github.com/a/b/blob/main/x.yaml") is None
