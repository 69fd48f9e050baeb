"""Syntax highlighting of definitions and YAML with Pygments, as escaped HTML.

Pygments escapes every token, so the output is safe to embed. Texts over ``MAX_HIGHLIGHT`` are
escaped but not coloured: highlighting a multi-megabyte definition would blow the page budget.
"""

from __future__ import annotations

from html import escape
from typing import Any

import yaml
from pygments import highlight as _pyg_highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

MAX_HIGHLIGHT = 200_000

# API spec.type -> Pygments lexer; anything else is plain text.
LEXERS = {"openapi": "yaml", "asyncapi": "yaml", "graphql": "graphql", "grpc": "protobuf",
          "yaml": "yaml", "json": "json", "trpc": "typescript"}

_FORMATTER = HtmlFormatter(nowrap=True, classprefix="tok-")


def highlight(text: str, language: str) -> str:
    """``text`` as HTML (no wrapper element); never raises."""
    lexer_name = LEXERS.get(language.lower(), language.lower())
    if len(text) > MAX_HIGHLIGHT:
        return escape(text)
    try:
        lexer = get_lexer_by_name(lexer_name)
    except ClassNotFound:
        return escape(text)
    if language.lower() in ("openapi", "asyncapi") and text.lstrip().startswith("{"):
        lexer = get_lexer_by_name("json")
    return str(_pyg_highlight(text, lexer, _FORMATTER))


def to_yaml(data: Any) -> str:
    """An entity as block YAML in its own key order (what its author wrote, roughly)."""
    return str(yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100))


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    # Multi-line strings (descriptions, inline definitions) read best as literal blocks.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)
