"""Backstage's own ``@backstage/catalog-client`` (installed from npm at test time, pinned in
tests/catalog/catalog_client/package.json) against a real Greenroom on SQLite and PostgreSQL.

The Node script (catalog_client/check.mjs) makes every call a Backstage plugin makes and prints
what each returned or threw; this test compares the answers with Greenroom's own API and with
what the client promises its callers (``undefined`` for a missing entity, ``{valid: false}``
for an invalid one, a ``ResponseError`` carrying our status and error name otherwise).

npm reaching its registry is a precondition: without it the test is skipped, saying so. npm
missing altogether fails under CI (where Node is part of the toolchain) and skips elsewhere.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CORPUS, TOKEN, Server

HERE = Path(__file__).resolve().parent / "catalog_client"
EXAMPLES = CORPUS / "catalog" / "backstage-examples"
ALL_YAML = EXAMPLES / "all.yaml"
ACME_YAML = EXAMPLES / "acme-corp.yaml"

EXTRA = """apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: extra-one
spec:
  type: service
  lifecycle: experimental
  owner: team-a
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: extra-two
spec:
  type: website
  lifecycle: experimental
  owner: team-a
"""


def _npm() -> str:
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        message = "node and npm are needed to run Backstage's catalog client (apt-get install nodejs npm)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return npm


def _registry_problem(npm: str, folder: Path, env: dict[str, str]) -> str | None:
    """Why npm cannot reach its registry, or None when it can."""
    try:
        ping = subprocess.run([npm, "ping", "--fetch-retries=0", "--fetch-timeout=15000"], cwd=folder,
                              env=env, capture_output=True, text=True, timeout=45, check=False)
    except subprocess.TimeoutExpired:
        return "npm ping did not answer within 45 s"
    return None if ping.returncode == 0 else " ".join((ping.stderr or ping.stdout).split())[:300]


@pytest.fixture(scope="session")
def client_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pinned client installed once per test session (per xdist worker)."""
    npm = _npm()
    folder = tmp_path_factory.mktemp("catalog-client")
    shutil.copy(HERE / "package.json", folder / "package.json")
    env = {**os.environ, "npm_config_update_notifier": "false", "npm_config_cache": str(folder / ".npm")}
    problem = _registry_problem(npm, folder, env)
    if problem is not None:
        pytest.skip(f"npm cannot reach its registry, so @backstage/catalog-client cannot be installed: "
                    f"{problem}")
    proc = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--no-package-lock"], cwd=folder,
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0:
        pytest.fail(f"npm install failed although the registry answers:\n{proc.stderr[-2000:]}")
    return folder


def run_client(client_dir: Path, server: Server, extra: Path) -> dict[str, Any]:
    script = client_dir / "check.mjs"
    shutil.copy(HERE / "check.mjs", script)  # fresh each run: the install is cached, not the script
    env = {**os.environ, "GREENROOM_URL": server.url, "GREENROOM_TOKEN": TOKEN,
           "ALL_YAML": str(ALL_YAML), "EXTRA_YAML": str(extra)}
    proc = subprocess.run(["node", str(script)], cwd=client_dir, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, f"client script failed:\n{proc.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def ok(results: dict[str, Any], name: str) -> Any:
    """The value a call returned; fails naming the call and its error when it threw."""
    entry = results[name]
    assert "error" not in entry, f"{name} threw {entry['error']} (requests: {entry['requests']})"
    return entry["ok"]


def error(results: dict[str, Any], name: str) -> dict[str, Any]:
    entry = results[name]
    assert "error" in entry, f"{name} should have thrown but returned {entry.get('ok')!r}"
    err: dict[str, Any] = entry["error"]
    return err


def ref_of(e: dict[str, Any]) -> str:
    m = e["metadata"]
    return f"{e['kind']}:{m.get('namespace') or 'default'}/{m['name']}".lower()


def test_backstage_catalog_client(portal: Server, client_dir: Path, tmp_path: Path) -> None:
    api = portal.client
    for target in (ALL_YAML, ACME_YAML):
        r = api.post("/api/catalog/locations", json={"type": "file", "target": str(target)})
        assert r.status_code == 201, r.text
    extra = tmp_path / "extra.yaml"
    extra.write_text(EXTRA)

    # What our own API says before the client changes anything.
    ours = api.get("/api/catalog/entities", params={"filter": "kind=component"}).json()
    petstore = api.get("/api/catalog/entities/by-name/component/default/petstore").json()
    groups = sorted(ref_of(e) for e in api.get("/api/catalog/entities",
                                               params={"filter": "kind=group"}).json())
    systems = sorted(ref_of(e) for e in api.get("/api/catalog/entities", params={"filter": "kind=system"}).json())
    facets = api.get("/api/catalog/entity-facets", params={"facet": "spec.type"}).json()

    res = run_client(client_dir, portal, extra)

    # Listing and reading: the same entities our own API gives.
    assert ok(res, "getEntities") == sorted(ref_of(e) for e in ours) and len(ours) > 5
    picked = ok(res, "getEntitiesFieldsOrderLimit")
    names = [e["metadata"]["name"] for e in picked]
    assert len(picked) == 4 and names == sorted(names, reverse=True)
    assert all(set(e) == {"kind", "metadata"} and set(e["metadata"]) == {"name"} for e in picked)
    assert {e["kind"].lower() for e in picked} <= {"component", "api"}
    assert ok(res, "getEntityByRef") == petstore
    assert res["getEntityByRefMissing"] == {"ok": None, "undefined": True,
                                            "requests": res["getEntityByRefMissing"]["requests"]}
    assert ok(res, "getEntitiesByRefs") == ["component:default/petstore", None, "api:default/petstore"]

    # Cursor paging over groups reaches every group exactly once.
    first = ok(res, "queryEntities")
    assert len(first["refs"]) == 5 and first["totalItems"] == len(groups) > 5
    assert first["pageInfo"].get("nextCursor")
    rest = ok(res, "queryEntitiesNext")
    assert rest["allGroups"] == groups and len(set(rest["allGroups"])) == len(groups)
    assert not rest["pages"][-1]["pageInfo"].get("nextCursor")
    ordered = ok(res, "queryEntitiesOrdered")
    assert ordered["refs"] and all("pet" in r for r in ordered["refs"])
    assert ordered["refs"] == sorted(ordered["refs"], reverse=True)
    production = sorted(ref_of(e) for e in ours if (e.get("spec") or {}).get("lifecycle") == "production")
    assert ok(res, "queryEntitiesPredicate") == {"refs": production, "totalItems": len(production)}
    assert ok(res, "streamEntities") == systems

    # Facets.
    assert ok(res, "getEntityFacets") == facets
    kinds = ok(res, "getEntityFacetsFiltered")["facets"]["kind"]
    assert kinds and all(f["count"] > 0 for f in kinds)

    # Locations.
    targets = {loc["target"] for loc in ok(res, "getLocations")}
    assert {str(ALL_YAML), str(ACME_YAML)} <= targets
    by_ref = ok(res, "getLocationByRef")
    assert by_ref["type"] == "file" and by_ref["target"] == str(ALL_YAML) and by_ref["id"]
    assert res["getLocationByRefMissing"]["undefined"] is True
    first_location = ok(res, "queryLocations")
    assert len(first_location["items"]) == 1 and first_location["totalItems"] == len(targets)
    assert first_location["pageInfo"].get("nextCursor")
    streamed = ok(res, "streamLocations")
    assert all(len(p) == 1 for p in streamed) and sorted(t for p in streamed for t in p) == sorted(targets)
    assert ok(res, "getLocationByEntity")["target"] == str(ALL_YAML)

    dry = ok(res, "addLocationDryRun")
    assert {"component:default/extra-one", "component:default/extra-two"} <= set(dry["refs"])
    assert dry["location"] == {**dry["location"], "type": "file", "target": str(extra), "id": f"file:{extra}"}
    assert dry["exists"] is False
    assert res["getEntityByRefAfterDryRun"]["undefined"] is True  # a dry run stores nothing
    added = ok(res, "addLocation")
    assert added["location"]["type"] == "file" and added["location"]["target"] == str(extra)
    assert {"component:default/extra-one", "component:default/extra-two"} <= set(added["refs"])
    again = error(res, "addLocationAgain")
    assert (again["status"], again["errorName"]) == (409, "ConflictError"), again
    assert ok(res, "getLocationById") == added["location"]
    assert res["getLocationByIdMissing"]["undefined"] is True

    ancestry = ok(res, "getEntityAncestors")
    assert ancestry["rootEntityRef"] == "component:default/extra-one"
    chain = {ref_of(i["entity"]): i["parentEntityRefs"] for i in ancestry["items"]}
    assert chain["component:default/extra-one"] and chain["component:default/extra-one"][0].startswith("location:")
    missing = error(res, "getEntityAncestorsMissing")
    assert (missing["status"], missing["errorName"]) == (404, "NotFoundError"), missing

    assert res["refreshEntity"]["ok"] is None and "error" not in res["refreshEntity"]
    missing = error(res, "refreshEntityMissing")
    assert (missing["status"], missing["errorName"]) == (404, "NotFoundError"), missing

    # Validation: the client turns our 400 into {valid: false, errors}.
    assert ok(res, "validateEntityValid") == {"valid": True}
    for name in ("validateEntityInvalid", "validateEntityNoKind"):
        invalid = ok(res, name)
        assert invalid["valid"] is False and invalid["errors"], (name, invalid)
        assert all(e["name"] and e["message"] for e in invalid["errors"]), invalid

    # An entity its file stopped defining is an orphan; removing it by uid deletes it.
    orphan = ok(res, "orphan")
    assert orphan["metadata"]["annotations"]["backstage.io/orphan"] == "true"
    assert "error" not in res["removeEntityByUid"], res["removeEntityByUid"]
    assert res["orphanAfterRemove"]["undefined"] is True
    assert api.get("/api/catalog/entities/by-name/component/default/extra-two").status_code == 404
    # Deleting by uid is idempotent in Backstage: an unknown uid does not make the client throw.
    assert "error" not in res["removeEntityByUidMissing"], res["removeEntityByUidMissing"]
    assert "error" not in res["removeLocationById"], res["removeLocationById"]
    assert res["getLocationByIdRemoved"]["undefined"] is True
    refused = error(res, "unauthenticated")
    assert (refused["status"], refused["errorName"]) == (401, "AuthenticationError"), refused
