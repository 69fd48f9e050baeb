"""Placeholders ($text, $json, $yaml, $openapi, $asyncapi) resolved before validation, inside the tree only."""

from __future__ import annotations

from pathlib import Path

import yaml

from greenroom.catalog.engine import DefaultReadPolicy, process_location
from greenroom.catalog.model import LocationSpec

API_HEAD = "apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata:\n  name: {name}\nspec:\n" \
    "  type: openapi\n  lifecycle: production\n  owner: team-a\n"


def _process(path: Path, policy=None, http=None, root=None):
    loc = LocationSpec("file", str(path))
    return process_location(loc, origin=loc, policy=policy or DefaultReadPolicy(), root=root, http=http)


def test_six_corpus_placeholder_apis_validate_after_substitution(corpus: Path, open_policy, fake_github) -> None:
    swagger = (corpus / "catalog/external/janus-idp__backstage-showcase/catalog-entities/apis/nexus-swagger.json")
    oas = (corpus / "catalog/backstage-examples/apis/petstore-webhook.oas.yaml").read_bytes()
    github = fake_github({
        "/APIs-guru/openapi-directory/blob/master/APIs/archive.org/search/1.0.0/openapi.yaml": oas,
        "/APIs-guru/openapi-directory/blob/dab6854d4d599aafb0eb36e6c7ae1fe0c37509b7/APIs/spotify.com/2021.4.2/openapi.yaml": oas,
        "/APIs-guru/openapi-directory/blob/main/APIs/archive.org/wayback/1.0.0/openapi.yaml": oas,
        "/redhat-developer/rhdh/blob/main/catalog-entities/apis/nexus-swagger.json": swagger.read_bytes(),
        "/OAI/OpenAPI-Specification/blob/main/tests/v3.0/pass/petstore.yaml": oas,
    })
    files = [corpus / "catalog/backstage-examples/apis" / n for n in
             ("wayback-search-api.yaml", "spotify-api.yaml", "wayback-archive-api.yaml", "petstore-webhook-api.yaml")]
    files += [corpus / "catalog/external/janus-idp__backstage-showcase/catalog-entities/apis" / n for n in
              ("nexus-repo-manager-3.yaml", "petstore.yaml")]
    with github.client() as http:
        for path in files:
            result = _process(path, policy=open_policy, http=http)
            assert not result.problems, result.problems[0].message
            [entity] = result.entities
            definition = entity.entity["spec"]["definition"]
            assert isinstance(definition, str) and len(definition) > 100
    assert len(github.requests) == 5
    # $openapi yields the document as YAML text.
    nexus = yaml.safe_load(_process(files[4], policy=open_policy, http=github.client()).entities[0].entity["spec"]["definition"])
    assert nexus["swagger"] == "2.0" and "paths" in nexus


def test_text_json_yaml_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/api.txt").write_text("hello: world\n")
    (tmp_path / "docs/extra.json").write_text('{"a": [1, 2]}')
    (tmp_path / "docs/extra.yaml").write_text("b: yes\n")
    (tmp_path / "api.yaml").write_text(
        API_HEAD.format(name="a") + "  definition:\n    $text: ./docs/api.txt\n"
        "  extra:\n    j:\n      $json: docs/extra.json\n    y:\n      $yaml: ./docs/extra.yaml\n"
        "    schema:\n      $ref: '#/definitions/x'\n"
    )
    [entity] = _process(tmp_path / "api.yaml").entities
    spec = entity.entity["spec"]
    assert spec["definition"] == "hello: world\n"
    assert spec["extra"]["j"] == {"a": [1, 2]} and spec["extra"]["y"] == {"b": "yes"}
    assert spec["extra"]["schema"] == {"$ref": "#/definitions/x"}  # not a placeholder: left alone


def test_placeholder_escaping_the_tree_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (tmp_path / "secret.txt").write_text("s3cret")
    (root / "api.yaml").write_text(API_HEAD.format(name="a") + "  definition:\n    $text: ../secret.txt\n")
    result = _process(root / "api.yaml")
    assert result.entities == []
    [problem] = result.problems
    assert problem.field == "spec.definition" and problem.entity_ref == "api:default/a"
    assert problem.message.startswith("api.yaml:9: api:default/a: spec.definition: Placeholder $text could not read")
    assert "outside the allowed tree" in problem.message and "s3cret" not in problem.message
    (root / "api.yaml").write_text(API_HEAD.format(name="a") + "  definition:\n    $text: /etc/passwd\n")
    assert _process(root / "api.yaml").entities == []


def test_placeholder_url_on_a_disallowed_host_makes_no_request(tmp_path: Path, local_server) -> None:
    server = local_server({"/api.yaml": b"openapi: 3.0.0\n"})
    (tmp_path / "api.yaml").write_text(API_HEAD.format(name="a") + f"  definition:\n    $text: {server.url('/api.yaml')}\n")
    result = _process(tmp_path / "api.yaml", policy=DefaultReadPolicy([{"host": "example.com"}]))
    assert result.entities == [] and "not listed in backend.reading.allow" in result.problems[0].message
    assert server.hits == []
    allowed = DefaultReadPolicy([{"host": "127.0.0.1"}])
    assert _process(tmp_path / "api.yaml", policy=allowed).entities[0].entity["spec"]["definition"] == "openapi: 3.0.0\n"


def test_openapi_bundles_relative_refs(tmp_path: Path) -> None:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas/pet.yaml").write_text("Pet:\n  type: object\n  properties:\n    tag:\n      $ref: '#/Tag'\nTag:\n  type: string\n")
    (tmp_path / "openapi.yaml").write_text(
        "openapi: 3.0.0\ninfo: {title: t, version: '1'}\npaths: {}\ncomponents:\n  schemas:\n"
        "    Pet:\n      $ref: './schemas/pet.yaml#/Pet'\n    Local:\n      $ref: '#/components/schemas/Pet'\n"
    )
    (tmp_path / "api.yaml").write_text(API_HEAD.format(name="a") + "  definition:\n    $openapi: ./openapi.yaml\n")
    [entity] = _process(tmp_path / "api.yaml").entities
    doc = yaml.safe_load(entity.entity["spec"]["definition"])
    assert doc["components"]["schemas"]["Pet"] == {"type": "object", "properties": {"tag": {"type": "string"}}}
    assert doc["components"]["schemas"]["Local"] == {"$ref": "#/components/schemas/Pet"}
    (tmp_path / "openapi.yaml").write_text("openapi: 3.0.0\nx:\n  $ref: '../../etc/passwd'\n")
    result = _process(tmp_path / "api.yaml")
    assert result.entities == [] and "outside the allowed tree" in result.problems[0].message


def test_yaml_placeholder_needs_exactly_one_document(tmp_path: Path) -> None:
    (tmp_path / "two.yaml").write_text("a: 1\n---\nb: 2\n")
    (tmp_path / "api.yaml").write_text(API_HEAD.format(name="a") + "  definition: x\n  extra:\n    $yaml: ./two.yaml\n")
    [problem] = _process(tmp_path / "api.yaml").problems
    assert "expected to find exactly one document of data at ./two.yaml, found 2" in problem.message
    assert problem.field == "spec.extra"
