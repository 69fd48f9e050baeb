"""Index, query, paging, filters, hostile terms, highlights and visibility, on both databases."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from greenroom.core.errors import InputError
from greenroom.search.model import Caller, SearchDocument, entity_document
from greenroom.search.service import SearchService, encode_cursor

HOSTILE = ['"', "*", "NEAR", ":", "-", "OR", ")", "(", "AND", 'pay"ments', "pay*", "NEAR(a b)",
           "kind:api", "-payments", "payments OR", "^x", "a & b | !c", "'; DROP TABLE x; --",
           "\\", "%", "_", "", "   ", "x" * 10_000, "pay " * 5_000, "\x00", "日本語"]


def entity(kind: str, name: str, **spec: object) -> SearchDocument:
    tags = spec.pop("tags", [])
    desc = spec.pop("description", "")
    return entity_document({"kind": kind, "metadata": {"name": name, "tags": tags, "description": desc},
                            "spec": {"owner": "team-a", **spec}})


def page(location: str, title: str, text: str) -> SearchDocument:
    return SearchDocument(type="techdocs", location=location, title=title, text=text,
                          fields={"kind": "component", "name": "payments"})


@pytest.fixture
def indexed(service: SearchService) -> SearchService:
    service.index([
        entity("Component", "payments", type="service", lifecycle="production", tags=["java", "pci"]),
        entity("Component", "payments-ui", type="website", lifecycle="experimental", tags=["typescript"]),
        entity("API", "payments-api", type="openapi", lifecycle="production", tags=["rest"]),
        entity("Resource", "payments-db", type="database"),
        page("/docs/default/component/payments/", "Payments overview", "How payments flow."),
        page("/docs/default/component/payments/runbook/#restart", "Runbook: restart",
             "Restart the payments pods."),
    ])
    return service


def test_type_tabs_and_filters(indexed: SearchService) -> None:
    assert indexed.query("payments").total == 6
    docs = indexed.query("payments", types=["techdocs"]).results
    assert {r.document.location for r in docs} == {"/docs/default/component/payments/",
                                                    "/docs/default/component/payments/runbook/#restart"}
    assert all(r.document.type == "techdocs" for r in docs)
    kinds = indexed.query("payments", types=["software-catalog"], filters={"kind": "API"}).results
    assert [r.document.name for r in kinds] == ["payments-api"]
    both = indexed.query("payments", filters={"kind": ["api", "resource"]}).results  # OR, any case
    assert sorted(r.document.name for r in both) == ["payments-api", "payments-db"]
    tagged = indexed.query("", filters={"tags": "pci", "lifecycle": "production"}).results
    assert [r.document.name for r in tagged] == ["payments"]
    assert indexed.query("payments", filters={"kind": "nonsense"}).results == []
    facets = indexed.facets("payments", ["type", "kind"], types=["software-catalog"])
    assert facets["type"] == {"software-catalog": 4, "techdocs": 2}  # tabs ignore the selected tab
    assert facets["kind"] == {"component": 2, "api": 1, "resource": 1}


def test_response_has_backstage_shape(indexed: SearchService) -> None:
    body = indexed.query("payments-api").as_json()
    assert body["numberOfResults"] >= 1
    first = body["results"][0]
    assert first["type"] == "software-catalog" and first["rank"] == 1
    assert first["document"]["location"] == "/catalog/default/api/payments-api"
    assert first["document"]["kind"] == "API" and first["document"]["title"] == "payments-api"
    assert "authorization" not in first["document"]
    assert first["highlight"]["preTag"] == "<mark>" and first["highlight"]["postTag"] == "</mark>"


def test_paging_with_cursors(service: SearchService) -> None:
    service.index([entity("Component", f"svc-{i:02d}", description="shared words") for i in range(23)])
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        result = service.query("shared", page_cursor=cursor, page_limit=10)
        assert result.total == 23
        seen += [r.document.name for r in result.results]
        assert [r.rank for r in result.results] == list(range(len(seen) - len(result.results) + 1,
                                                              len(seen) + 1))
        pages += 1
        if pages > 1:
            assert result.previous_cursor is not None
        cursor = result.next_cursor
        if cursor is None:
            break
    assert pages == 3 and sorted(seen) == [f"svc-{i:02d}" for i in range(23)]
    back = service.query("shared", page_cursor=encode_cursor(10), page_limit=10)
    prev = service.query("shared", page_cursor=back.previous_cursor, page_limit=10)
    assert [r.document.name for r in prev.results] == seen[:10]
    for bad in ("nope", "%%%", encode_cursor(10)[:-1] + "!", "eDU", "b" * 100):
        with pytest.raises(InputError, match="pageCursor"):
            service.query("shared", page_cursor=bad)
    for limit in (0, 101):
        with pytest.raises(InputError, match="pageLimit"):
            service.query("shared", page_limit=limit)


@pytest.mark.parametrize("term", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_terms_give_safe_results(indexed: SearchService, term: str) -> None:
    result = indexed.query(term)
    assert isinstance(result.as_json()["results"], list)
    indexed.suggest(term)
    indexed.facets(term)


def test_fts_syntax_words_are_plain_words(service: SearchService) -> None:
    service.index([entity("Component", "near-or-and", description="NEAR OR AND words")])
    assert [r.document.name for r in service.query("NEAR").results] == ["near-or-and"]
    assert [r.document.name for r in service.query('"near" OR (and)').results] == ["near-or-and"]
    assert [r.document.name for r in service.query("near*").results] == ["near-or-and"]


def test_incremental_update_is_visible_immediately(service: SearchService) -> None:
    service.index([entity("Component", "ledger", description="old words about aardvarks")])
    assert service.query("aardvarks").total == 1
    assert service.index([entity("Component", "ledger", description="new words about zebras")]) == 1
    assert service.query("aardvarks").total == 0
    assert [r.document.text for r in service.query("zebras").results] == ["new words about zebras"]
    assert service.index([entity("Component", "ledger", description="new words about zebras")]) == 0
    assert service.remove("software-catalog", ["component:default/ledger", "component:default/nope"]) == 1
    assert service.query("zebras").total == 0 and service.query("ledger").total == 0


def test_replace_all_removes_stale_and_reports_progress(service: SearchService) -> None:
    service.index([entity("Component", f"old-{i}") for i in range(5)])
    service.index([page("/docs/x/", "Kept page", "other type is untouched")])
    progress: list[int] = []
    docs = (entity("Component", f"new-{i}") for i in range(7))
    stats = service.replace_all("software-catalog", docs, progress.append, batch=3)
    assert progress == [3, 6, 7] and stats.documents == 7 and stats.removed == 5
    assert service.count("software-catalog") == 7 and service.count("techdocs") == 1
    assert service.query("old").total == 0

    def broken() -> object:
        yield entity("Component", "new-0")
        raise RuntimeError("collator failed")

    with pytest.raises(RuntimeError):
        service.replace_all("software-catalog", broken())  # type: ignore[arg-type]
    assert service.count("software-catalog") == 7  # nothing removed after a failed reindex
    with pytest.raises(InputError, match="one type"):
        service.replace_all("software-catalog", [page("/docs/y/", "Wrong", "type")])


def test_highlights_escape_document_text(service: SearchService) -> None:
    service.index([SearchDocument(
        type="techdocs", location="/docs/default/component/x/",
        title='<script>alert("payments")</script> Payments & <b>co</b>',
        text="Before <img src=x onerror=alert(1)> payments " + "filler " * 200 + "end")])
    hl = service.query("payments").results[0].highlight
    assert hl is not None
    title, text = hl["fields"]["title"], hl["fields"]["text"]
    assert title == ('&lt;script&gt;alert(&quot;<mark>payments</mark>&quot;)&lt;/script&gt; '
                     '<mark>Payments</mark> &amp; &lt;b&gt;co&lt;/b&gt;')
    assert "<img" not in text and "onerror=alert(1)&gt; <mark>payments</mark>" in text
    assert text.endswith("…") and len(text) < 400  # a snippet, not the whole page


def test_visibility_hides_unreadable_results_and_fills_pages(engine: object) -> None:
    def no_secrets(principal: Caller | None, docs: Sequence[SearchDocument]) -> Sequence[SearchDocument]:
        return [d for d in docs if principal is not None or not d.name.startswith("secret")]

    service = SearchService(engine, visibility=no_secrets)  # type: ignore[arg-type]
    service.index([entity("Component", f"secret-{i}", description="alpha") for i in range(12)]
                  + [entity("Component", f"visible-{i}", description="alpha") for i in range(8)])
    first = service.query("alpha", page_limit=5)
    assert [r.document.name for r in first.results] == [f"visible-{i}" for i in range(5)]
    assert first.total is None  # a count would leak how many hidden documents matched
    second = service.query("alpha", page_limit=5, page_cursor=first.next_cursor)
    assert [r.document.name for r in second.results] == [f"visible-{i}" for i in range(5, 8)]
    assert second.next_cursor is None
    assert all(not s.document.name.startswith("secret") for s in service.suggest("secr"))


def test_suggest_prefers_names(indexed: SearchService) -> None:
    got = [r.document.title for r in indexed.suggest("paym", limit=3)]
    assert got == ["payments", "payments-db", "payments-ui"]
    assert [r.document.name for r in indexed.suggest("payments-a")] == ["payments-api"]
    assert indexed.suggest("") == []
    assert [r.document.title for r in indexed.suggest("runb")] == ["Runbook: restart"]
