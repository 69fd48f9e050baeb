"""TechDocs fixtures: one shared build server, migrated databases of each kind, docs projects."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from greenroom.techdocs.engine.builder import DocsBuilder
from tests.conftest import CORPUS

DOCS = {
    "documented-component": CORPUS / "techdocs/backstage__documented-component",
    "monorepo": CORPUS / "techdocs/backstage__mkdocs-monorepo-plugin/sample-docs",
    "create-app": CORPUS / "techdocs/create-app__example-docs",
    "one-platform": CORPUS / "catalog/external/1-Platform__one-platform/catalog/systems",
}
HAS_PLANTUML = shutil.which("plantuml") is not None


@pytest.fixture(scope="session")
def builder() -> Iterator[DocsBuilder]:
    """One pre-forked build server for the whole run (as the portal keeps one)."""
    b = DocsBuilder(timeout_s=60, memory_mb=1024)
    b.start()
    yield b
    b.close()


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
