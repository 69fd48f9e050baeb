"""Ranking a user would call right, on SQLite FTS5 and PostgreSQL full text."""

from __future__ import annotations

from greenroom.search.model import SearchDocument, entity_document
from greenroom.search.service import SearchService


def component(name: str, description: str = "", tags: list[str] | None = None, owner: str = "team-a",
              title: str | None = None) -> SearchDocument:
    meta: dict[str, object] = {"name": name, "description": description, "tags": tags or []}
    if title:
        meta["title"] = title
    return entity_document({"kind": "Component", "metadata": meta,
                            "spec": {"type": "service", "owner": owner, "lifecycle": "production"}})


def titles(service: SearchService, term: str, **kw: object) -> list[str]:
    return [r.document.title for r in service.query(term, **kw).results]  # type: ignore[arg-type]


def names(service: SearchService, term: str) -> list[str]:
    return [r.document.name for r in service.query(term).results]


def test_exact_name_first_then_prefix_then_text(service: SearchService) -> None:
    service.index([
        component("billing", "Takes payments, payments and more payments for payments"),
        component("payments-gateway", "Gateway"),
        component("payments", "Money in"),
        SearchDocument(type="techdocs", location="/docs/default/component/billing/payments/",
                       title="How payments work", text="payments payments payments"),
    ])
    assert names(service, "payments")[:2] == ["payments", "payments-gateway"]
    assert set(titles(service, "payments")) == {"billing", "payments-gateway", "payments",
                                                 "How payments work"}
    assert names(service, "Payments")[0] == "payments"  # case does not matter
    assert names(service, "paym")[:2] == ["payments", "payments-gateway"]


def test_stars_does_not_match_stores(service: SearchService) -> None:
    service.index([component("stars", "Counts stars of repositories"),
                   component("warehouse", "Keeps the stores stocked")])
    assert names(service, "stars") == ["stars"]
    assert names(service, "stores") == ["warehouse"]
    assert names(service, "star") == ["stars"]  # stemming, both ways
    assert names(service, "store") == ["warehouse"]


def test_stemming_without_absurd_fuzziness(service: SearchService) -> None:
    service.index([component("ingest", "processes events"), component("start-here", "start page"),
                   component("stars", "")])
    assert names(service, "processing") == ["ingest"]
    # "start" is one edit from "stars", but a real match exists, so no typo guessing happens.
    assert names(service, "stars") == ["stars"]
    assert names(service, "storez") == []  # two edits from "stores", one from nothing indexed


def test_field_boosts_name_title_keywords_text(service: SearchService) -> None:
    service.index([
        component("d-comp", "uses kafka for events"),
        component("c-comp", "nothing", tags=["kafka"]),
        component("b-comp", "nothing", title="Kafka Bridge"),
        component("kafka-a", "nothing"),
    ])
    assert names(service, "kafka") == ["kafka-a", "b-comp", "c-comp", "d-comp"]


def test_owner_is_searchable_below_name(service: SearchService) -> None:
    service.index([component("alpha", owner="team-orion"), component("orion", owner="team-b")])
    assert names(service, "orion") == ["orion", "alpha"]


def test_typo_falls_back_to_one_edit_only_when_nothing_matches(service: SearchService) -> None:
    service.index([component("payments", "Money in"), component("paymemts-typo", "sic")])
    # A word in the index is taken as typed: no fuzzy neighbours are mixed in.
    assert names(service, "payments")[0] == "payments"
    assert "paymemts-typo" not in names(service, "payments")
    page = service.query("paymnts")
    assert [r.document.name for r in page.results] == ["payments"]
    assert "<mark>payments</mark>" in (page.results[0].highlight or {})["fields"]["title"]
    assert names(service, "qzxwvj") == []
