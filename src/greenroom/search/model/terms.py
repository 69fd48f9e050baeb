"""Turning what a user typed into safe, bounded search terms.

Model: a term is reduced to words, a word being a run of Unicode letters and digits (the same
rule as SQLite's ``unicode61`` tokenizer, and what we feed PostgreSQL). Every operator character
of either query language (``" * : ( ) - ^ & | ! <``) is a separator, and words are passed to the
database quoted (FTS5) or as bare lexemes (``to_tsquery``) made only of letters and digits, so
no user input can change the query's structure. ``AND``/``OR``/``NEAR`` are just words.

Invariants: at most ``MAX_WORDS`` words of at most ``MAX_WORD_CHARS`` characters each from the
first ``MAX_TERM_CHARS`` characters of the term; so query cost is bounded whatever is sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_TERM_CHARS = 200
MAX_WORDS = 12
MAX_WORD_CHARS = 64
MAX_NORM_CHARS = 500

_WORD = re.compile(r"[^\W_]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def words(text: str) -> list[str]:
    """Lower-cased words of ``text`` in order (duplicates kept)."""
    return _WORD.findall(text.lower())


def word_string(text: str) -> str:
    """``text`` as space-separated words: what the full-text columns index on both databases."""
    return " ".join(words(text))


def normalize(text: str) -> str:
    """The form exact and prefix matches compare: lower case, single spaces, trimmed, without
    control characters (PostgreSQL refuses NUL in text)."""
    return " ".join(_CONTROL.sub(" ", text).lower().split())[:MAX_NORM_CHARS]


@dataclass(frozen=True)
class Terms:
    """A sanitized query: ``norm`` for exact/prefix name matches, ``words`` for full text."""

    raw: str
    norm: str
    words: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not self.norm


def parse(term: str | None) -> Terms:
    raw = (term or "")[:MAX_TERM_CHARS]
    seen: list[str] = []
    for w in words(raw):
        w = w[:MAX_WORD_CHARS]
        if w not in seen:
            seen.append(w)
        if len(seen) == MAX_WORDS:
            break
    return Terms(raw=raw, norm=normalize(raw), words=tuple(seen))


def edits1(word: str) -> set[str]:
    """Every string one edit (delete, transpose, replace, insert) away from ``word``.

    Bounded: about 72·len(word) strings; callers only ask for words of at most 24 characters.
    """
    letters = set(_ALPHABET) | set(word)
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    out: set[str] = set()
    for left, right in splits:
        if right:
            out.add(left + right[1:])
            for c in letters:
                out.add(left + c + right[1:])
        if len(right) > 1:
            out.add(left + right[1] + right[0] + right[2:])
        for c in letters:
            out.add(left + c + right)
    out.discard(word)
    return {w for w in out if w}


def prefix_upper(prefix: str) -> str:
    """The smallest string greater than every string starting with ``prefix`` (for range scans)."""
    return prefix + "\U0010ffff"


def like_prefix(prefix: str) -> str:
    """A ``LIKE`` pattern matching strings that start with ``prefix`` literally (ESCAPE '\\')."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"
