"""Exporting a repository tree into a directory (``ForgeService.export``) and the safe tar
extraction under it: real git, real ``git archive``, hand-made hostile tar streams."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from greenroom.core.errors import InputError, NotFoundError
from greenroom.forge.engine.archive import UnsafeArchiveError, extract_tar
from greenroom.forge.service import ForgeService


@pytest.fixture
def service(tmp_path: Path) -> ForgeService:
    return ForgeService(tmp_path / "git", base_url="http://portal.test:7007")


def commit_tree(service: ForgeService, tmp_path: Path, files: dict[str, str], links: dict[str, str] | None = None,
                executable: tuple[str, ...] = (), branch: str = "main", repo: str = "tpl") -> str:
    if not service.exists("acme", repo):
        service.create_repository("acme", repo)
    work = tmp_path / f"src-{repo}-{branch.replace('/', '-')}"
    work.mkdir()
    for name, text in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)
    for name in executable:
        os.chmod(work / name, 0o755)
    for name, target in (links or {}).items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, work / name)
    return service.push_directory("acme", repo, work, "content", None, branch).new


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_export_writes_the_tree_at_a_ref(service: ForgeService, tmp_path: Path) -> None:
    first = commit_tree(service, tmp_path, {"templates/a/template.yaml": "kind: Template\n",
                                           "templates/a/skeleton/run.sh": "#!/bin/sh\n",
                                           "skeletons/shared/README.md": "shared v1\n"},
                        links={"templates/a/skeleton/docs": "../../../skeletons/shared"},
                        executable=("templates/a/skeleton/run.sh",), branch="release/1.x")
    dest = tmp_path / "out"
    commit = service.export("acme", "tpl", "release/1.x", dest)
    assert commit == first
    assert (dest / "skeletons/shared/README.md").read_text() == "shared v1\n"
    assert os.stat(dest / "templates/a/skeleton/run.sh").st_mode & stat.S_IXUSR
    # a link staying inside the export is kept as a link, and it works
    assert os.readlink(dest / "templates/a/skeleton/docs") == "../../../skeletons/shared"
    assert (dest / "templates/a/skeleton/docs/README.md").read_text() == "shared v1\n"

    sub = tmp_path / "sub"
    assert service.export("acme", "tpl", first, sub, "skeletons") == first
    assert listing(sub) == ["shared", "shared/README.md"]


def test_export_refuses_a_link_out_of_the_tree_and_leaves_nothing(service: ForgeService, tmp_path: Path) -> None:
    commit_tree(service, tmp_path, {"template.yaml": "x\n"}, links={"skeleton/passwd": "../../../../etc/passwd"})
    dest = tmp_path / "out"
    with pytest.raises(InputError) as e:
        service.export("acme", "tpl", "main", dest)
    assert "acme/tpl at main" in e.value.message
    assert "'skeleton/passwd' is a symbolic link pointing outside" in e.value.message
    assert not dest.exists()

    commit_tree(service, tmp_path, {"template.yaml": "x\n"}, links={"abs": "/etc/passwd"}, repo="abs")
    with pytest.raises(InputError, match="symbolic link to the absolute path '/etc/passwd'"):
        service.export("acme", "abs", "main", dest)
    assert not dest.exists()


def test_export_bounds_files_and_bytes(service: ForgeService, tmp_path: Path) -> None:
    commit_tree(service, tmp_path, {f"f{i}.txt": "x" * 1000 for i in range(5)})
    with pytest.raises(InputError, match="more than 3 entries"):
        service.export("acme", "tpl", "main", tmp_path / "a", max_files=3)
    with pytest.raises(InputError, match="more than 2500 bytes"):
        service.export("acme", "tpl", "main", tmp_path / "b", max_bytes=2500)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    service.export("acme", "tpl", "main", tmp_path / "c", max_files=5, max_bytes=5000)
    assert len(listing(tmp_path / "c")) == 5


def test_export_errors_name_what_is_wrong(service: ForgeService, tmp_path: Path) -> None:
    service.create_repository("acme", "empty")
    with pytest.raises(NotFoundError, match="empty, push a commit first"):
        service.export("acme", "empty", "main", tmp_path / "x")
    commit_tree(service, tmp_path, {"dir/file.txt": "hi\n"})
    with pytest.raises(NotFoundError, match="no branch, tag or commit 'nope'"):
        service.export("acme", "tpl", "nope", tmp_path / "x")
    with pytest.raises(NotFoundError, match="'missing' does not exist"):
        service.export("acme", "tpl", "main", tmp_path / "x", "missing")
    with pytest.raises(InputError, match="is a file"):
        service.export("acme", "tpl", "main", tmp_path / "x", "dir/file.txt")
    with pytest.raises(InputError, match="not a plain path"):
        service.export("acme", "tpl", "main", tmp_path / "x", "../..")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="not an empty directory"):
        service.export("acme", "tpl", "main", busy)
    assert (busy / "keep.txt").read_text() == "mine"


# -- the extraction helper on hostile streams -------------------------------------------------

def tar_stream(*members: tuple[tarfile.TarInfo, bytes | None]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    buf.seek(0)
    return buf


def file_member(name: str) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), b"payload"


def link_member(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


@pytest.mark.parametrize("members, reason", [
    ([file_member("../evil.txt")], "climbs out with '..'"),
    ([file_member("ok/../../evil.txt")], "climbs out with '..'"),
    ([file_member("/tmp/evil.txt")], "absolute path"),
    ([link_member("up", "../outside")], "symbolic link pointing outside"),
    ([link_member("abs", "/etc")], "symbolic link to the absolute path"),
    ([link_member("dir/l", "../../outside")], "symbolic link pointing outside"),
    ([link_member("inside", "."), link_member("inside/up", "..")], "symbolic link pointing outside"),
    ([link_member("hard", "/etc/passwd", tarfile.LNKTYPE)], "hard link"),
    ([link_member("fifo", "", tarfile.FIFOTYPE)], "device or FIFO"),
])
def test_extraction_refuses_members_escaping_the_directory(tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]],
                                                         reason: str) -> None:
    dest = tmp_path / "export" / "root"
    with pytest.raises(UnsafeArchiveError, match=reason):
        extract_tar(tar_stream(*members), dest, max_bytes=10_000, max_files=100)
    # nothing landed beside or above the export directory
    assert listing(tmp_path) in (["export", "export/root"], ["export", "export/root", "export/root/inside"])


def test_extraction_refuses_writing_through_an_inside_link_that_points_out_later(tmp_path: Path) -> None:
    # `a` points inside when written; a file `a/x` must still not leave the directory
    dest = tmp_path / "root"
    stream = tar_stream(link_member("a", "sub"), link_member("sub", "../.."), file_member("a/x"))
    with pytest.raises(UnsafeArchiveError, match="'sub' is a symbolic link pointing outside"):
        extract_tar(stream, dest, max_bytes=10_000, max_files=100)
    assert not (tmp_path.parent / "x").exists()


def test_extraction_keeps_files_and_inside_links(tmp_path: Path) -> None:
    dest = tmp_path / "root"
    stats = extract_tar(tar_stream(file_member("dir/a.txt"), link_member("dir/b.txt", "a.txt")), dest,
                        max_bytes=100, max_files=10)
    assert stats.files == 2 and stats.bytes == len(b"payload")
    assert (dest / "dir/b.txt").read_bytes() == b"payload"
