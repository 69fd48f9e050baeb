"""Entity references, parsed and printed exactly as ``@backstage/catalog-model`` does.

A string ref has the form ``[<kind>:][<namespace>/]<name>``. A ``/`` before the first ``:`` means
there is no kind (``ns/a:b`` is namespace ``ns``, name ``a:b``). Empty parts are an error, as are
a missing kind with no default, or a missing name. Parsing preserves case; the canonical string
form (:func:`stringify_entity_ref`) is lower-cased. Errors are :class:`InputError` with Backstage's
wording, so a user can search for them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from greenroom.catalog.model import DEFAULT_NAMESPACE, EntityName
from greenroom.core.errors import InputError


def _split(ref: str) -> tuple[str | None, str | None, str]:
    colon = ref.find(":")
    slash = ref.find("/")
    # A slash ahead of the colon: everything after the slash is the name.
    if slash != -1 and slash < colon:
        colon = -1
    kind = None if colon == -1 else ref[:colon]
    namespace = None if slash == -1 else ref[colon + 1 : slash]
    name = ref[max(colon + 1, slash + 1) :]
    if kind == "" or namespace == "" or name == "":
        raise InputError(f'Entity reference "{ref}" was not on the form [<kind>:][<namespace>/]<name>')
    return kind, namespace, name


def parse_entity_ref(
    ref: str | Mapping[str, Any],
    *,
    default_kind: str | None = None,
    default_namespace: str | None = DEFAULT_NAMESPACE,
) -> EntityName:
    """Parse a string or ``{kind?, namespace?, name}`` ref, filling in the defaults.

    Raises InputError with Backstage's messages when the ref is empty or lacks a part.
    """
    if not ref:
        raise InputError("Entity reference must not be empty")
    default_namespace = default_namespace or DEFAULT_NAMESPACE
    kind: Any
    namespace: Any
    name: Any
    if isinstance(ref, str):
        k, ns, name = _split(ref)
        kind = k if k is not None else default_kind
        namespace = ns if ns is not None else default_namespace
    elif isinstance(ref, Mapping):
        kind = ref.get("kind")
        kind = default_kind if kind is None else kind
        namespace = ref.get("namespace")
        namespace = default_namespace if namespace is None else namespace
        name = ref.get("name")
    else:
        raise InputError(f"Entity reference {_textual(ref)} must be a string or an object with a name")
    if not kind:
        raise InputError(
            f"Entity reference {_textual(ref)} had missing or empty kind "
            '(e.g. did not start with "component:" or similar)'
        )
    if not namespace:
        raise InputError(f"Entity reference {_textual(ref)} had missing or empty namespace")
    if not name:
        raise InputError(f"Entity reference {_textual(ref)} had missing or empty name")
    if not (isinstance(kind, str) and isinstance(namespace, str) and isinstance(name, str)):
        raise InputError(f"Entity reference {_textual(ref)} must consist of strings")
    return EntityName(kind=kind, namespace=namespace, name=name)


def _textual(ref: Any) -> str:
    """JSON rendering, like Backstage's ``JSON.stringify(ref)`` in its messages."""
    try:
        return json.dumps(ref, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        return repr(ref)


def stringify_entity_ref(ref: EntityName | Mapping[str, Any]) -> str:
    """Canonical ``kind:namespace/name``, lower-cased, default namespace filled in.

    Accepts an :class:`EntityName`, a compound ``{kind, namespace?, name}`` or an entity envelope.
    """
    if isinstance(ref, EntityName):
        return ref.ref
    if "metadata" in ref:
        meta = ref["metadata"] or {}
        kind, namespace, name = ref["kind"], meta.get("namespace"), meta["name"]
    else:
        kind, namespace, name = ref["kind"], ref.get("namespace"), ref["name"]
    namespace = namespace or DEFAULT_NAMESPACE
    return f"{str(kind).lower()}:{str(namespace).lower()}/{str(name).lower()}"


def humanize_entity_ref(name: EntityName, *, default_kind: str | None = None) -> str:
    """Short display form: omits the default namespace and a kind equal to ``default_kind``."""
    prefix = "" if default_kind and name.kind.lower() == default_kind.lower() else f"{name.kind.lower()}:"
    ns = "" if name.namespace.lower() == DEFAULT_NAMESPACE else f"{name.namespace}/"
    return f"{prefix}{ns}{name.name}"
