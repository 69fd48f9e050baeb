"""Safe, bounded YAML parsing of catalog files.

Model: a file is a stream of documents; each non-empty document becomes ``(data, line)`` where
``line`` is the 1-based line of its first node. Parsing uses PyYAML's C parser with the *safe*
constructor only, and resolves plain scalars like YAML 1.2's core schema (what Backstage's ``yaml``
package does): ``yes``/``on`` and dates stay strings, ``0755`` is the integer 755.

Invariants (each violation is an :class:`InputError` naming the file and line, nothing hangs):
- no tag outside the safe set (``!!python/object`` and custom ``!Tags`` are refused);
- at most ``MAX_DEPTH`` levels of nesting per document;
- at most ``MAX_NODES`` nodes per file *after alias expansion*, so "billion laughs" alias bombs are
  refused after a bounded walk instead of being expanded;
- recursive aliases (``&a [*a]``) are refused (they look infinitely deep).
The size of the input text is bounded by the reader (``MAX_FILE_BYTES``).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from greenroom.core.errors import InputError

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 1_000_000

_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_INT_RE = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT_RE = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_BOOL_RE = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_NULL_RE = re.compile(r"^(?:~|null|Null|NULL|)$")


class CatalogYamlLoader(_BaseLoader):  # type: ignore[misc]
    """Safe loader with YAML 1.2 core-schema scalar resolution (no timestamps, no yes/no booleans)."""


# Replace the YAML 1.1 implicit resolvers with the 1.2 core set. Keys are first characters.
CatalogYamlLoader.yaml_implicit_resolvers = {}
for _tag, _regexp, _first in (
    ("tag:yaml.org,2002:bool", _BOOL_RE, list("tTfF")),
    ("tag:yaml.org,2002:int", _INT_RE, list("-+0123456789")),
    ("tag:yaml.org,2002:float", _FLOAT_RE, list("-+.0123456789")),
    ("tag:yaml.org,2002:null", _NULL_RE, ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:merge", re.compile(r"^(?:<<)$"), ["<"]),
):
    CatalogYamlLoader.add_implicit_resolver(_tag, _regexp, _first)


def _construct_int(loader: Any, node: yaml.ScalarNode) -> int:
    value = loader.construct_scalar(node)
    if value.startswith(("0o", "0x")):
        return int(value, 0)
    return int(value, 10)


def _construct_bool(loader: Any, node: yaml.ScalarNode) -> bool:
    return str(loader.construct_scalar(node)).lower() == "true"


CatalogYamlLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
CatalogYamlLoader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)
# An explicit !!timestamp stays the string it was written as (JSON has no dates).
CatalogYamlLoader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)


def _where(name: str, mark: Any) -> str:
    return f"{name}:{mark.line + 1}" if mark is not None else name


def parse_yaml_documents(text: str, name: str) -> list[tuple[Any, int]]:
    """Parse every document of ``text``; ``name`` (a path or URL) is used in error messages.

    Returns ``(data, line)`` for each document that is not empty. Raises InputError for malformed
    YAML (with its line), unsafe tags, and documents that are too deep or too large.
    """
    loader = CatalogYamlLoader(text)
    out: list[tuple[Any, int]] = []
    # Aliases need an anchor; without '&' in the text no node can be shared or recursive, and the
    # per-document depth walk is enough.
    may_alias = "&" in text
    budget = [MAX_NODES]
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            line = node.start_mark.line + 1
            try:
                data = loader.construct_document(node)
            except RecursionError:
                raise InputError(
                    f"{name}:{line}: document is nested more than {MAX_DEPTH} levels deep; flatten it"
                ) from None
            if data is None:
                continue
            _check_bounds(data, name, line, budget, may_alias)
            out.append((data, line))
    except yaml.constructor.ConstructorError as e:
        problem = getattr(e, "problem", "") or str(e)
        if "constructor for the tag" not in problem:
            raise InputError(
                f"{_where(name, e.problem_mark)}: malformed YAML: {problem}; fix the syntax at that line"
            ) from None
        raise InputError(
            f"{_where(name, e.problem_mark)}: unsafe or unknown YAML tag ({problem}); "
            "catalog files may contain plain YAML data only, remove the tag"
        ) from None
    except yaml.MarkedYAMLError as e:
        what = " ".join(x for x in (e.context, e.problem) if x)
        raise InputError(
            f"{_where(name, e.problem_mark)}: malformed YAML: {what}; fix the syntax at that line"
        ) from None
    except yaml.YAMLError as e:
        raise InputError(f"{name}: malformed YAML: {e}") from None
    finally:
        loader.dispose()
    return out


def _check_bounds(data: Any, name: str, line: int, budget: list[int], may_alias: bool) -> None:
    """Iterative walk over the expanded document: depth, node budget, recursion."""
    remaining = budget[0]
    stack: list[tuple[Any, int]] = [(data, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        value, depth = pop()
        remaining -= 1
        t = type(value)
        if t is dict:
            children: Any = value.values()
        elif t is list:
            children = value
        else:
            continue
        if depth > MAX_DEPTH:
            # A recursive alias also ends up here: it is infinitely deep.
            raise InputError(
                f"{name}:{line}: document is nested more than {MAX_DEPTH} levels deep "
                "(or refers to itself through an alias); flatten it"
            )
        if may_alias and remaining < 0:
            raise InputError(
                f"{name}:{line}: document expands to more than {MAX_NODES} nodes "
                "(aliases that multiply content?); remove the anchors/aliases or split the file"
            )
        for child in children:
            push((child, depth + 1))
    budget[0] = remaining
    if remaining < 0:
        raise InputError(f"{name}: file holds more than {MAX_NODES} YAML nodes; split it into smaller files")


def locate_line(text: str, doc_index: int, path: list[str | int]) -> int | None:
    """Best-effort 1-based line of ``path`` inside document ``doc_index`` (counting non-empty ones).

    Used only when reporting a problem, so the happy path never pays for node positions. Returns
    the line of the deepest existing node along the path; None when it cannot be found.
    """
    try:
        loader = CatalogYamlLoader(text)
        index = -1
        node: Any = None
        while loader.check_node():
            candidate = loader.get_node()
            if candidate is None or (isinstance(candidate, yaml.ScalarNode) and _NULL_RE.match(candidate.value)):
                continue
            index += 1
            if index == doc_index:
                node = candidate
                break
        loader.dispose()
    except yaml.YAMLError:
        return None
    if node is None:
        return None
    line = int(node.start_mark.line) + 1
    for part in path:
        if isinstance(node, yaml.MappingNode):
            found = None
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    found = (key, value)
            if found is None:
                return line
            line = int(found[0].start_mark.line) + 1
            node = found[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = int(node.start_mark.line) + 1
        else:
            return line
    return line
