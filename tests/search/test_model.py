"""Catalog entities as search documents."""

from __future__ import annotations

import pytest

from greenroom.search.model import SearchDocument, entity_document, entity_key


def test_entity_document_follows_backstage_collator_fields() -> None:
    doc = entity_document({
        "apiVersion": "backstage.io/v1alpha1", "kind": "Component",
        "metadata": {"name": "Petstore", "namespace": "Pets", "title": "Pet Store",
                     "description": "Sells pets", "tags": ["java", 3]},
        "spec": {"type": "service", "lifecycle": "production", "owner": "team-a"}})
    assert doc.type == "software-catalog"
    assert doc.location == "/catalog/pets/component/petstore"
    assert doc.key == doc.authorization == "component:pets/petstore"
    assert entity_key("Component", "Pets", "Petstore") == doc.key
    assert (doc.title, doc.text, doc.name) == ("Pet Store", "Sells pets", "Petstore")
    assert doc.fields == {"kind": "Component", "namespace": "Pets", "name": "Petstore", "type": "service",
                          "componentType": "service", "lifecycle": "production", "owner": "team-a",
                          "tags": ["java"]}
    body = doc.as_result()
    assert body["location"] == doc.location and "authorization" not in body


def test_user_document_uses_profile() -> None:
    doc = entity_document({"kind": "User", "metadata": {"name": "jdoe"},
                           "spec": {"profile": {"displayName": "Jane Doe", "email": "jd@example.com"}}})
    assert doc.title == "Jane Doe" and "jd@example.com" in doc.text
    assert doc.location == "/catalog/default/user/jdoe" and doc.fields["type"] == "other"


def test_unsafe_locations_and_broken_entities_are_refused() -> None:
    with pytest.raises(ValueError, match="location"):
        SearchDocument(type="techdocs", location="javascript:alert(1)", title="x")
    with pytest.raises(ValueError, match="metadata.name"):
        entity_document({"kind": "Component", "metadata": {}})
