"""Reading locations: safe bounded YAML, file trees, allowed hosts checked before any request."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from greenroom.catalog.engine import DefaultReadPolicy, process_location, read_documents
from greenroom.catalog.engine.yamlsafe import MAX_DEPTH, parse_yaml_documents
from greenroom.catalog.model import LocationSpec
from greenroom.core.errors import InputError, NotAllowedError, NotFoundError


def _file(tmp_path: Path, name: str, text: str) -> LocationSpec:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return LocationSpec("file", str(path))


def test_every_corpus_catalog_yaml_parses(corpus: Path) -> None:
    files = sorted(p for p in (corpus / "catalog").rglob("*") if p.suffix in (".yaml", ".yml"))
    assert len(files) > 90
    policy = DefaultReadPolicy()
    entities = 0
    for path in files:
        for doc in read_documents(LocationSpec("file", str(path)), policy, root=str(corpus)):
            entities += isinstance(doc.data, dict) and "kind" in doc.data
    assert entities == 116


def test_multi_document_with_leading_separator_and_line_numbers(tmp_path: Path) -> None:
    loc = _file(tmp_path, "a.yaml", "---\nkind: A\n---\n\n---\n# comment\nkind: B\nx: yes\nd: 2021-01-01\n")
    docs = read_documents(loc, DefaultReadPolicy(), root=str(tmp_path))
    assert [(d.data["kind"], d.line) for d in docs] == [("A", 2), ("B", 7)]
    # YAML 1.2 like Backstage's parser: yes and dates stay strings.
    assert docs[1].data["x"] == "yes" and docs[1].data["d"] == "2021-01-01"


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    loc = _file(tmp_path, "bad.yaml", "kind: A\nmetadata:\n  name: x\n  tags: [a, b\nspec: {}\n")
    with pytest.raises(InputError) as info:
        read_documents(loc, DefaultReadPolicy(), root=str(tmp_path))
    assert "bad.yaml:5:" in info.value.message and "malformed YAML" in info.value.message
    result = process_location(loc, origin=loc, policy=DefaultReadPolicy())
    assert result.unreadable and not result.entities
    assert result.problems[0].entity_ref is None and "bad.yaml:5" in result.problems[0].message


@pytest.mark.parametrize("tag", ["!!python/object/apply:os.system ['echo pwned']", "!!python/name:os.system", "!Ref x"])
def test_unsafe_tags_are_refused(tmp_path: Path, tag: str) -> None:
    loc = _file(tmp_path, "evil.yaml", f"kind: Component\nmetadata:\n  name: {tag}\n")
    with pytest.raises(InputError) as info:
        read_documents(loc, DefaultReadPolicy(), root=str(tmp_path))
    assert "evil.yaml:3" in info.value.message and "remove the tag" in info.value.message


def test_alias_bomb_is_refused_quickly() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    started = time.perf_counter()
    with pytest.raises(InputError) as info:
        parse_yaml_documents("\n".join(lines) + "\n", "bomb.yaml")
    assert time.perf_counter() - started < 2.0
    assert "bomb.yaml:1" in info.value.message and "aliases" in info.value.message


def test_recursive_alias_and_deep_nesting_are_refused() -> None:
    with pytest.raises(InputError, match="nested more than"):
        parse_yaml_documents("a: &a [*a]\n", "loop.yaml")
    deep = "a: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n"
    with pytest.raises(InputError, match=f"deep.yaml:1: document is nested more than {MAX_DEPTH}"):
        parse_yaml_documents(deep, "deep.yaml")
    very_deep = "[" * 200_000 + "]" * 200_000
    with pytest.raises(InputError):
        parse_yaml_documents(very_deep, "huge.yaml")


def test_oversized_and_missing_files(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with open(big, "wb") as f:
        f.write(b"# " + b"x" * (10 * 1024 * 1024) + b"\n")
    with pytest.raises(InputError, match="larger than 10 MiB"):
        read_documents(LocationSpec("file", str(big)), DefaultReadPolicy(), root=str(tmp_path))
    with pytest.raises(NotFoundError, match="missing.yaml: file not found"):
        read_documents(LocationSpec("file", str(tmp_path / "missing.yaml")), DefaultReadPolicy(), root=str(tmp_path))


def test_files_must_stay_inside_the_root_even_through_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = _file(tmp_path, "secret.yaml", "kind: Secret\n")
    root.mkdir()
    os.symlink(outside.target, root / "link.yaml")
    policy = DefaultReadPolicy()
    with pytest.raises(NotAllowedError, match="outside the allowed tree"):
        read_documents(LocationSpec("file", str(root / "link.yaml")), policy, root=str(root))
    with pytest.raises(NotAllowedError):
        read_documents(LocationSpec("file", str(root / ".." / "secret.yaml")), policy, root=str(root))


@pytest.mark.parametrize(
    ("rules", "url", "allowed"),
    [
        ([{"host": "example.com"}], "https://example.com/a.yaml", True),
        ([{"host": "example.com"}], "https://example.com:8443/a.yaml", True),
        ([{"host": "example.com"}], "https://evil.com/a.yaml", False),
        ([{"host": "example.com"}], "https://sub.example.com/a.yaml", False),
        ([{"host": "example.com:8080"}], "http://example.com:8080/a.yaml", True),
        ([{"host": "example.com:8080"}], "http://example.com/a.yaml", False),
        ([{"host": "*.example.com"}], "https://git.example.com/a.yaml", True),
        ([{"host": "*.example.com"}], "https://example.com/a.yaml", False),
        ([{"host": "*.example.com"}], "https://evilexample.com/a.yaml", False),
        ([], "http://portal.test:7007/api/x.yaml", True),  # the portal's own host
        ([], "file:///etc/passwd", False),
    ],
)
def test_allowed_hosts(rules, url, allowed) -> None:
    policy = DefaultReadPolicy(rules, own_base_url="http://portal.test:7007")
    if allowed:
        policy.check_url(url)
    else:
        with pytest.raises(NotAllowedError):
            policy.check_url(url)


def test_disallowed_host_is_refused_without_a_request(local_server) -> None:
    server = local_server({"/catalog.yaml": b"apiVersion: backstage.io/v1alpha1\nkind: Group\n"})
    loc = LocationSpec("url", server.url("/catalog.yaml"))
    result = process_location(loc, origin=loc, policy=DefaultReadPolicy([{"host": "example.com"}]))
    assert result.unreadable and not result.entities
    assert result.problems[0].name == "NotAllowedError" and "127.0.0.1" in result.problems[0].message
    assert server.hits == []


def test_url_read_and_redirect_to_a_disallowed_host(local_server) -> None:
    entity = b"apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: g\nspec:\n  type: team\n  children: []\n"
    server = local_server({"/ok.yaml": entity, "/secret.yaml": entity}, redirects={})
    server.redirects["/hop.yaml"] = f"http://localhost:{server.port}/secret.yaml"
    policy = DefaultReadPolicy([{"host": "127.0.0.1"}])
    ok = LocationSpec("url", server.url("/ok.yaml"))
    result = process_location(ok, origin=ok, policy=policy)
    assert [e.ref for e in result.entities] == ["group:default/g"]
    annotations = result.entities[0].entity["metadata"]["annotations"]
    assert annotations["backstage.io/managed-by-location"] == f"url:{server.url('/ok.yaml')}"
    assert annotations["backstage.io/view-url"] == server.url("/ok.yaml")
    hop = LocationSpec("url", server.url("/hop.yaml"))
    result = process_location(hop, origin=hop, policy=policy)
    assert result.unreadable and "localhost" in result.problems[0].message
    assert "/secret.yaml" not in server.hits
    missing = LocationSpec("url", server.url("/nope.yaml"))
    result = process_location(missing, origin=missing, policy=policy)
    assert result.unreadable and result.problems[0].name == "NotFoundError"
