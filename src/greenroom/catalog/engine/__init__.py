"""The catalog processing engine: pure functions from locations to entities, relations and problems.

No database here (see ``greenroom.catalog.store``/``service`` for that). Entry points:
:func:`process_location`, :func:`process_tree`, :func:`validate_entity`, :func:`read_documents`,
:func:`parse_entity_ref`, :func:`stringify_entity_ref`, :func:`relations_of`,
:class:`DefaultReadPolicy`, :func:`prepare` (entities to rows) and :class:`ReadAhead` (reading on
another core).
"""

from .parallel import ReadAhead
from .processing import default_root, process_location, validate_entity
from .reader import DefaultReadPolicy, read_documents, read_text, resolve_target
from .refs import parse_entity_ref, stringify_entity_ref
from .relations import EXTRA_RELATION_PAIRS, relations_of
from .rows import PreparedEntity, PreparedResult, flatten, prepare
from .tree import process_tree
from .validation import BUILTIN_KINDS, warm_up

__all__ = [
    "BUILTIN_KINDS",
    "EXTRA_RELATION_PAIRS",
    "DefaultReadPolicy",
    "PreparedEntity",
    "PreparedResult",
    "ReadAhead",
    "default_root",
    "flatten",
    "parse_entity_ref",
    "prepare",
    "process_location",
    "process_tree",
    "read_documents",
    "read_text",
    "relations_of",
    "resolve_target",
    "stringify_entity_ref",
    "validate_entity",
    "warm_up",
]
