"""Git smart HTTP through the portal, driven by the real git client."""

from __future__ import annotations

import hashlib
import os
import resource
import socket
import time
from pathlib import Path

from tests.forge.conftest import TOKEN, ForgeServer, GitClient, create


def test_clone_push_fetch_round_trip_notifies_listeners(forge: ForgeServer, git: GitClient,
                                                        tmp_path: Path, repo_name: str) -> None:
    created = create(forge, "acme", repo_name, description="Payments")
    assert created["cloneUrl"] == f"{forge.url}/git/acme/{repo_name}.git"
    before = len(forge.pushes)

    work = tmp_path / "work"
    git.run("clone", "-q", forge.git_url("acme", repo_name), str(work))
    sha = git.commit_file(work, "catalog-info.yaml", "kind: Component\n", "first")
    git.run("push", "-q", "origin", "HEAD:main", cwd=work)

    pushes = forge.wait_for_push(before + 1)
    org, repo, updates = pushes[before]
    assert (org, repo) == ("acme", repo_name)
    assert [(u.ref, u.old, u.new) for u in updates] == [("refs/heads/main", None, sha)]

    # A second clone sees the commit; then `git fetch` brings a later push.
    other = tmp_path / "other"
    git.run("clone", "-q", forge.git_url("acme", repo_name), str(other))
    assert (other / "catalog-info.yaml").read_text() == "kind: Component\n"
    second = git.commit_file(work, "docs/index.md", "# Docs\n", "docs")
    git.run("push", "-q", "origin", "HEAD:main", cwd=work)
    git.run("fetch", "-q", "origin", cwd=other)
    assert git.run("rev-parse", "origin/main", cwd=other).stdout.strip() == second
    pushes = forge.wait_for_push(before + 2)
    assert [(u.old, u.new) for u in pushes[before + 1][2]] == [(sha, second)]

    # The repository page data follows the push.
    repo_info = forge.service.get_repository("acme", repo_name)
    assert repo_info.last_commit is not None and repo_info.last_commit.sha == second
    assert repo_info.description == "Payments"


def test_large_push_is_streamed_in_chunks(forge: ForgeServer, git: GitClient, tmp_path: Path,
                                          repo_name: str) -> None:
    create(forge, "acme", repo_name)
    work = tmp_path / "work"
    git.run("clone", "-q", forge.git_url("acme", repo_name), str(work))
    # Written and hashed in pieces, so that this process's peak memory is the server's doing.
    digest = hashlib.sha256()
    with (work / "big.bin").open("wb") as f:
        for _ in range(21):
            piece = os.urandom(1024 * 1024)
            digest.update(piece)
            f.write(piece)
    git.run("add", "big.bin", cwd=work)
    git.run("commit", "-q", "-m", "big file", cwd=work)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    git.run("push", "-q", "origin", "HEAD:main", cwd=work)
    growth_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    # The server runs in this process: had it held the 21 MiB body, the peak would have grown by it.
    assert growth_mib < 10, f"serving the push grew peak memory by {growth_mib:.1f} MiB"

    # git sends packs above http.postBuffer (1 MiB) with chunked transfer encoding, no length.
    pushes = [s for s in forge.seen if s["path"].endswith(f"{repo_name}.git/git-receive-pack")]
    assert any(s["transfer-encoding"] == "chunked" and not s["content-length"] for s in pushes), pushes

    clone = tmp_path / "clone"
    git.run("clone", "-q", forge.git_url("acme", repo_name), str(clone))
    copy = hashlib.sha256()
    with (clone / "big.bin").open("rb") as f:
        while piece := f.read(1024 * 1024):
            copy.update(piece)
    assert copy.hexdigest() == digest.hexdigest()


def test_bearer_token_in_extra_header_works(forge: ForgeServer, git: GitClient, tmp_path: Path,
                                            repo_name: str) -> None:
    create(forge, "acme", repo_name)
    url = forge.git_url("acme", repo_name, token=None)
    header = f"http.extraHeader=Authorization: Bearer {TOKEN}"
    work = tmp_path / "work"
    git.run("-c", header, "clone", "-q", url, str(work))
    git.commit_file(work, "a.txt", "a\n", "a")
    git.run("-c", header, "push", "-q", "origin", "HEAD:main", cwd=work)
    assert forge.service.refs("acme", repo_name).branches.keys() == {"main"}


def test_no_credentials_is_refused_with_a_basic_challenge(forge: ForgeServer, git: GitClient,
                                                          tmp_path: Path, repo_name: str) -> None:
    create(forge, "acme", repo_name)
    proc = git.run("clone", forge.git_url("acme", repo_name, token=None), str(tmp_path / "w"),
                   check=False)
    assert proc.returncode != 0
    assert "could not read Username" in proc.stderr or "Authentication failed" in proc.stderr

    with forge.client(token=None) as c:
        resp = c.get(f"/git/acme/{repo_name}.git/info/refs", params={"service": "git-upload-pack"})
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"].startswith("Basic")
    assert resp.json()["error"]["name"] == "AuthenticationError"


def test_wrong_token_is_refused(forge: ForgeServer, git: GitClient, tmp_path: Path,
                                repo_name: str) -> None:
    create(forge, "acme", repo_name)
    proc = git.run("clone", forge.git_url("acme", repo_name, token="wrong-token-xyz"),
                   str(tmp_path / "w"), check=False)
    assert proc.returncode != 0
    assert "Authentication failed" in proc.stderr
    with forge.client(token="wrong-token-xyz") as c:
        resp = c.get(f"/git/acme/{repo_name}.git/info/refs", params={"service": "git-upload-pack"})
    assert resp.status_code == 401


def test_anonymous_read_when_configured_but_never_anonymous_push(open_forge: ForgeServer, git: GitClient,
                                                                 tmp_path: Path, repo_name: str) -> None:
    create(open_forge, "acme", repo_name)
    seed = tmp_path / "seed"
    git.run("clone", "-q", open_forge.git_url("acme", repo_name), str(seed))
    git.commit_file(seed, "README.md", "# Hello\n", "hello")
    git.run("push", "-q", "origin", "HEAD:main", cwd=seed)

    anon = tmp_path / "anon"
    git.run("clone", "-q", open_forge.git_url("acme", repo_name, token=None), str(anon))
    assert (anon / "README.md").read_text() == "# Hello\n"
    git.commit_file(anon, "x.txt", "x\n", "anonymous change")
    proc = git.run("push", "origin", "HEAD:main", cwd=anon, check=False)
    assert proc.returncode != 0
    assert "could not read Username" in proc.stderr or "Authentication failed" in proc.stderr
    with open_forge.client(token=None) as c:
        resp = c.get(f"/git/acme/{repo_name}.git/info/refs", params={"service": "git-receive-pack"})
    assert resp.status_code == 401
    assert len(open_forge.service.refs("acme", repo_name).branches) == 1


def test_unknown_repository_and_non_smart_paths_are_404(forge: ForgeServer, git: GitClient,
                                                        tmp_path: Path) -> None:
    proc = git.run("clone", forge.git_url("acme", "does-not-exist"), str(tmp_path / "w"), check=False)
    assert proc.returncode != 0
    assert "not found" in proc.stderr.lower()
    with forge.client() as c:
        assert c.get("/git/acme/does-not-exist.git/info/refs",
                     params={"service": "git-upload-pack"}).status_code == 404
        # The dumb protocol and arbitrary files inside the repository are not served.
        assert c.get("/git/acme/does-not-exist.git/config").status_code == 404
        assert c.get("/git/acme/does-not-exist.git/info/refs").status_code == 404


def test_gzip_request_bodies_from_git_are_understood(forge: ForgeServer, git: GitClient,
                                                     tmp_path: Path, repo_name: str) -> None:
    """git gzips fetch requests over 1 KiB: 30 branches at 30 commits make 30 `want` lines."""
    create(forge, "acme", repo_name)
    work = tmp_path / "work"
    git.run("clone", "-q", forge.git_url("acme", repo_name), str(work))
    for i in range(30):
        git.run("commit", "-q", "--allow-empty", "-m", f"c{i}", cwd=work)
        git.run("branch", f"b{i}", cwd=work)
    git.run("push", "-q", "origin", "--all", cwd=work)

    clone = tmp_path / "clone"
    git.run("clone", "-q", "--no-single-branch", forge.git_url("acme", repo_name), str(clone))
    fetches = [s for s in forge.seen if s["path"].endswith(f"{repo_name}.git/git-upload-pack")]
    assert any(s["content-encoding"] == "gzip" for s in fetches), fetches
    branches = git.run("branch", "-r", cwd=clone).stdout
    assert "origin/b29" in branches and "origin/b0" in branches


def _http_backends() -> list[int]:
    """Pids of `git http-backend` processes started by this (the server's) process."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid() and b"http-backend" in cmdline:
            found.append(int(entry.name))
    return found


def test_client_disconnect_mid_push_ends_the_backend(forge: ForgeServer, repo_name: str) -> None:
    create(forge, "acme", repo_name)
    sock = socket.create_connection(("127.0.0.1", forge.port), timeout=10)
    request = (f"POST /git/acme/{repo_name}.git/git-receive-pack HTTP/1.1\r\n"
               f"Host: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
               "Content-Type: application/x-git-receive-pack-request\r\n"
               "Transfer-Encoding: chunked\r\n\r\n")
    # The start of a 160-byte pkt-line, then nothing more: git waits for the rest.
    sock.sendall(request.encode() + b"8\r\n00a00000\r\n")
    deadline = time.time() + 5
    while not _http_backends() and time.time() < deadline:
        time.sleep(0.05)
    assert _http_backends(), "the push never reached git http-backend"
    sock.close()
    deadline = time.time() + 5
    while _http_backends() and time.time() < deadline:
        time.sleep(0.05)
    assert _http_backends() == []


def test_listeners_see_every_ref_a_push_creates_or_deletes(forge: ForgeServer, git: GitClient,
                                                           tmp_path: Path, repo_name: str) -> None:
    create(forge, "acme", repo_name)
    work = tmp_path / "work"
    git.run("clone", "-q", forge.git_url("acme", repo_name), str(work))
    sha = git.commit_file(work, "a.txt", "a\n", "a")
    git.run("tag", "v1", cwd=work)
    before = len(forge.pushes)
    git.run("push", "-q", "origin", "HEAD:main", "HEAD:refs/heads/topic", "v1", cwd=work)
    _org, _repo, updates = forge.wait_for_push(before + 1)[before]
    assert {(u.ref, u.old, u.new) for u in updates} == {
        ("refs/heads/main", None, sha), ("refs/heads/topic", None, sha), ("refs/tags/v1", None, sha)}

    git.run("push", "-q", "origin", "--delete", "topic", cwd=work)
    _org, _repo, updates = forge.wait_for_push(before + 2)[before + 1]
    assert [(u.ref, u.old, u.new) for u in updates] == [("refs/heads/topic", sha, None)]
