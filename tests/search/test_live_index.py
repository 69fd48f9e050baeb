"""The search index follows the catalog as it changes, without a reindex: entities and templates
appear when registered and disappear when deleted."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from greenroom.cli import DEMO_DIR
from tests.conftest import make_settings


def search(portal: Any, term: str, type_: str) -> list[dict[str, Any]]:
    r = portal.client.get("/api/search/query", params={"term": term, "types[0]": type_})
    assert r.status_code == 200, r.text
    return list(r.json()["results"])


def eventually(fn: Any, timeout: float = 10) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.1)
    return fn()


def test_templates_and_entities_are_searchable_once_registered(tmp_path: Path, server_factory: Any) -> None:
    portal = server_factory(make_settings(tmp_path, {"client": "sqlite", "connection": str(tmp_path / "g.db")}))
    r = portal.client.post("/api/catalog/locations",
                           json={"type": "file", "target": str(DEMO_DIR / "catalog-info.yaml")})
    assert r.status_code == 201
    found = eventually(lambda: search(portal, "python service", "templates"))
    assert found and found[0]["document"]["location"] == "/create/templates/default/python-service"
    hits = eventually(lambda: search(portal, "rate-calculator", "software-catalog"))
    assert hits[0]["document"]["title"].lower().replace(" ", "-") == "rate-calculator" or \
        hits[0]["document"]["location"].endswith("/rate-calculator")
    uid = portal.client.get("/api/catalog/entities/by-name/component/default/rate-calculator").json()["metadata"]["uid"]
    assert portal.client.delete(f"/api/catalog/entities/by-uid/{uid}").status_code == 204
    gone = eventually(lambda: not any(h["document"]["location"].endswith("/rate-calculator")
                                      for h in search(portal, "rate-calculator", "software-catalog")))
    assert gone
