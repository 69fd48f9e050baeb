"""Health endpoints and the process-level contract of `greenroom serve`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import CORPUS, make_settings


def test_healthz_and_readyz_need_no_token(tmp_path: Path, server_factory: Any) -> None:
    target = CORPUS / "catalog" / "backstage-examples" / "acme-corp.yaml"
    settings = make_settings(tmp_path, {"client": "sqlite", "connection": str(tmp_path / "g.db")},
                             catalog={"locations": [{"type": "file", "target": str(target)}]})
    portal = server_factory(settings)
    assert portal.anonymous.get("/healthz").json() == {"status": "ok"}
    ready = portal.anonymous.get("/readyz")
    assert ready.status_code == 200
    # Ready means the configured locations were read once: their entities are there.
    assert portal.client.get("/api/catalog/entities/by-name/group/default/team-a").status_code == 200
    assert portal.anonymous.get("/api/catalog/entities").status_code == 401


def test_responses_carry_a_request_id(tmp_path: Path, server_factory: Any) -> None:
    portal = server_factory(make_settings(tmp_path, {"client": "sqlite", "connection": str(tmp_path / "g.db")}))
    r = portal.client.get("/api/catalog/entities?limit=1", headers={"x-request-id": "abc123"})
    assert r.headers["x-request-id"] == "abc123"
    assert len(portal.client.get("/api/catalog/entities?limit=1").headers["x-request-id"]) == 16
