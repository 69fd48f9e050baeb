"""Shared fixtures: real databases (a SQLite file and PostgreSQL), real settings, a real server.

Every storage and API test that takes ``db_url`` runs twice: on a fresh SQLite file and on a
fresh PostgreSQL schema in the ``test`` database (127.0.0.1:5432, trust auth). Set
``GREENROOM_TEST_PG=0`` to skip PostgreSQL locally; CI always runs both.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine, create_engine, text

from greenroom.core import db
from greenroom.core.config import Settings, load_settings

DEMO_DIR = Path(__file__).resolve().parents[1] / "src" / "greenroom" / "demo"

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
if not SHARED.exists():  # CI lays shared/ beside the clone
    SHARED = Path(os.environ.get("GREENROOM_SHARED", "../shared")).resolve()
CORPUS = SHARED / "corpus"
PG_ADMIN_URL = os.environ.get("GREENROOM_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TOKEN = "test-token-0123456789"


def _pg_available() -> bool:
    if os.environ.get("GREENROOM_TEST_PG", "1") == "0":
        return False
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


def database(kind: str, directory: Path) -> Iterator[dict[str, Any]]:
    """``backend.database`` for a fresh, empty database of ``kind`` (sqlite | pg); a PostgreSQL
    schema is dropped afterwards."""
    if kind == "sqlite":
        yield {"client": "sqlite", "connection": str(directory / "greenroom.db")}
        return
    if not _pg_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is required in CI")
        pytest.skip("PostgreSQL not reachable")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield {"client": "pg",
               "connection": f"postgresql://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"}
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def migrated_engine(kind: str, directory: Path) -> Iterator[Engine]:
    """A migrated engine on a fresh database of ``kind``."""
    for config in database(kind, directory):
        eng = db.make_engine(load_settings([], overrides={"backend": {"database": config}}).database_url)
        try:
            db.upgrade(eng)
            yield eng
        finally:
            eng.dispose()


@pytest.fixture(params=["sqlite", "pg"])
def db_config(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """``backend.database`` for a fresh, empty database of each kind."""
    yield from database(request.param, tmp_path)


@pytest.fixture(params=["sqlite", "pg"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite file, then a migrated private PostgreSQL schema."""
    yield from migrated_engine(request.param, tmp_path)


def make_settings(tmp_path: Path, db: dict[str, Any], **sections: Any) -> Settings:
    home = tmp_path / "home"
    overrides: dict[str, Any] = {
        "greenroom": {"home": str(home)},
        "backend": {"database": db,
                    "auth": {"externalAccess": [{"type": "static",
                                                 "options": {"token": TOKEN, "subject": "tests"}}]},
                    # Tests register corpus files, the demo and files they write in their tmp dirs.
                    "reading": {"allowFiles": [str(CORPUS), str(DEMO_DIR), str(tmp_path.parents[1])]}},
    }
    for key, value in sections.items():
        if key == "backend" and isinstance(value, dict) or isinstance(value, dict) and isinstance(overrides.get(key), dict):
            overrides[key] = {**overrides[key], **value}
        else:
            overrides[key] = value
    return load_settings([], overrides=overrides)


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (never a downloaded browser). CI installs it, so
    there a missing browser is a failure, not a skip."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("/usr/bin/chromium is required in CI (apt-get install chromium)")
        pytest.skip("Debian's chromium is not installed (/usr/bin/chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A real uvicorn server in a thread, on a free port, with an authenticated client."""

    def __init__(self, settings: Settings, run_workers: bool = True) -> None:
        from greenroom.app import create_app

        self.port = free_port()
        settings.backend.baseUrl = f"http://127.0.0.1:{self.port}"
        settings.app.baseUrl = settings.backend.baseUrl
        self.settings = settings
        self.app = create_app(settings, run_workers=run_workers)
        self.portal = self.app.state.portal
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        else:
            raise RuntimeError("server did not become ready")
        self.client = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {TOKEN}"},
                                   timeout=60)
        self.anonymous = httpx.Client(base_url=self.url, timeout=30)

    def stop(self) -> None:
        self.client.close()
        self.anonymous.close()
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Any]:
    servers: list[Server] = []

    def start(settings: Settings, run_workers: bool = True) -> Server:
        s = Server(settings, run_workers=run_workers)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()


@pytest.fixture
def portal(tmp_path: Path, db_config: dict[str, Any], server_factory: Any) -> Server:
    """A running portal on an empty database of each kind."""
    return server_factory(make_settings(tmp_path, db_config))
