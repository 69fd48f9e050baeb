"""The generator's 10k catalog: every manifest name ranks first for its own exact-name query.

(Backstage's PostgreSQL engine found 25 of 67 such names; see shared/bench/README.md.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from greenroom.search.model import entity_document
from greenroom.search.service import SearchService

from .conftest import migrated_engine

GEN = Path(__file__).resolve().parents[3] / "shared" / "bench" / "gen_entities.py"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], dict]:
    out = tmp_path_factory.mktemp("search10k")
    subprocess.run([sys.executable, str(GEN), "10000", str(out)], check=True, stdout=subprocess.DEVNULL)
    entities: list[dict] = []
    for f in sorted(out.glob("chunk-*.yaml")):
        entities.extend(d for d in yaml.load_all(f.read_text(), Loader=yaml.CSafeLoader) if d)
    return entities, json.loads((out / "manifest.json").read_text())


@pytest.fixture(scope="module", params=["sqlite", "pg"])
def big(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
        generated: tuple[list[dict], dict]) -> Iterator[tuple[SearchService, dict]]:
    entities, manifest = generated
    for engine in migrated_engine(request.param, tmp_path_factory.mktemp("db")):
        service = SearchService(engine)
        stats = service.replace_all("software-catalog", (entity_document(e) for e in entities))
        assert stats.documents == 10_000
        yield service, manifest


def test_every_manifest_name_ranks_first(big: tuple[SearchService, dict]) -> None:
    service, manifest = big
    names = [n for key in ("components", "apis", "resources", "groups", "systems", "domains")
             for n in manifest[key]]
    misses = []
    for name in names:
        results = service.query(name, page_limit=1).results
        if not results or results[0].document.name != name:
            misses.append(name)
    assert len(names) == 9000 and misses == []


def test_word_queries_and_stemming_at_scale(big: tuple[SearchService, dict]) -> None:
    service, manifest = big
    payments = service.query("payments", types=["software-catalog"], filters={"kind": "Component"})
    assert payments.total and payments.total > 50
    assert all("payments" in r.document.name for r in payments.results)
    assert service.query("stars").total == 0  # no "stores" (or anything) for "stars"
    n_services = manifest["component_type_counts"]["service"]
    assert service.query("", filters={"kind": "component", "type": "service"}).total == n_services
