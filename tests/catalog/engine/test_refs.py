"""Entity refs parse and print exactly like @backstage/catalog-model's parseEntityRef/stringifyEntityRef."""

from __future__ import annotations

import pytest

from greenroom.catalog.engine import parse_entity_ref, stringify_entity_ref
from greenroom.catalog.model import EntityName
from greenroom.core.errors import InputError


@pytest.mark.parametrize(
    ("ref", "kw", "expected"),
    [
        ("component:ns/name", {}, ("component", "ns", "name")),
        ("Component:NS/My-Name", {}, ("Component", "NS", "My-Name")),  # case preserved
        ("team-a", {"default_kind": "Group"}, ("Group", "default", "team-a")),
        ("default/team-a", {"default_kind": "Group"}, ("Group", "default", "team-a")),
        ("user:guest", {"default_kind": "Group"}, ("user", "default", "guest")),
        ("team-a", {"default_kind": "Group", "default_namespace": "devex"}, ("Group", "devex", "team-a")),
        ("devex/one-platform", {"default_kind": "System"}, ("System", "devex", "one-platform")),
        # A slash ahead of the colon: no kind, the rest is the name.
        ("ns/a:b", {"default_kind": "X"}, ("X", "ns", "a:b")),
        ("a:b:c", {}, ("a", "default", "b:c")),
        ("k:ns/a/b", {}, ("k", "ns", "a/b")),
        ({"kind": "API", "name": "petstore"}, {}, ("API", "default", "petstore")),
        ({"name": "x", "namespace": "n"}, {"default_kind": "Group"}, ("Group", "n", "x")),
    ],
)
def test_parse(ref, kw, expected) -> None:
    assert parse_entity_ref(ref, **kw) == EntityName(*expected)


@pytest.mark.parametrize(
    ("ref", "kw", "message"),
    [
        ("", {}, "Entity reference must not be empty"),
        ("component:", {}, 'Entity reference "component:" was not on the form [<kind>:][<namespace>/]<name>'),
        (":ns/name", {}, "was not on the form"),
        ("k:/name", {}, "was not on the form"),
        ("ns/", {"default_kind": "Group"}, "was not on the form"),
        ("foo", {}, 'Entity reference "foo" had missing or empty kind (e.g. did not start with "component:" or similar)'),
        ({"kind": "", "name": "x"}, {"default_kind": "Group"}, "had missing or empty kind"),
        ({"kind": "Group", "name": ""}, {}, "had missing or empty name"),
        ({"kind": "Group", "namespace": "", "name": "x"}, {}, "had missing or empty namespace"),
    ],
)
def test_parse_errors(ref, kw, message) -> None:
    with pytest.raises(InputError) as info:
        parse_entity_ref(ref, **kw)
    assert message in info.value.message


def test_stringify_is_lower_case_with_default_namespace() -> None:
    assert stringify_entity_ref(EntityName("Group", "Default", "Team-A")) == "group:default/team-a"
    assert stringify_entity_ref({"kind": "API", "name": "PetStore"}) == "api:default/petstore"
    entity = {"kind": "Component", "metadata": {"name": "X", "namespace": "Alt"}}
    assert stringify_entity_ref(entity) == "component:alt/x"
