"""Built docs in the search index, on SQLite and PostgreSQL: real MkDocs builds through
``TechDocsService``, indexed by the build listener, searched through ``SearchService``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from greenroom.core.config import load_settings
from greenroom.search.model import TECHDOCS_TYPE, TEMPLATES_TYPE
from greenroom.search.service import SearchService
from greenroom.techdocs.engine.builder import DocsBuilder
from greenroom.techdocs.engine.storage import LocalStorage
from greenroom.techdocs.service import TechDocsService
from greenroom.techdocs.service.indexing import (
    DocsIndexer,
    TechDocsCollator,
    split_sections,
    template_document,
)
from tests.techdocs.conftest import DictEntities, component, write_project

INDEX = """# Shop

Lead paragraph about the shop.

## Zebrafinch section

The word quetzalcoatlus lives here.

#### Deep heading

Deeper text stays in the zebrafinch section: ornithopter.

## Payments

Cards and invoices.
"""


@pytest.fixture(scope="module")
def builder() -> Iterator[DocsBuilder]:
    b = DocsBuilder(timeout_s=60, memory_mb=1024)
    b.start()
    yield b
    b.close()


class Docs:
    """A docs project, the techdocs service that builds it and the index it lands in."""

    def __init__(self, root: Path, engine: Engine, builder: DocsBuilder) -> None:
        self.project = write_project(root / "shop", {
            "catalog-info.yaml": "kind: Component\n",
            "mkdocs.yml": "site_name: Shop handbook\nnav:\n  - Home: index.md\n  - Guide: guide/setup.md\n"
                          "plugins:\n  - techdocs-core\n",
            "docs/index.md": INDEX,
            "docs/guide/setup.md": "# Setup\n\nInstall the shop with pip.\n"})
        self.entities = DictEntities(component("shop", self.project / "catalog-info.yaml"))
        settings = load_settings([], overrides={"greenroom": {"home": str(root / "home")}})
        self.techdocs = TechDocsService(engine, settings, LocalStorage(root / "sites"), self.entities,
                                        builder=builder)
        self.search = SearchService(engine)
        self.indexer = DocsIndexer(self.techdocs, self.search)
        self.techdocs.add_build_listener(self.indexer.on_built)

    def build(self) -> None:
        self.techdocs.request_build("component:default/shop")
        row = self.techdocs.claim_and_run_next("test")
        assert row is not None and row.status.value == "succeeded", row

    def hits(self, term: str) -> list[Any]:
        return list(self.search.query(term, types=[TECHDOCS_TYPE]).results)

    def keys(self) -> set[str]:
        return self.indexer.indexed_keys("component:default/shop")


@pytest.fixture
def docs(tmp_path: Path, engine: Engine, builder: DocsBuilder) -> Docs:
    return Docs(tmp_path, engine, builder)


BASE = "/docs/default/component/shop/"


def test_a_build_indexes_pages_and_sections(docs: Docs) -> None:
    docs.build()
    assert docs.keys() == {BASE, f"{BASE}#zebrafinch-section", f"{BASE}#payments", f"{BASE}guide/setup/"}
    [hit] = docs.hits("quetzalcoatlus")
    d = hit.document
    assert d.location == f"{BASE}#zebrafinch-section" and d.title == "Zebrafinch section"
    assert d.fields["entityRef"] == "component:default/shop"
    assert d.fields["owner"] == "group:default/team-a" and d.fields["kind"] == "Component"
    assert d.fields["page"] == "Home" and d.fields["site"] == "Shop handbook"
    assert hit.highlight is not None and "<mark>quetzalcoatlus</mark>" in hit.highlight["fields"]["text"]
    # a deeper heading stays in its section; the home page is found as the site
    assert [h.document.location for h in docs.hits("ornithopter")] == [f"{BASE}#zebrafinch-section"]
    assert [h.document.title for h in docs.hits("lead paragraph")] == ["Shop handbook"]
    assert [h.document.location for h in docs.hits("install pip")] == [f"{BASE}guide/setup/"]
    # filters by owner, as the search page's facets do
    owned = docs.search.query("cards", types=[TECHDOCS_TYPE], filters={"owner": "group:default/team-a"})
    assert [r.document.location for r in owned.results] == [f"{BASE}#payments"]


def test_a_rebuild_removes_pages_and_sections_that_are_gone(docs: Docs) -> None:
    docs.build()
    (docs.project / "docs/index.md").write_text("# Shop\n\nOnly a lead now.\n\n## Payments\n\nCards.\n")
    (docs.project / "docs/guide/setup.md").unlink()
    (docs.project / "mkdocs.yml").write_text("site_name: Shop handbook\nplugins:\n  - techdocs-core\n")
    docs.build()
    assert docs.keys() == {BASE, f"{BASE}#payments"}
    assert docs.hits("quetzalcoatlus") == [] and docs.hits("install") == []


def test_the_collator_rebuilds_the_same_documents(docs: Docs) -> None:
    docs.build()
    before = docs.keys()
    docs.search.remove(TECHDOCS_TYPE, sorted(before))
    assert docs.keys() == set()
    stats = docs.search.reindex(TechDocsCollator(docs.techdocs))
    assert stats.documents == len(before) and docs.keys() == before


def test_an_entity_that_left_the_catalog_leaves_the_index(docs: Docs) -> None:
    docs.build()
    docs.entities.by_ref.clear()
    stats = docs.indexer.index_entity("component:default/shop")
    assert stats.documents == 0 and stats.removed == 4 and docs.keys() == set()


def test_sections_skip_permalinks_line_numbers_and_script() -> None:
    body = ('<h1 id="t">Title<a class="headerlink" href="#t">¶</a></h1><p>Lead <b>bold</b></p>'
            '<table class="highlighttable"><tr><td class="linenos"><pre>1\n2</pre></td>'
            '<td class="code"><pre><code>x = 1</code></pre></td></tr></table>'
            '<h2 id="a">Alpha<a class="headerlink" href="#a">¶</a></h2><p>one</p>'
            '<h3>No id</h3><p>two</p><script>evil()</script>')
    sections, headings = split_sections(body)
    assert [(s.anchor, s.title, s.text) for s in sections] == [
        (None, "", "Lead bold x = 1"), ("a", "Alpha", "one No id two")]
    assert headings == ["Alpha", "No id"]


def test_template_document_links_to_the_create_page() -> None:
    doc = template_document({"kind": "Template", "metadata": {"name": "Python-Service", "title": "Python service",
                                                              "description": "FastAPI", "tags": ["python"]},
                             "spec": {"owner": "platform-core", "type": "service"}})
    assert doc.type == TEMPLATES_TYPE and doc.location == "/create/templates/default/python-service"
    assert doc.key == "template:default/python-service" and doc.title == "Python service"
    assert doc.fields["owner"] == "platform-core" and doc.fields["tags"] == ["python"]
