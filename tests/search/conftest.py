"""Search fixtures: a migrated SQLite file and a migrated private PostgreSQL schema."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from greenroom.core import db
from greenroom.search.service import SearchService

PG_URL = os.environ.get("GREENROOM_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_available() -> bool:
    if os.environ.get("GREENROOM_TEST_PG", "1") == "0":
        return False
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


def migrated_engine(kind: str, directory: Path) -> Iterator[Engine]:
    """A fresh migrated database of ``kind``; a PostgreSQL schema is dropped afterwards."""
    if kind == "sqlite":
        engine = db.make_engine(f"sqlite:///{directory / 'search.db'}")
        db.upgrade(engine)
        yield engine
        engine.dispose()
        return
    if not _pg_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is required in CI")
        pytest.skip("PostgreSQL not reachable")
    schema = f"search_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = db.make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        db.upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "pg"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    yield from migrated_engine(request.param, tmp_path)


@pytest.fixture
def service(engine: Engine) -> SearchService:
    return SearchService(engine)
