"""``/api/search`` over HTTP: Backstage's query-string format, error bodies and hostile terms.

The router is mounted the way ``create_app`` will mount it (``/api/search``, service in
``app.state.portal.services["search"]``), with the kernel's Backstage error rendering.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.testclient import TestClient

from greenroom.core.errors import GreenroomError
from greenroom.core.http import error_response
from greenroom.search.api import router
from greenroom.search.model import SearchDocument, entity_document
from greenroom.search.service import SearchService

from .test_service import HOSTILE


@pytest.fixture
def client(service: SearchService) -> Iterator[TestClient]:
    service.index([
        entity_document({"kind": "Component", "metadata": {"name": "payments", "tags": ["java", "pci"]},
                         "spec": {"type": "service", "owner": "team-a", "lifecycle": "production"}}),
        entity_document({"kind": "API", "metadata": {"name": "payments-api", "tags": ["rest"]},
                         "spec": {"type": "openapi", "owner": "team-a"}}),
        SearchDocument(type="techdocs", location="/docs/default/component/payments/",
                       title="Payments <docs>", text="payments & more"),
    ])
    app = FastAPI()
    app.state.portal = SimpleNamespace(services={"search": service})

    @app.exception_handler(GreenroomError)
    async def _error(request: Request, exc: GreenroomError) -> Response:
        return error_response(request, exc.status_code, exc.name, exc.message)

    app.include_router(router, prefix="/api/search")
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def locations(body: dict) -> list[str]:
    return [r["document"]["location"] for r in body["results"]]


def test_query_string_formats(client: TestClient) -> None:
    every = client.get("/api/search/query", params={"term": "payments"}).json()
    assert every["numberOfResults"] == 3 and locations(every)[0] == "/catalog/default/component/payments"
    for types_param in ("types[0]", "types[]", "types"):
        body = client.get(f"/api/search/query?term=payments&{types_param}=techdocs").json()
        assert locations(body) == ["/docs/default/component/payments/"]
    body = client.get("/api/search/query?term=payments&types[0]=software-catalog&types[1]=techdocs"
                      "&filters[kind]=API").json()
    assert locations(body) == ["/catalog/default/api/payments-api"]
    body = client.get("/api/search/query?filters[tags][0]=pci&filters[tags][1]=rest").json()
    assert sorted(locations(body)) == ["/catalog/default/api/payments-api",
                                       "/catalog/default/component/payments"]
    first = client.get("/api/search/query?term=payments&pageLimit=1").json()
    assert len(first["results"]) == 1 and "nextPageCursor" in first
    second = client.get("/api/search/query", params={"term": "payments", "pageLimit": "1",
                                                     "pageCursor": first["nextPageCursor"]}).json()
    assert second["results"][0]["rank"] == 2 and "previousPageCursor" in second


def test_bad_input_is_a_backstage_400(client: TestClient) -> None:
    resp = client.get("/api/search/query?term=x&pageCursor=garbage")
    assert resp.status_code == 400
    body = resp.json()
    assert body["error"]["name"] == "InputError" and "pageCursor" in body["error"]["message"]
    assert body["response"] == {"statusCode": 400}
    assert client.get("/api/search/query?pageLimit=abc").status_code == 400
    assert client.get("/api/search/query?pageLimit=1000").status_code == 400
    assert client.get("/api/search/query?filters[a][b]=c").status_code == 400


@pytest.mark.parametrize("term", HOSTILE[:24], ids=range(24))
def test_hostile_terms_over_http_are_200(client: TestClient, term: str) -> None:
    for path in ("/api/search/query", "/api/search/suggest", "/api/search/facets"):
        resp = client.get(path, params={"term": term})
        assert resp.status_code == 200, (path, resp.text)


def test_highlight_is_escaped_html(client: TestClient) -> None:
    body = client.get("/api/search/query?term=payments&types[]=techdocs").json()
    hl = body["results"][0]["highlight"]
    assert hl["fields"]["title"] == "<mark>Payments</mark> &lt;docs&gt;"
    assert hl["fields"]["text"] == "<mark>payments</mark> &amp; more"


def test_suggest_and_facets(client: TestClient) -> None:
    body = client.get("/api/search/suggest?term=paym&limit=2").json()
    assert locations(body) == ["/catalog/default/component/payments", "/catalog/default/api/payments-api"]
    assert client.get("/api/search/suggest?term=p&limit=99").status_code == 400
    facets = client.get("/api/search/facets?term=payments&facet=type&facet=kind").json()["facets"]
    assert facets["type"] == {"software-catalog": 2, "techdocs": 1}
    assert facets["kind"] == {"component": 1, "api": 1}
