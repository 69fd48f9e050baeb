"""Highlights: HTML-escaped text with ``<mark>`` around the words that matched.

The output is safe to insert as HTML: every character of the document is escaped with
``html.escape`` and only our own markers are added. A word is marked when it starts with a query
word, or shares a long common prefix with it (so ``stores`` marks ``store`` and ``processing``
marks ``processes``, roughly what the stemmers match), never for a two-letter overlap.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

PRE_TAG = "<mark>"
POST_TAG = "</mark>"
SNIPPET_WORDS = 32

_TOKEN = re.compile(r"[^\W_]+")


def _matches(word: str, query_words: Sequence[str]) -> bool:
    w = word.lower()
    for q in query_words:
        if w.startswith(q):
            return True
        common = 0
        for a, b in zip(w, q):
            if a != b:
                break
            common += 1
        if common >= 4 and common >= min(len(w), len(q)) - 2:
            return True
    return False


def mark(text: str, query_words: Sequence[str], snippet: bool = False) -> str | None:
    """``text`` escaped with matches marked; ``None`` when nothing matched.

    With ``snippet``, only about ``SNIPPET_WORDS`` words around the first match are kept, with
    ``…`` where text was cut.
    """
    if not text or not query_words:
        return None
    spans = [m.span() for m in _TOKEN.finditer(text)]
    hits = [i for i, (a, b) in enumerate(spans) if _matches(text[a:b], query_words)]
    if not hits:
        return None
    start_char, end_char, prefix, suffix = 0, len(text), "", ""
    if snippet and len(spans) > SNIPPET_WORDS:
        first = max(0, hits[0] - 6)
        last = min(len(spans), first + SNIPPET_WORDS) - 1
        start_char, end_char = spans[first][0], spans[last][1]
        prefix = "…" if first > 0 else ""
        suffix = "…" if last < len(spans) - 1 else ""
    out: list[str] = [prefix]
    pos = start_char
    hit_set = set(hits)
    for i, (a, b) in enumerate(spans):
        if a < start_char or b > end_char or i not in hit_set:
            continue
        out.append(html.escape(text[pos:a]))
        out.append(PRE_TAG + html.escape(text[a:b]) + POST_TAG)
        pos = b
    out.append(html.escape(text[pos:end_char]))
    out.append(suffix)
    return "".join(out)
