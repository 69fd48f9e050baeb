"""Bad input never gives a 5xx, a hang or a crash, on any HTTP surface of a running portal.

Two halves, both against a real server loaded with Backstage's example catalog (all.yaml and
acme-corp.yaml), a forge repository with a commit and a stored docs site:

* a bounded, deterministic schemathesis run over the served OpenAPI document
  (``/api/openapi.json``) with the ``not_a_server_error`` and response-time checks;
* hand-crafted requests a schema can't express, sent as raw bytes on a socket (so nothing in a
  client library tidies them up): repeated query arrays, 1 MB query strings, 100k-level JSON,
  huge arrays, invalid UTF-8 and NUL in paths, path traversal in every path parameter of every
  route, unknown methods, very long headers, and concurrent location writes.

Every answer must be a 4xx with Backstage's error body under ``/api/`` (or a 2xx where the input
is fine), in bounded time, and the server must still answer ``/healthz`` afterwards. Requests
that uvicorn itself refuses before the app sees them (a request line over 64 KiB, raw non-ASCII
bytes in the target, an unknown method) get uvicorn's plain ``400``: still a 4xx, no body shape.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from greenroom.techdocs.model import EntityTriple
from tests.conftest import CORPUS, TOKEN, Server, database, make_settings

EXAMPLES = CORPUS / "catalog" / "backstage-examples"
AUTH = (b"Authorization", f"Bearer {TOKEN}".encode())
JSON = (b"Content-Type", b"application/json")
SLOW_S = 5.0  # a single answer slower than this counts as a hang


# --- a raw HTTP/1.1 client ----------------------------------------------------------------------

@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


def send(port: int, method: bytes, target: bytes, headers: Sequence[tuple[bytes, bytes]] = (AUTH,),
         body: bytes = b"", timeout: float = 60.0) -> Answer:
    """One request exactly as given (no encoding, no validation), ``Connection: close``."""
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close",
             *(k + b": " + v for k, v in headers)]
    if body or method in (b"POST", b"PUT", b"PATCH"):
        lines.append(b"Content-Length: " + str(len(body)).encode())
    started = time.monotonic()
    chunks: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before we finished sending; its answer is still there to read
        while True:
            try:
                data = s.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            chunks.append(data)
    seconds = time.monotonic() - started
    raw = b"".join(chunks)
    assert raw, f"{method!r} {target[:120]!r}: the server closed the connection without answering"
    head, _, rest = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.split(b"\r\n")
    found: dict[str, str] = {}
    for line in header_lines:
        key, _, value = line.partition(b":")
        found[key.strip().lower().decode()] = value.strip().decode("latin-1")
    if found.get("transfer-encoding") == "chunked":
        out = b""
        while rest:
            size, _, rest = rest.partition(b"\r\n")
            n = int(size, 16)
            if n == 0:
                break
            out, rest = out + rest[:n], rest[n + 2:]
        rest = out
    return Answer(int(status_line.split()[1]), found, rest, seconds)


def check(answer: Answer, target: bytes, expect: str = "4xx", method: bytes = b"GET") -> None:
    """``expect``: "4xx" (Backstage's body under /api/ unless uvicorn refused the request),
    "2xx", or "ok" (any answer below 500). Always: no 5xx, no hang."""
    where = f"{method.decode(errors='replace')} {target[:150]!r}"
    assert answer.status < 500, f"{where}: {answer.status} {answer.body[:400]!r}"
    assert answer.seconds < SLOW_S, f"{where}: took {answer.seconds:.1f}s"
    if expect == "2xx":
        assert 200 <= answer.status < 300, f"{where}: {answer.status} {answer.body[:300]!r}"
    elif expect == "4xx":
        assert 400 <= answer.status < 500, f"{where}: {answer.status} {answer.body[:300]!r}"
        if target.startswith(b"/api/") and answer.body != b"Invalid HTTP request received.":
            assert_backstage_error(answer, method, answer.status)


def assert_backstage_error(answer: Answer, method: bytes, status: int) -> None:
    body = answer.json()
    assert set(body) >= {"error", "request", "response"}, body
    assert isinstance(body["error"]["name"], str) and body["error"]["name"], body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    assert body["request"]["method"] == method.decode(), body
    assert isinstance(body["request"]["url"], str), body
    assert body["response"]["statusCode"] == status, body


# --- the portal under attack --------------------------------------------------------------------

@dataclass
class Target:
    server: Server
    port: int
    location_ids: list[str]


def _start(kind: str, directory: Path) -> Iterator[Target]:
    for db in database(kind, directory):
        server = Server(make_settings(directory, db))
        try:
            ids = []
            for name in ("all.yaml", "acme-corp.yaml"):
                r = server.client.post("/api/catalog/locations",
                                       json={"type": "file", "target": str(EXAMPLES / name)})
                assert r.status_code == 201, r.text
                ids.append(r.json()["location"]["id"])
            forge = server.portal.services["forge"]
            forge.create_repository("acme", "demo")
            tree = directory / "tree"
            (tree / "docs" / "sub").mkdir(parents=True)
            (tree / "README.md").write_text("# Demo\n")
            (tree / "docs" / "sub" / "a.md").write_text("a\n")
            forge.push_directory("acme", "demo", tree, "first")
            site = directory / "site"
            (site / "sub").mkdir(parents=True)
            (site / "index.html").write_text("<h1>petstore</h1>")
            (site / "sub" / "index.html").write_text("<p>sub</p>")
            server.portal.services["techdocs"].storage.put_site(
                EntityTriple("default", "component", "petstore"), site)
            yield Target(server, server.port, ids)
        finally:
            server.stop()


@pytest.fixture(scope="module", params=["sqlite", "pg"])
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    yield from _start(request.param, tmp_path_factory.mktemp(f"hostile-{request.param}"))


@pytest.fixture(autouse=True)
def still_alive(request: pytest.FixtureRequest) -> Iterator[None]:
    """After every test the portal still answers its health check, promptly."""
    yield
    if "target" in request.fixturenames:
        t: Target = request.getfixturevalue("target")
        assert httpx.get(f"{t.server.url}/healthz", timeout=10).status_code == 200


# --- repeated and oversized query strings -------------------------------------------------------

def _repeat(key: str, value: str, n: int) -> bytes:
    return "&".join([f"{key}={value}"] * n).encode()


def _distinct(template: str, n: int) -> bytes:
    return "&".join(template.format(i) for i in range(n)).encode()


QUERY_CASES: list[tuple[str, bytes, str]] = [
    # 10k repetitions: past uvicorn's 64 KiB request line, refused before the app
    *[(f"10k filter {p}", p.encode() + b"?" + _repeat("filter", "kind=component", 10_000), "4xx")
      for p in ("/api/catalog/entities", "/api/catalog/entities/by-query", "/api/catalog/entity-facets")],
    ("10k types", b"/api/search/query?" + _repeat("types", "software-catalog", 10_000), "4xx"),
    # as many as fit under the limit: the app's own bounds answer
    ("4k filter params", b"/api/catalog/entities/by-query?" + _repeat("filter", "kind=c", 4000), "4xx"),
    ("4k filter params, legacy list", b"/api/catalog/entities?" + _repeat("filter", "kind=c", 4000), "4xx"),
    ("4k filter params, facets", b"/api/catalog/entity-facets?facet=kind&" + _repeat("filter", "kind=c", 4000),
     "4xx"),
    ("3k keys in one filter", b"/api/catalog/entities/by-query?filter="
     + ",".join(f"metadata.k{i}=v" for i in range(3000)).encode(), "4xx"),
    ("2k orderField", b"/api/catalog/entities/by-query?" + _repeat("orderField", "metadata.name,asc", 2000), "4xx"),
    ("2k legacy order", b"/api/catalog/entities?" + _repeat("order", "asc:metadata.name", 2000), "4xx"),
    ("4k fields", b"/api/catalog/entities/by-query?" + _distinct("fields=k{}", 4000), "2xx"),
    ("2k facets", b"/api/catalog/entity-facets?" + _distinct("facet=metadata.k{}", 2000), "2xx"),
    ("5k search types", b"/api/search/query?" + _distinct("types=t{}", 5000), "2xx"),
    ("4k search facets", b"/api/search/facets?" + _distinct("facet=f{}", 4000), "2xx"),
    ("3k search filters", b"/api/search/query?" + _distinct("filters[f{}]=x", 3000), "ok"),
    ("2k scaffolder createdBy", b"/api/scaffolder/v2/tasks?" + _distinct("createdBy=user:default/u{}", 2000),
     "2xx"),
    ("1k kind chips on the catalog page", b"/catalog?" + _distinct("kind=c{}", 1000), "4xx"),
    ("3k owner chips on the search page", b"/search?q=a&" + _distinct("owner=o{}", 3000), "ok"),
    # 1 MB values: refused by uvicorn
    *[(f"1MB {p}", p.encode() + b"a" * (1 << 20), "4xx") for p in (
        "/api/catalog/entities/by-query?fullTextFilterTerm=", "/api/search/query?term=",
        "/api/catalog/entities/by-query?cursor=", "/api/forge/repositories/acme/demo/commits?cursor=",
        "/catalog?q=", "/api/catalog/entities/by-name/component/default/")],
    # 60 KB values: within the limit, so the app answers
    *[(f"60KB {p}", p.encode() + b"a" * 60_000, expect) for p, expect in (
        ("/api/catalog/entities/by-query?fullTextFilterTerm=", "4xx"), ("/api/search/query?term=", "2xx"),
        ("/api/catalog/entities/by-query?filter=metadata.name=", "2xx"),
        ("/api/catalog/entities?filter=metadata.description=", "2xx"),
        ("/api/search/suggest?term=", "2xx"), ("/api/catalog/entities/by-query?cursor=", "4xx"),
        ("/api/catalog/entities?after=", "4xx"), ("/api/search/query?pageCursor=", "4xx"),
        ("/api/forge/repositories/acme/demo/commits?cursor=", "4xx"),
        ("/api/catalog/entities/by-name/component/default/", "4xx"),
        ("/api/techdocs/static/docs/default/component/petstore/", "4xx"), ("/catalog?q=", "2xx"),
        ("/search?q=", "2xx"), ("/docs?q=", "2xx"), ("/static/", "4xx"))],
    ("search term of operators", b"/api/search/query?term=" + b"%22(a%20OR%20b)%20NEAR%20*%20" * 1500, "2xx"),
    ("search term of quotes", b"/api/search/query?term=" + b"%22" * 20_000, "2xx"),
    ("LIKE wildcards", b"/api/catalog/entities/by-query?fullTextFilterTerm=%25%5f%5c" + b"%25" * 990, "2xx"),
    # numbers past every integer type
    ("offset 2^63", b"/api/catalog/entities/by-query?offset=9223372036854775808", "4xx"),
    ("offset 10^20 legacy", b"/api/catalog/entities?offset=99999999999999999999", "4xx"),
    ("offset of 5000 digits", b"/api/catalog/entities?offset=" + b"9" * 5000, "4xx"),
    ("limit of 5000 digits", b"/api/catalog/entities?limit=" + b"9" * 5000, "4xx"),
    ("pageLimit 10^23", b"/api/search/query?pageLimit=99999999999999999999999", "4xx"),
    ("scaffolder limit 10^20", b"/api/scaffolder/v2/tasks?limit=99999999999999999999", "4xx"),
    ("forge commits limit 10^23", b"/api/forge/repositories/acme/demo/commits?limit=99999999999999999999999",
     "4xx"),
    # NUL and bytes that are not UTF-8, percent-encoded
    ("NUL in filter", b"/api/catalog/entities?filter=kind=%00", "4xx"),
    ("NUL in a page query", b"/catalog?q=%00", "4xx"),
    ("NUL in a path", b"/api/catalog/entities/by-uid/a%00b", "4xx"),
    ("NUL in limit", b"/api/catalog/entities?limit=%00", "4xx"),
    ("invalid UTF-8 in term", b"/api/search/query?term=%ff%fe", "2xx"),
    ("invalid UTF-8 in filter key", b"/api/search/query?filters[%ff]=x", "2xx"),
    ("surrogate in cursor", b"/api/search/query?pageCursor=%ed%a0%80", "4xx"),
    ("non-ASCII forge cursor", b"/api/forge/repositories/acme/demo/commits?cursor=%C3%87%08", "4xx"),
    ("non-ASCII forge cursor, page", b"/forge/acme/demo/commits?cursor=%C3%87", "ok"),
    # raw bytes that are not ASCII: refused by uvicorn
    ("raw 0xff in query", b"/api/search/query?term=\xff", "4xx"),
    ("raw bytes in path", b"/api/catalog/entities/by-name/\xff/\xfe/\x80", "4xx"),
]


@pytest.mark.parametrize(("target_bytes", "expect"), [(t, e) for _, t, e in QUERY_CASES],
                         ids=[name for name, _, _ in QUERY_CASES])
def test_hostile_query_strings(target: Target, target_bytes: bytes, expect: str) -> None:
    check(send(target.port, b"GET", target_bytes), target_bytes, expect)


# --- hostile JSON bodies ------------------------------------------------------------------------

POSTS = ["/api/catalog/entities/by-query", "/api/catalog/entities/by-refs", "/api/catalog/entity-facets",
         "/api/catalog/refresh", "/api/catalog/validate-entity", "/api/catalog/locations",
         "/api/catalog/locations/by-query", "/api/catalog/analyze-location", "/api/scaffolder/v2/tasks",
         "/api/scaffolder/v2/dry-run", "/api/scaffolder/v2/tasks/x/retry", "/api/forge/repositories"]
DEEP = 100_000


def _nest(n: int, open_: str, close: str, core: str = "1") -> bytes:
    return (open_ * n + core + close * n).encode()


def _all_of_any(n: int) -> bytes:
    return json.dumps({"query": {"$all": [{"$any": [{"kind": "component"}, {"kind": "api"}]}] * n}}).encode()


SUR = '"x\\ud800y"'  # an unpaired surrogate, as JSON may spell it
VALID_COMPONENT = {"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": {"name": "ok"},
                   "spec": {"type": "service", "owner": "team-a", "lifecycle": "production"}}

BODY_CASES: list[tuple[str, str, bytes, str]] = [
    *[(f"100k-deep array {p}", p, _nest(DEEP, "[", "]", ""), "4xx") for p in POSTS],
    *[(f"100k-deep object {p}", p, _nest(DEEP, '{"a":', "}"), "4xx") for p in POSTS],
    ("$all of 30 two-way $any (2^30 alternatives)", "/api/catalog/entities/by-query", _all_of_any(30), "4xx"),
    ("facets, $all of 14 two-way $any", "/api/catalog/entity-facets",
     json.dumps({"facets": ["kind"], "query": json.loads(_all_of_any(14))["query"]}).encode(), "4xx"),
    ("$any of 10k", "/api/catalog/entities/by-query",
     json.dumps({"query": {"$any": [{"metadata.name": f"n{i}"} for i in range(10_000)]}}).encode(), "4xx"),
    ("10k keys", "/api/catalog/entities/by-query",
     json.dumps({"query": {f"metadata.k{i}": "v" for i in range(10_000)}}).encode(), "4xx"),
    ("$all 200 deep", "/api/catalog/entities/by-query",
     b'{"query":' + _nest(200, '{"$all":[', "]}", "{}") + b"}", "4xx"),
    ("$in of 100k", "/api/catalog/entities/by-query",
     json.dumps({"query": {"metadata.name": {"$in": [f"n{i}" for i in range(100_000)]}}}).encode(), "4xx"),
    ("$in of 10k", "/api/catalog/entities/by-query",
     json.dumps({"query": {"metadata.name": {"$in": [f"n{i}" for i in range(10_000)]}}}).encode(), "2xx"),
    ("NUL in by-refs", "/api/catalog/entities/by-refs", b'{"entityRefs":["component:default/a\\u0000b"]}', "ok"),
    ("NUL in a query value", "/api/catalog/entities/by-query", b'{"query":{"kind":"a\\u0000"}}', "ok"),
    ("NUL in a location target", "/api/catalog/locations?dryRun=true",
     b'{"type":"url","target":"https://example.com/\\u0000.yaml"}', "4xx"),
    ("$all not an array", "/api/catalog/entities/by-query", b'{"query":{"$all":5}}', "4xx"),
    ("$any a string", "/api/catalog/entities/by-query", b'{"query":{"$any":"ab"}}', "4xx"),
    ("$in not an array", "/api/catalog/entities/by-query", b'{"query":{"kind":{"$in":5}}}', "4xx"),
    ("orderBy a number", "/api/catalog/entities/by-query", b'{"orderBy":5}', "4xx"),
    ("orderBy strings", "/api/catalog/entities/by-query", b'{"orderBy":["ab"]}', "4xx"),
    ("orderBy 10k", "/api/catalog/entities/by-query",
     json.dumps({"orderBy": [{"field": f"metadata.k{i}", "order": "asc"} for i in range(10_000)]}).encode(), "4xx"),
    ("fullTextFilter a string", "/api/catalog/entities/by-query", b'{"fullTextFilter":"abc"}', "4xx"),
    ("fullTextFilter term of 60k", "/api/catalog/entities/by-query",
     json.dumps({"fullTextFilter": {"term": "a" * 60_000}}).encode(), "4xx"),
    ("fullTextFilter fields numbers", "/api/catalog/entities/by-query",
     b'{"fullTextFilter":{"term":"a","fields":[1,2]}}', "4xx"),
    ("fields numbers", "/api/catalog/entities/by-query", b'{"fields":[1,{"a":1}]}', "4xx"),
    ("by-refs fields numbers", "/api/catalog/entities/by-refs",
     b'{"entityRefs":["component:default/petstore"],"fields":[1,null]}', "4xx"),
    ("limit Infinity", "/api/catalog/entities/by-query", b'{"limit": Infinity}', "4xx"),
    ("limit NaN", "/api/catalog/entities/by-query", b'{"limit": NaN}', "4xx"),
    ("offset 10^23", "/api/catalog/entities/by-query", b'{"offset": 99999999999999999999999}', "4xx"),
    ("limit of 5000 digits", "/api/catalog/entities/by-query", b'{"limit": ' + b"9" * 5000 + b"}", "4xx"),
    ("by-refs 1M refs", "/api/catalog/entities/by-refs",
     json.dumps({"entityRefs": [f"component:default/n{i}" for i in range(1_000_000)]}).encode(), "4xx"),
    ("by-refs 10k long refs", "/api/catalog/entities/by-refs",
     json.dumps({"entityRefs": ["component:default/" + "x" * 1000 + str(i) for i in range(10_000)]}).encode(),
     "2xx"),
    ("by-refs malformed refs", "/api/catalog/entities/by-refs",
     json.dumps({"entityRefs": ["", ":", "/", "a:b:c/d/e", "component:", "x" * 100_000]}).encode(), "2xx"),
    ("locations cursor negative", "/api/catalog/locations/by-query", b'{"cursor":"LTU"}', "4xx"),
    ("locations cursor not ASCII", "/api/catalog/locations/by-query", '{"cursor":"\u00e9"}'.encode(), "4xx"),
    ("body a list", "/api/catalog/entities/by-query", b"[1,2]", "4xx"),
    ("body not UTF-8", "/api/catalog/entities/by-query", b'{"a":"\xff"}', "4xx"),
    ("surrogate in by-refs", "/api/catalog/entities/by-refs", b'{"entityRefs":[' + SUR.encode() + b"]}", "ok"),
    ("surrogate in query", "/api/catalog/entities/by-query", b'{"query":{"kind":' + SUR.encode() + b"}}", "4xx"),
    ("surrogate in a location", "/api/catalog/locations",
     b'{"type":"file","target":"/tmp/\\ud800.yaml"}', "4xx"),
    ("surrogate in an entity", "/api/catalog/validate-entity",
     json.dumps({"location": "url:https://example.com/x.yaml", "entity": VALID_COMPONENT}).encode()
     .replace(b'"ok"', SUR.encode()), "4xx"),
    ("surrogate in a repository description", "/api/forge/repositories",
     b'{"org":"acme","name":"sur","description":' + SUR.encode() + b"}", "4xx"),
    ("file location outside any catalog", "/api/catalog/locations?dryRun=true",
     b'{"type":"file","target":"/etc"}', "4xx"),
    ("file location of an endless device", "/api/catalog/locations?dryRun=true",
     b'{"type":"file","target":"/dev/zero"}', "4xx"),
    ("url location with a bad port", "/api/catalog/locations?dryRun=true",
     b'{"type":"url","target":"http://127.0.0.1:99999/x"}', "4xx"),
    ("url location with a broken IPv6 host", "/api/catalog/locations?dryRun=true",
     b'{"type":"url","target":"http://[::1"}', "4xx"),
    pytest.param("entity nested 900 deep", "/api/catalog/validate-entity",
                 b'{"location":"url:https://example.com/x.yaml","entity":{"apiVersion":"backstage.io/v1alpha1",'
                 b'"kind":"Component","metadata":{"name":"x"},"spec":' + _nest(900, '{"a":', "}") + b"}}", "4xx"),
    ("forge repository named ..", "/api/forge/repositories",
     b'{"org":"../..","name":"..","defaultBranch":"-x --upload-pack=touch /tmp/pwn"}', "4xx"),
    ("dry-run writes outside its directory", "/api/scaffolder/v2/dry-run", json.dumps(
        {"template": {"apiVersion": "scaffolder.backstage.io/v1beta3", "kind": "Template",
                      "metadata": {"name": "x"}, "spec": {"steps": []}},
         "values": {}, "directoryContents": [{"path": "../../../etc/x", "base64Content": "eA=="}]}).encode(), "4xx"),
]


def _body_param(case: Any) -> Any:
    if hasattr(case, "values"):  # a pytest.param with marks
        name, path, body, expect = case.values
        return pytest.param(path, body, expect, id=name, marks=case.marks)
    name, path, body, expect = case
    return pytest.param(path, body, expect, id=name)


@pytest.mark.parametrize(("path", "body", "expect"), [_body_param(c) for c in BODY_CASES])
def test_hostile_json_bodies(target: Target, path: str, body: bytes, expect: str) -> None:
    answer = send(target.port, b"POST", path.encode(), (AUTH, JSON), body)
    check(answer, path.encode(), expect, b"POST")


def test_a_refused_repository_leaves_nothing_behind(target: Target) -> None:
    body = b'{"org":"acme","name":"half","description":' + SUR.encode() + b"}"
    check(send(target.port, b"POST", b"/api/forge/repositories", (AUTH, JSON), body),
          b"/api/forge/repositories", "4xx", b"POST")
    assert target.server.client.get("/api/forge/repositories/acme/half").status_code == 404


def test_dry_run_file_count_is_bounded(target: Target) -> None:
    body = json.dumps({"template": {"apiVersion": "scaffolder.backstage.io/v1beta3", "kind": "Template",
                                    "metadata": {"name": "x"}, "spec": {"steps": []}},
                       "values": {}, "directoryContents": [{"path": f"f{i}", "base64Content": ""}
                                                           for i in range(20_000)]}).encode()
    check(send(target.port, b"POST", b"/api/scaffolder/v2/dry-run", (AUTH, JSON), body),
          b"/api/scaffolder/v2/dry-run", "4xx", b"POST")


def test_catalog_refuses_a_yaml_alias_bomb(target: Target, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: bomb\nspec:\n"
                    "  a0: &a0 [x, x, x, x, x, x, x, x, x]\n"
                    + "".join(f"  a{i + 1}: &a{i + 1} [{', '.join([f'*a{i}'] * 9)}]\n" for i in range(8)))
    body = json.dumps({"type": "file", "target": str(bomb)}).encode()
    check(send(target.port, b"POST", b"/api/catalog/locations?dryRun=true", (AUTH, JSON), body),
          b"/api/catalog/locations", "4xx", b"POST")


def test_template_editor_refuses_a_yaml_alias_bomb(target: Target) -> None:
    """Nine aliases of nine aliases, eight deep: 43 million values from a dozen lines."""
    bomb = ("apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata:\n  name: bomb\n"
            "spec:\n  steps: []\n  a0: &a0 [x, x, x, x, x, x, x, x, x]\n"
            + "".join(f"  a{i + 1}: &a{i + 1} [{', '.join([f'*a{i}'] * 9)}]\n" for i in range(8)))
    url = target.server.url
    with httpx.Client(base_url=url, timeout=30, headers={"Origin": url}) as browser:
        assert browser.post("/signin/token", data={"token": TOKEN}).status_code == 303
        started = time.monotonic()
        page = browser.post("/create/edit", data={"text": bomb, "values": "{}"})
    assert time.monotonic() - started < SLOW_S
    assert page.status_code == 400 and "aliases" in page.text


# --- headers ------------------------------------------------------------------------------------

MB = 1 << 20
HEADER_CASES: list[tuple[str, bytes, list[tuple[bytes, bytes]], str]] = [
    ("1 MB bearer token", b"/api/catalog/entities?limit=1", [(b"Authorization", b"Bearer " + b"t" * MB)], "4xx"),
    ("1 MB basic credentials", b"/api/catalog/entities?limit=1", [(b"Authorization", b"Basic " + b"dA" * (MB // 2))],
     "4xx"),
    ("basic credentials not UTF-8", b"/api/catalog/entities?limit=1", [(b"Authorization", b"Basic /w==")], "4xx"),
    ("authorization not ASCII", b"/api/catalog/entities?limit=1", [(b"Authorization", b"Bearer \xff\xfe")], "4xx"),
    ("scheme without token", b"/api/catalog/entities?limit=1", [(b"Authorization", b"Bearer")], "4xx"),
    ("git with credentials not UTF-8", b"/git/acme/demo.git/info/refs?service=git-upload-pack",
     [(b"Authorization", b"Basic /w==")], "4xx"),
    ("1 MB session cookie", b"/", [(b"Cookie", b"greenroom_session=" + b"c" * MB)], "ok"),
    ("garbage cookie", b"/api/catalog/entities?limit=1", [(b"Cookie", b"greenroom_session=\xff\xfe; ;;=;")], "4xx"),
    ("1 MB Accept", b"/api/catalog/entities?limit=1", [AUTH, (b"Accept", b"a" * MB)], "2xx"),
    ("1 MB Last-Event-ID", b"/api/scaffolder/v2/tasks/x/eventstream", [AUTH, (b"Last-Event-ID", b"9" * MB)], "4xx"),
    ("Last-Event-ID of digits that are not ASCII", b"/api/scaffolder/v2/tasks/x/eventstream",
     [AUTH, (b"Last-Event-ID", "\u00b2\u00b3".encode())], "4xx"),
    ("5k headers", b"/api/catalog/entities?limit=1", [AUTH, *[(f"X-H{i}".encode(), b"v") for i in range(5000)]],
     "2xx"),
    ("charset that does not exist", b"/api/catalog/entities/by-query",
     [AUTH, (b"Content-Type", b"application/json; charset=bogus")], "2xx"),
    ("form body to a JSON route", b"/api/catalog/entities/by-query",
     [AUTH, (b"Content-Type", b"application/x-www-form-urlencoded")], "4xx"),
    ("multipart without parts", b"/api/catalog/entities/by-query",
     [AUTH, (b"Content-Type", b"multipart/form-data; boundary=x")], "4xx"),
]


@pytest.mark.parametrize(("target_bytes", "headers", "expect"), [(t, h, e) for _, t, h, e in HEADER_CASES],
                         ids=[name for name, _, _, _ in HEADER_CASES])
def test_hostile_headers(target: Target, target_bytes: bytes, headers: list[tuple[bytes, bytes]],
                         expect: str) -> None:
    method = b"POST" if target_bytes.endswith(b"by-query") else b"GET"
    body = b"a=b" if b"form" in b"".join(v for _, v in headers) else (b"{}" if method == b"POST" else b"")
    check(send(target.port, method, target_bytes, headers, body), target_bytes, expect, method)


@pytest.mark.parametrize("request_id", [b"r" * MB, "\u00e9\u65e5".encode(), b"a b", b"x" * 129],
                         ids=["1 MB", "not ASCII", "space", "129 chars"])
def test_a_hostile_request_id_is_replaced_not_echoed(target: Target, request_id: bytes) -> None:
    answer = send(target.port, b"GET", b"/api/catalog/entities?limit=1", [AUTH, (b"X-Request-Id", request_id)])
    check(answer, b"/api/catalog/entities", "2xx")
    assert re.fullmatch(r"[0-9a-f]{16}", answer.headers["x-request-id"]), answer.headers["x-request-id"][:80]


def test_a_plain_request_id_is_kept(target: Target) -> None:
    answer = send(target.port, b"GET", b"/api/catalog/entities?limit=1", [AUTH, (b"X-Request-Id", b"trace-1.2:3")])
    assert answer.headers["x-request-id"] == "trace-1.2:3"


# --- every path parameter of every route --------------------------------------------------------

# Routes outside the OpenAPI document (pages, git, static files), with their methods.
UNLISTED = [("GET", "/catalog/{namespace}/{kind}/{name}"), ("GET", "/catalog/{namespace}/{kind}/{name}/definition"),
            ("POST", "/catalog/{namespace}/{kind}/{name}/delete"), ("POST", "/locations/{location_id}/refresh"),
            ("GET", "/locations/{location_id}/unregister"), ("GET", "/docs/{namespace}/{kind}/{name}"),
            ("POST", "/docs/{namespace}/{kind}/{name}/rebuild"), ("GET", "/docs/{namespace}/{kind}/{name}/{path}"),
            ("GET", "/forge/{org}/{repo}"), ("GET", "/forge/{org}/{repo}/tree/{ref_and_path}"),
            ("GET", "/forge/{org}/{repo}/blob/{ref_and_path}"), ("GET", "/forge/{org}/{repo}/commits"),
            ("GET", "/static/{path}"), ("GET", "/git/{org}/{repo}/raw/{ref_and_path}"),
            ("GET", "/git/{org}/{repo}.git/{service_path}"), ("POST", "/git/{org}/{repo}.git/{service_path}")]
# Real values for the parameters not under attack, so the hostile one reaches the handler.
REAL = {"kind": "component", "namespace": "default", "name": "petstore", "org": "acme", "repo": "demo",
        "ref_and_path": "main/README.md", "path": "index.html", "uid": "x", "location_id": "x",
        "taskId": "x", "task_id": "x", "provider": "a", "resource": "b", "service_path": "info/refs"}
HOSTILE_SEGMENTS = {
    "dotdot": b"..", "encoded dotdot": b"%2e%2e", "traversal": b"..%2f..%2f..%2fetc%2fpasswd",
    "encoded traversal": b"%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd", "double-encoded": b"%252e%252e%252fetc",
    "backslashes": b"..%5c..%5cetc%5cpasswd", "NUL": b"%00", "NUL inside": b"a%00b",
    "invalid UTF-8": b"%ff%fe", "overlong dot": b"%c0%ae%c0%ae", "surrogate": b"%ed%a0%80",
    "CRLF": b"%0d%0aX-Injected:%201", "10k chars": b"a" * 10_000, "space": b"%20", "dot": b".",
    "absolute": b"%2fetc%2fpasswd",
}
LEAKS = (b"root:x:0:0", b"def create_app", b"[core]\n")  # /etc/passwd, our source, a git config


def _routes(server: Server) -> list[tuple[str, str]]:
    spec = server.client.get("/api/openapi.json").json()
    listed = [(m.upper(), p) for p, ops in spec["paths"].items() for m in ops]
    return [(m, p) for m, p in listed + UNLISTED if "{" in p]


@pytest.mark.parametrize("segment", list(HOSTILE_SEGMENTS.values()), ids=list(HOSTILE_SEGMENTS))
def test_hostile_path_parameters(target: Target, segment: bytes) -> None:
    problems = []
    for method, template in _routes(target.server):
        params = re.findall(r"{(\w+)}", template)
        for attacked in params:
            path = template.encode()
            for p in params:
                path = path.replace(f"{{{p}}}".encode(), segment if p == attacked else REAL[p].encode())
            answer = send(target.port, method.encode(), path, (AUTH, JSON), b"{}" if method in ("POST", "PUT") else b"")
            try:
                check(answer, path, "ok", method.encode())
                if path.startswith(b"/api/") and answer.status >= 400:
                    assert_backstage_error(answer, method.encode(), answer.status)
                assert not any(leak in answer.body for leak in LEAKS), f"{method} {path[:120]!r} leaked a file"
                assert "x-injected" not in answer.headers, f"{method} {path[:120]!r} split the response"
            except AssertionError as e:
                problems.append(f"{attacked}: {e}")
    assert not problems, "\n".join(problems)


def test_traversal_cannot_leave_a_docs_site_or_repository(target: Target) -> None:
    for path in (b"/api/techdocs/static/docs/default/component/petstore/..%2f..%2f..%2f..%2fetc%2fpasswd",
                 b"/api/techdocs/static/docs/default/component/petstore/sub/..%2f..%2fapi%2findex.html",
                 b"/api/forge/repositories/acme/demo/raw/main/..%2f..%2fconfig",
                 b"/git/acme/demo/raw/main/..%2fHEAD", b"/git/acme/demo.git/..%2f..%2f..%2fetc%2fpasswd",
                 b"/static/..%2f..%2fapp.py", b"/docs/default/component/petstore/..%2f..%2f..%2fetc%2fpasswd"):
        answer = send(target.port, b"GET", path)
        assert answer.status in (400, 401, 403, 404), (path, answer.status, answer.body[:200])
        assert not any(leak in answer.body for leak in LEAKS), path
    # ...while the site and the repository still serve their own files
    ok = send(target.port, b"GET", b"/api/techdocs/static/docs/default/component/petstore/sub/index.html")
    assert ok.status == 200 and b"sub" in ok.body
    ok = send(target.port, b"GET", b"/api/forge/repositories/acme/demo/raw/main/docs/sub/a.md")
    assert ok.status == 200 and ok.body == b"a\n"


# --- methods ------------------------------------------------------------------------------------

METHODS = [b"GET", b"POST", b"PUT", b"PATCH", b"DELETE", b"OPTIONS", b"HEAD", b"TRACE", b"CONNECT",
           b"PROPFIND", b"FOO", b"get"]


@pytest.mark.parametrize("method", METHODS, ids=[m.decode() for m in METHODS])
def test_method_confusion(target: Target, method: bytes) -> None:
    """Every route, every method: an answer below 500, Backstage's body for an /api/ refusal."""
    problems = []
    paths = [p for _, p in _routes(target.server)] + [
        "/api/catalog/entities", "/api/catalog/locations", "/api/search/query", "/api/forge/repositories",
        "/api/scaffolder/v2/tasks", "/api/techdocs/builds", "/api/nonexistent", "/", "/catalog", "/docs",
        "/forge", "/search", "/healthz", "/readyz", "/static/app.css", "/favicon.ico"]
    for template in dict.fromkeys(paths):
        path = re.sub(r"{(\w+)}", lambda m: {**REAL, "name": "no-such-entity"}[m.group(1)], template).encode()
        answer = send(target.port, method, path, (AUTH, JSON),
                      b"{}" if method in (b"POST", b"PUT", b"PATCH") else b"")
        try:
            check(answer, path, "ok", method)
            if path.startswith(b"/api/") and answer.status >= 400 and method != b"HEAD" \
                    and answer.body != b"Invalid HTTP request received.":
                assert_backstage_error(answer, method, answer.status)
        except AssertionError as e:
            problems.append(str(e))
    assert not problems, "\n".join(problems)


# --- concurrent writes to locations ---------------------------------------------------------------

def test_concurrent_location_writes_never_fail(target: Target, tmp_path: Path) -> None:
    file = tmp_path / "catalog-info.yaml"
    file.write_text("\n---\n".join(
        f"apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: race-{n}\n"
        "spec:\n  type: service\n  owner: team-a\n  lifecycle: production\n" for n in "ab"))
    url, errors = target.server.url, []

    def location_ids(c: httpx.Client) -> list[str]:
        return [loc["data"]["id"] for loc in c.get("/api/catalog/locations").json()
                if loc["data"]["target"] == str(file)]

    def worker(i: int) -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30,
                          limits=httpx.Limits(max_keepalive_connections=0)) as c:
            for j in range(12):
                op = (i + j) % 4
                if op == 0:
                    answers = [c.post("/api/catalog/locations", json={"type": "file", "target": str(file)})]
                elif op == 1:
                    answers = [c.post("/api/catalog/locations?onConflict=refresh",
                                      json={"type": "file", "target": str(file)})]
                elif op == 2:
                    answers = [c.delete(f"/api/catalog/locations/{lid}") for lid in location_ids(c)]
                else:
                    answers = [c.put(f"/api/catalog/locations/{lid}", json={"type": "file", "target": str(file)})
                               for lid in location_ids(c)]
                errors.extend(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:200]}"
                              for r in answers if r.status_code >= 500)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a location write hung"
    assert not errors, "\n".join(errors)


# --- schemathesis over the served OpenAPI document ------------------------------------------------

# Real names as well as generated ones (half the time), so cases reach past "not found" into the
# handlers. Schemathesis reads this as its configuration file.
FUZZ_CONFIG = """
[dictionaries.kinds]
values = ["component", "api", "group", "user", "system", "location", "template"]
[dictionaries.namespaces]
values = ["default"]
[dictionaries.names]
values = ["petstore", "team-a", "artist-lookup", "example-all", "hello-world"]
[dictionaries.orgs]
values = ["acme"]
[dictionaries.repos]
values = ["demo"]
[dictionaries.refpaths]
values = ["main", "main/README.md", "main/docs", "main/docs/sub/a.md", "main/../x"]
[dictionaries.filters]
values = ["kind=component", "kind=component,spec.type=service", "metadata.name", "=x"]

[parameters]
"path.kind" = { dictionary = "kinds", probability = 0.5 }
"path.namespace" = { dictionary = "namespaces", probability = 0.5 }
"path.name" = { dictionary = "names", probability = 0.5 }
"path.org" = { dictionary = "orgs", probability = 0.5 }
"path.repo" = { dictionary = "repos", probability = 0.5 }
"path.ref_and_path" = { dictionary = "refpaths", probability = 0.5 }
"query.filter" = { dictionary = "filters", probability = 0.3 }
"""


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    yield from _start("sqlite", tmp_path_factory.mktemp("fuzz"))


@pytest.mark.skipif(importlib.util.find_spec("schemathesis") is None,
                    reason="schemathesis is not installed (a test extra: pip install schemathesis)")
def test_openapi_operations_never_answer_5xx(fuzz_target: Target, tmp_path: Path) -> None:
    """Every operation of the served document with schemathesis' coverage cases (boundary and
    invalid values, wrong types, missing fields), fuzzed cases and short stateful sequences:
    deterministic (fixed seed), bounded (a few dozen cases per operation, ~30 s on 2 cores)."""
    config = tmp_path / "schemathesis.toml"
    config.write_text(FUZZ_CONFIG)
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "--no-color", "run",
               f"{fuzz_target.server.url}/api/openapi.json", "--header", f"Authorization: Bearer {TOKEN}",
               "--checks", "not_a_server_error", "--max-response-time", str(SLOW_S),
               "--phases", "coverage,fuzzing,stateful", "--max-examples", "25", "--seed", "20261125",
               "--generation-deterministic", "--no-shrink",
               "--workers", "2", "--request-timeout", "30", "--warnings", "off"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "SCHEMATHESIS_HOOKS": ""})
    report = done.stdout[-20_000:] + done.stderr[-5_000:]
    assert done.returncode == 0, report
    assert re.search(r"Test cases:\s+\d+ generated, \d+ passed", report), report
