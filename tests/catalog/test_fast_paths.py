"""The fast paths give the answers of the plain ones: read-ahead in a helper process, answers
spliced from stored JSON, and cached answers (dropped by every write, in every replica)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from greenroom.catalog import engine as catalog_engine
from greenroom.catalog.model import LocationSpec
from greenroom.catalog.service import CatalogService, EntityQuery
from greenroom.core import db
from greenroom.core.config import Settings
from tests.conftest import SHARED


@pytest.fixture
def generated(tmp_path: Path) -> Path:
    out = tmp_path / "catalog"
    subprocess.run([sys.executable, str(SHARED / "bench" / "gen_entities.py"), "600", str(out), "--chunk", "150"],
                   check=True, stdout=subprocess.DEVNULL)
    return out


def _service(tmp_path: Path, db_config: dict[str, Any]) -> CatalogService:
    settings = Settings.model_validate({"backend": {"database": db_config, "reading": {"allowFiles": [str(tmp_path)]}},
                                        "greenroom": {"home": str(tmp_path)}})
    engine = db.make_engine(settings.database_url)
    db.upgrade(engine)
    return CatalogService(engine, settings)


def test_read_ahead_prepares_what_reading_here_prepares(generated: Path) -> None:
    chunk = LocationSpec("file", str(generated / "chunk-0001.yaml"))
    policy = catalog_engine.DefaultReadPolicy([], "http://127.0.0.1:7007")
    here = catalog_engine.prepare(catalog_engine.process_location(
        chunk, origin=chunk, policy=policy, root=str(generated)), chunk)
    with catalog_engine.ReadAhead() as ahead:
        ahead.submit("x", chunk, chunk, policy, str(generated), None)
        ahead._helper.answered = True  # type: ignore[union-attr]  # wait for it even while it starts
        there = ahead.result("x", chunk)
    assert there is not None
    assert len(there.entities) == len(here.entities) == 150
    splice_here, splice_there = here.splicer(), there.splicer()
    for a, b in zip(here.entities, there.entities, strict=True):
        assert (a.ref, a.hash, a.relations, a.search) == (b.ref, b.hash, b.relations, b.search)
        assert splice_here(a.body, "u-1", "e-1") == splice_there(b.body, "u-1", "e-1")
        body = json.loads(splice_there(b.body, "u-1", "e-1"))
        assert body["metadata"]["uid"] == "u-1" and body["metadata"]["etag"] == "e-1"


def test_read_ahead_of_a_missing_file_is_an_unreadable_result(tmp_path: Path) -> None:
    missing = LocationSpec("file", str(tmp_path / "nope.yaml"))
    policy = catalog_engine.DefaultReadPolicy([], "http://127.0.0.1:7007")
    with catalog_engine.ReadAhead() as ahead:
        ahead.submit("x", missing, missing, policy, str(tmp_path), None)
        ahead._helper.answered = True  # type: ignore[union-attr]
        result = ahead.result("x", missing)
    assert result is not None and result.unreadable and result.problems


def test_spliced_and_cached_answers_equal_plain_ones(tmp_path: Path, db_config: dict[str, Any],
                                                    generated: Path) -> None:
    svc = _service(tmp_path, db_config)
    svc.register_location("file", str(generated / "catalog-info.yaml"))
    manifest = json.loads((generated / "manifest.json").read_text())
    comps = manifest["components"]
    queries = [
        EntityQuery(filters=[{"kind": ["component"]}], limit=50),
        EntityQuery(filters=[{"kind": ["location"]}], limit=50),
        EntityQuery(filters=[{"kind": ["component"]}], full_text_term=comps[0].split("-")[1],
                    full_text_fields=["metadata.name", "metadata.title"], order=[("metadata.name", "asc")], limit=20),
    ]
    for q in queries:
        plain = svc.query(q)
        for _ in range(2):  # the second answer comes from the cache
            fast = svc.query(q, raw=True)
            assert orjson.dumps(fast.items) == orjson.dumps(plain.items)
            assert fast.total == plain.total
    refs = [f"component:default/{c}" for c in comps[:40]] + ["not a ref", "component:default/none"]
    assert orjson.dumps(svc.by_refs(refs, raw=True)) == orjson.dumps(svc.by_refs(refs))
    assert orjson.dumps(svc.get_by_name_raw("Component", "default", comps[3])) == \
        orjson.dumps(svc.get_by_name("component", "default", comps[3]))

    q = EntityQuery(filters=[{"kind": ["component"]}], limit=5)
    before = svc.query(q, raw=True)
    facets_before = svc.facets(["spec.type"], [{"kind": ["component"]}])
    # A write (here: unregistering makes every entity an orphan) must not be answered from the cache.
    root = svc.list_locations()[0]
    svc.delete_location(root["id"])
    after = svc.query(q, raw=True)
    assert orjson.dumps(after.items) != orjson.dumps(before.items)
    assert all(e["metadata"]["annotations"].get("backstage.io/orphan") == "true" for e in svc.query(q).items)
    assert orjson.dumps(after.items) == orjson.dumps(svc.query(q).items)
    svc.delete_by_uid(svc.query(q).items[0]["metadata"]["uid"])
    facets_after = svc.facets(["spec.type"], [{"kind": ["component"]}])
    assert sum(f["count"] for f in facets_after["facets"]["spec.type"]) == \
        sum(f["count"] for f in facets_before["facets"]["spec.type"]) - 1
