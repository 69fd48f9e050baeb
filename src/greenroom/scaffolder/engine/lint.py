"""``lint_template(path)``: problems of a template file, each with file:line and the fix.

Checks: legacy apiVersion; the Template.v1beta3 JSON schema (with the catalog-model schemas it
refers to); unknown action ids; ``${{ }}`` expressions that do not parse; ``each`` over a literal
that is not a list/object; references to step ids or parameters that do not exist; relative fetch
URLs that point at nothing. Line numbers come from walking the YAML node tree (``yaml.compose``).

Schemas are read from ``greenroom/catalog/engine/schemas`` (the catalog context's copy) and, if that
is missing, from the conformance corpus at ``/work/shared/corpus/schemas``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft7Validator
from referencing import Registry, Resource

from greenroom.scaffolder.engine.actions import load_actions
from greenroom.scaffolder.engine.expressions import ExpressionEngine
from greenroom.scaffolder.model import LEGACY_API_VERSIONS, TEMPLATE_API_VERSION

_SCHEMA_DIRS = (
    Path(__file__).resolve().parents[2] / "catalog" / "engine" / "schemas",
    Path("/work/shared/corpus/schemas"),
)
_STEP_REF = re.compile(r"steps\.([A-Za-z0-9_-]+)|steps\[\s*['\"]([^'\"]+)['\"]\s*\]")
_PARAM_REF = re.compile(r"parameters\.([A-Za-z_$][A-Za-z0-9_$]*)")


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@lru_cache(maxsize=1)
def _template_validator() -> Draft7Validator:
    for root in _SCHEMA_DIRS:
        main = root / "scaffolder" / "Template.v1beta3.schema.json"
        if main.is_file():
            resources = []
            for file in root.rglob("*.json"):
                doc = json.loads(file.read_text())
                if "$id" in doc:
                    resources.append((doc["$id"], Resource.from_contents(doc)))
            registry = Registry().with_resources(resources)
            return Draft7Validator(json.loads(main.read_text()), registry=registry)
    raise FileNotFoundError("Template.v1beta3.schema.json not found in " + ", ".join(map(str, _SCHEMA_DIRS)))


def _line(node: yaml.Node, path: list[Any]) -> int:
    """1-based line of the node at ``path`` (the deepest existing ancestor if it is missing)."""
    for part in path:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    node = value
                    break
            else:
                break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
    return node.start_mark.line + 1


def _strings(value: Any, path: list[Any]) -> list[tuple[list[Any], str]]:
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, Mapping):
        return [x for k, v in value.items() for x in _strings(v, [*path, k])]
    if isinstance(value, list):
        return [x for i, v in enumerate(value) for x in _strings(v, [*path, i])]
    return []


def _parameter_names(schema: Any) -> set[str]:
    names: set[str] = set()
    if isinstance(schema, Mapping):
        names.update((schema.get("properties") or {}).keys())
        for value in schema.values():
            names |= _parameter_names(value)
    elif isinstance(schema, list):
        for item in schema:
            names |= _parameter_names(item)
    return names


def lint_template(path: Path | str, *, known_actions: set[str] | None = None) -> list[Problem]:
    file = Path(path)
    text = file.read_text(encoding="utf-8")
    try:
        nodes = list(yaml.compose_all(text))
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return [Problem(str(file), (mark.line + 1) if mark else 1, f"not valid YAML: {exc}")]
    actions = known_actions if known_actions is not None else set(load_actions())
    engine = ExpressionEngine()
    problems: list[Problem] = []
    for node, doc in zip(nodes, docs):
        if not isinstance(doc, Mapping) or doc.get("kind") != "Template":
            continue
        problems += _lint_doc(str(file), file.parent, node, doc, actions, engine)
    return problems


def _lint_doc(name: str, base: Path, node: yaml.Node, doc: Mapping[str, Any], actions: set[str],
              engine: ExpressionEngine) -> list[Problem]:
    out: list[Problem] = []

    def add(where: list[Any], message: str, severity: str = "error") -> None:
        out.append(Problem(name, _line(node, where), message, severity))

    api = doc.get("apiVersion")
    if api in LEGACY_API_VERSIONS:
        add(["apiVersion"], f"apiVersion {api} is a legacy template format that is no longer run; change it "
            f"to {TEMPLATE_API_VERSION} and write expressions as ${{{{ parameters.x }}}}")
        return out
    if api != TEMPLATE_API_VERSION:
        add(["apiVersion"], f"unknown Template apiVersion {api!r}; use {TEMPLATE_API_VERSION}")
        return out
    for err in _template_validator().iter_errors(json.loads(json.dumps(doc, default=str))):
        where = list(err.absolute_path)
        field = ".".join(str(p) for p in where) or "(document)"
        add(where, f"{field}: {err.message}")
    spec = doc.get("spec") or {}
    steps = spec.get("steps") if isinstance(spec.get("steps"), list) else []
    step_ids = {str(s.get("id")) for s in steps if isinstance(s, Mapping) and s.get("id")}
    params = _parameter_names(spec.get("parameters"))
    for i, step in enumerate(steps):
        if not isinstance(step, Mapping):
            continue
        action = step.get("action")
        if isinstance(action, str) and action not in actions:
            add(["spec", "steps", i, "action"], f"unknown action {action!r}; known actions are listed by "
                "GET /api/scaffolder/v2/actions")
        each = step.get("each")
        if each is not None and not isinstance(each, (list, dict)) and not (
            isinstance(each, str) and "${{" in each
        ):
            add(["spec", "steps", i, "each"], f"each must be a list, an object or an expression, got {each!r}")
        url = (step.get("input") or {}).get("url") if isinstance(step.get("input"), Mapping) else None
        if (isinstance(url, str) and "${{" not in url and "://" not in url
                and action in ("fetch:template", "fetch:plain", "fetch:cookiecutter")
                and not (base / url).exists()):
            add(["spec", "steps", i, "input", "url"], f"url {url!r} does not exist relative to the template",
                "warning")
    for where, value in _strings(spec.get("steps"), ["spec", "steps"]) + _strings(spec.get("output"), ["spec", "output"]):
        if "${{" not in value:
            continue
        problem = engine.check_syntax(value)
        if problem:
            add(where, f"expression does not parse ({problem}): {value.strip()[:80]}")
        for m in _STEP_REF.finditer(value):
            ref = m.group(1) or m.group(2)
            if ref not in step_ids:
                add(where, f"refers to steps.{ref}, but no step has id {ref!r}")
        for m in _PARAM_REF.finditer(value):
            if m.group(1) not in params:
                add(where, f"refers to parameters.{m.group(1)}, which no parameter defines")
    return out
