"""The SVG graph layout: escaping, links, bounded columns, determinism."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from greenroom.web.engine.graph import Edge, Node, render_svg

SVG = "{http://www.w3.org/2000/svg}"


def _node(ref: str, d: int, label: str | None = None) -> Node:
    kind, _, rest = ref.partition(":")
    name = rest.split("/")[-1]
    return Node(ref=ref, label=label or name, kind=kind, href=f"/catalog/default/{kind}/{name}", distance=d)


def test_labels_are_escaped_and_the_svg_parses() -> None:
    evil = _node("component:default/x", 0, label='<script>alert(1)</script>&"')
    svg = render_svg([evil, _node("group:default/t", 1)],
                     [Edge("group:default/t", "component:default/x", "ownerOf</text><script>")],
                     "component:default/x")
    assert "<script>" not in svg
    root = ET.fromstring(svg)  # well-formed XML
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert any(t and t.startswith("<script>") for t in texts)  # shown as text, not markup


def test_every_node_links_to_its_page_and_columns_are_bounded() -> None:
    nodes = [_node("group:default/big", 0)] + [_node(f"component:default/c{i:03}", 1) for i in range(45)]
    edges = [Edge("group:default/big", n.ref, "ownerOf") for n in nodes[1:]]
    svg = render_svg(nodes, edges, "group:default/big", max_per_column=30)
    root = ET.fromstring(svg)
    links = [a.get("href") for a in root.iter(f"{SVG}a")]
    assert len(links) == 31 and "/catalog/default/group/big" in links
    assert "+15 more" in svg
    assert svg == render_svg(list(reversed(nodes)), list(reversed(edges)), "group:default/big", max_per_column=30)
