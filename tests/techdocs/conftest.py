"""TechDocs fixtures: one shared build server, migrated databases of each kind, docs projects."""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from greenroom.core import db
from greenroom.techdocs.engine.builder import DocsBuilder
from tests.conftest import CORPUS

PG_URL = os.environ.get("GREENROOM_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DOCS = {
    "documented-component": CORPUS / "techdocs/backstage__documented-component",
    "monorepo": CORPUS / "techdocs/backstage__mkdocs-monorepo-plugin/sample-docs",
    "create-app": CORPUS / "techdocs/create-app__example-docs",
    "one-platform": CORPUS / "catalog/external/1-Platform__one-platform/catalog/systems",
}
HAS_PLANTUML = shutil.which("plantuml") is not None


def _pg_available() -> bool:
    if os.environ.get("GREENROOM_TEST_PG", "1") == "0":
        return False
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def builder() -> Iterator[DocsBuilder]:
    """One pre-forked build server for the whole run (as the portal keeps one)."""
    b = DocsBuilder(timeout_s=60, memory_mb=1024)
    b.start()
    yield b
    b.close()


@pytest.fixture(params=["sqlite", "pg"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite file, or a migrated private PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        eng = db.make_engine(f"sqlite:///{tmp_path / 'greenroom.db'}")
        db.upgrade(eng)
        yield eng
        eng.dispose()
        return
    if not _pg_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is required in CI")
        pytest.skip("PostgreSQL not reachable")
    schema = f"td_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    eng = db.make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        db.upgrade(eng)
        yield eng
    finally:
        eng.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def write_project(root: Path, files: dict[str, str]) -> Path:
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content, encoding="utf-8")
    return root


class DictEntities:
    """Test data: entities by ref, the way the catalog service will answer ``get_entity``."""

    def __init__(self, *entities: dict[str, Any]) -> None:
        self.by_ref: dict[str, dict[str, Any]] = {}
        for e in entities:
            self.add(e)

    def add(self, entity: dict[str, Any]) -> None:
        meta = entity["metadata"]
        ref = f"{entity['kind']}:{meta.get('namespace', 'default')}/{meta['name']}".lower()
        self.by_ref[ref] = entity

    def get_entity(self, ref: str) -> dict[str, Any] | None:
        return self.by_ref.get(ref.lower())


def component(name: str, catalog_file: Path, docs_ref: str = "dir:.", namespace: str = "default",
              kind: str = "Component") -> dict[str, Any]:
    return {
        "apiVersion": "backstage.io/v1alpha1", "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4()),
                     "annotations": {"backstage.io/managed-by-location": f"file:{catalog_file}",
                                     "backstage.io/techdocs-ref": docs_ref}},
        "spec": {"type": "service", "owner": "group:default/team-a", "lifecycle": "production"},
    }
