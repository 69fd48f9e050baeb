"""A small layered graph layout rendered as inline SVG, for the relationship graph of an entity.

Model: the caller gives the root, the nodes it reached breadth-first (each with its distance from
the root) and directed, labelled edges between them. Columns are distances (root at the left);
inside a column nodes are ordered by the mean position of their neighbours in the previous column
(one barycentre sweep), which removes most crossings in the star-like graphs a catalog produces.

Invariants: output is deterministic for the same input (ties break by ref), every piece of text
is XML-escaped (entity names are user input), every node links to its entity page, and a column
never holds more than ``max_per_column`` nodes (the rest are summarised in a "+N more" node), so a
group owning 5,000 components still renders in a few milliseconds. Never raises on odd input: a
node without distance is dropped with its edges.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

NODE_W = 200
NODE_H = 40
COL_GAP = 120
ROW_GAP = 16
PAD = 16


@dataclass(frozen=True)
class Node:
    ref: str
    label: str
    kind: str
    href: str
    distance: int


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str


def _x(s: str) -> str:
    return escape(s, quote=True)


def _clip(text: str, limit: int = 26) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def layout(nodes: Sequence[Node], edges: Sequence[Edge],
           max_per_column: int = 30) -> tuple[dict[str, tuple[float, float]], dict[int, int]]:
    """Node ref -> (x, y) top-left corner, and per column the number of hidden nodes."""
    columns: dict[int, list[Node]] = {}
    for n in sorted(nodes, key=lambda n: (n.distance, n.kind, n.label, n.ref)):
        columns.setdefault(n.distance, []).append(n)
    neighbours: dict[str, set[str]] = {}
    for e in edges:
        neighbours.setdefault(e.source, set()).add(e.target)
        neighbours.setdefault(e.target, set()).add(e.source)
    pos: dict[str, tuple[float, float]] = {}
    hidden: dict[int, int] = {}
    row_of: dict[str, float] = {}
    for col in sorted(columns):
        members = columns[col]

        def bary(n: Node) -> float:
            near = [row_of[m] for m in neighbours.get(n.ref, ()) if m in row_of]
            return sum(near) / len(near) if near else 0.0

        members.sort(key=lambda n: (bary(n), n.kind, n.label, n.ref))
        if len(members) > max_per_column:
            hidden[col] = len(members) - max_per_column
            members = members[:max_per_column]
        for i, n in enumerate(members):
            row_of[n.ref] = float(i)
            pos[n.ref] = (PAD + col * (NODE_W + COL_GAP), PAD + i * (NODE_H + ROW_GAP))
    # Centre every column vertically against the tallest one.
    tallest = max((sum(1 for r in pos if pos[r][0] == x) for x in {p[0] for p in pos.values()}), default=1)
    rows_by_x: dict[float, int] = {}
    for x, _y in pos.values():
        rows_by_x[x] = rows_by_x.get(x, 0) + 1
    for ref, (x, y) in list(pos.items()):
        shift = (tallest - rows_by_x[x]) * (NODE_H + ROW_GAP) / 2
        pos[ref] = (x, y + shift)
    return pos, hidden


def render_svg(nodes: Sequence[Node], edges: Sequence[Edge], root: str,
               max_per_column: int = 30) -> str:
    """The graph as an ``<svg>`` element (no XML prolog), sized to its content."""
    by_ref: Mapping[str, Node] = {n.ref: n for n in nodes}
    edges = [e for e in edges if e.source in by_ref and e.target in by_ref]
    pos, hidden = layout(list(by_ref.values()), edges, max_per_column)
    columns = max((n.distance for n in by_ref.values()), default=0) + 1
    rows = max((sum(1 for n in by_ref.values() if n.distance == c) for c in range(columns)), default=1)
    rows = min(rows, max_per_column) + (1 if hidden else 0)
    width = PAD * 2 + columns * NODE_W + (columns - 1) * COL_GAP
    height = PAD * 2 + rows * NODE_H + (rows - 1) * ROW_GAP
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" role="img" aria-label="Relationship graph">'),
           ('<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
           'markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" '
           'class="arrowhead"/></marker></defs>')]
    for e in sorted(edges, key=lambda e: (e.source, e.target, e.label)):
        if e.source not in pos or e.target not in pos:
            continue
        out.append(_edge(pos[e.source], pos[e.target], e.label))
    for ref, (x, y) in sorted(pos.items()):
        n = by_ref[ref]
        cls = f"node kind-{_x(n.kind)}" + (" root" if ref == root else "")
        out.append(
            f'<a href="{_x(n.href)}" class="{cls}" data-ref="{_x(ref)}">'
            f'<title>{_x(ref)}</title>'
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{NODE_W}" height="{NODE_H}" rx="6"/>'
            f'<text x="{x + 10:.0f}" y="{y + 17:.0f}" class="label">{_x(_clip(n.label))}</text>'
            f'<text x="{x + 10:.0f}" y="{y + 32:.0f}" class="kind">{_x(n.kind)}</text></a>')
    for col, count in sorted(hidden.items()):
        x = PAD + col * (NODE_W + COL_GAP)
        y = height - PAD - NODE_H
        out.append(f'<g class="node more"><rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" '
                   f'rx="6"/><text x="{x + 10}" y="{y + 25}" class="label">+{count} more</text></g>')
    out.append("</svg>")
    return "".join(out)


def _edge(a: tuple[float, float], b: tuple[float, float], label: str) -> str:
    (ax, ay), (bx, by) = a, b
    if ax == bx:  # same column: an arc on the right side
        x1, y1, x2, y2 = ax + NODE_W, ay + NODE_H / 2, bx + NODE_W, by + NODE_H / 2
        bend = x1 + 40 + abs(y2 - y1) / 6
        d = f"M{x1:.0f},{y1:.0f} C{bend:.0f},{y1:.0f} {bend:.0f},{y2:.0f} {x2:.0f},{y2:.0f}"
        lx, ly = bend - 8, (y1 + y2) / 2
    else:
        if ax > bx:
            x1, x2 = ax, bx + NODE_W
        else:
            x1, x2 = ax + NODE_W, bx
        y1, y2 = ay + NODE_H / 2, by + NODE_H / 2
        mid = (x1 + x2) / 2
        d = f"M{x1:.0f},{y1:.0f} C{mid:.0f},{y1:.0f} {mid:.0f},{y2:.0f} {x2:.0f},{y2:.0f}"
        # Label next to the node in the right-hand column: those are spread out, the root's
        # end of a star is not, so labels there would pile up.
        if ax > bx:
            lx, ly = x1 - COL_GAP / 4, y1 - 5
        else:
            lx, ly = x2 - COL_GAP / 4, y2 - 5
    return (f'<g class="edge"><path d="{d}" marker-end="url(#arrow)"/>'
            f'<text x="{lx:.0f}" y="{ly:.0f}" text-anchor="middle">{_x(label)}</text></g>')
