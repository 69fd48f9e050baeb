"""LocalStorage on disk and S3Storage against a real S3-compatible server (moto_server)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from greenroom.core.errors import InputError, NotFoundError
from greenroom.techdocs.engine.s3 import S3Storage, sign_v4
from greenroom.techdocs.engine.storage import DocsStorage, LocalStorage
from greenroom.techdocs.model import EntityTriple

TRIPLE = EntityTriple("default", "Component", "Shop")


def _site(root: Path, marker: str) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "index.html").write_text(f"<h1>{marker}</h1>")
    (root / "sub/index.html").write_text("<p>sub</p>")
    (root / "img.svg").write_text("<svg/>")
    (root / f"only-{marker}.txt").write_text(marker)
    (root / "techdocs_metadata.json").write_text('{"site_name": "x"}')
    return root


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    # moto pins python-dateutil < 3 (kubernetes needs >= 3), so CI may keep it in its own venv
    # and point GREENROOM_MOTO_SERVER at that venv's moto_server.
    exe = (os.environ.get("GREENROOM_MOTO_SERVER")
           or shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server"))
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("moto_server is required in CI (set GREENROOM_MOTO_SERVER)")
        pytest.skip("moto_server (pip install 'moto[server]') is not installed; S3Storage untested")
    port = _free_port()
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(10)


def _storages(kind: str, tmp_path: Path, endpoint: str | None) -> DocsStorage:
    if kind == "local":
        return LocalStorage(tmp_path / "store")
    assert endpoint
    s3 = S3Storage(endpoint, "techdocs", access_key="testing", secret_key="testing", prefix="sites")
    s3.create_bucket()
    return s3


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> DocsStorage:
    endpoint = request.getfixturevalue("s3_endpoint") if request.param == "s3" else None
    return _storages(request.param, tmp_path, endpoint)


def test_put_get_replace_delete(storage: DocsStorage, tmp_path: Path) -> None:
    assert not storage.has_site(TRIPLE)
    files = storage.put_site(TRIPLE, _site(tmp_path / "a", "first"))
    assert "sub/index.html" in files
    assert storage.has_site(TRIPLE)
    body, ctype = storage.get_file(TRIPLE, "index.html")
    assert body == b"<h1>first</h1>" and ctype.startswith("text/html")
    assert storage.get_file(TRIPLE, "sub/")[0] == b"<p>sub</p>"
    assert storage.get_file(TRIPLE, "")[0] == b"<h1>first</h1>"
    assert storage.get_file(TRIPLE, "img.svg")[1] == "image/svg+xml"
    # The triple is case-insensitive, as Backstage's lower-cased storage paths.
    assert storage.get_file(EntityTriple("DEFAULT", "component", "shop"), "index.html")[0]
    # A new build replaces the whole site: files of the old build are gone.
    storage.put_site(TRIPLE, _site(tmp_path / "b", "second"))
    assert storage.get_file(TRIPLE, "index.html")[0] == b"<h1>second</h1>"
    with pytest.raises(NotFoundError):
        storage.get_file(TRIPLE, "only-first.txt")
    storage.delete(TRIPLE)
    assert not storage.has_site(TRIPLE)


@pytest.mark.parametrize("path", ["../../../etc/passwd", "/etc/passwd", "sub/../../x", "a\\..\\b",
                                  "index.html\x00.png"])
def test_traversal_is_refused(storage: DocsStorage, tmp_path: Path, path: str) -> None:
    storage.put_site(TRIPLE, _site(tmp_path / "a", "first"))
    with pytest.raises(InputError):
        storage.get_file(TRIPLE, path)


def test_local_symlink_out_of_site_is_refused(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "store")
    store.put_site(TRIPLE, _site(tmp_path / "a", "first"))
    (tmp_path / "secret").write_text("s")
    (tmp_path / "store/default/component/shop/link").symlink_to(tmp_path / "secret")
    with pytest.raises(InputError):
        store.get_file(TRIPLE, "link")


def test_s3_keys_needing_escapes_round_trip(s3_endpoint: str, tmp_path: Path) -> None:
    store = S3Storage(s3_endpoint, "escapes", access_key="testing", secret_key="testing")
    store.create_bucket()
    site = tmp_path / "s"
    (site / "a b").mkdir(parents=True)
    (site / "a b/ü+x.html").write_text("hi")
    (site / "index.html").write_text("i")
    store.put_site(TRIPLE, site)
    assert store.get_file(TRIPLE, "a b/ü+x.html") == (b"hi", "text/html; charset=utf-8")


def test_sigv4_matches_aws_published_example() -> None:
    """The GET-object example of AWS's "Signature Calculations for the Authorization Header"."""
    headers = sign_v4(
        "GET", httpx.URL("https://examplebucket.s3.amazonaws.com/test.txt"), {"Range": "bytes=0-9"},
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        access_key="AKIAIOSFODNN7EXAMPLE", secret_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        region="us-east-1", now=dt.datetime(2013, 5, 24, tzinfo=dt.UTC))
    assert headers["Authorization"].endswith(
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
