"""Expression value rules from the Backstage notes, JS compatibility, and sandbox refusals."""

from __future__ import annotations

from typing import Any

import pytest

from greenroom.scaffolder.engine.expressions import ExpressionEngine, ExpressionError
from greenroom.scaffolder.engine.jscompat import MISSING

ENGINE = ExpressionEngine()
CTX: dict[str, Any] = {"parameters": {"port": 8080, "name": "svc", "list": [1, "a"], "flag": True,
                                      "repoUrl": "github.com?owner=acme&repo=demo", "envs": "dev,qa"}}


@pytest.mark.parametrize(("source", "expected"), [
    ("${{ parameters.port }}", 8080),                       # whole expression keeps its type
    ("${{ parameters.envs.split(',') }}", ["dev", "qa"]),
    ("${{ parameters.missing }}", MISSING),                  # undefined drops the key
    ("a${{ parameters.missing }}b", "ab"),                    # undefined prints ""
    ("${{ undefined + '/' + undefined }}", "undefined/undefined"),
    ("x${{ 'a' + 1 }}", "xa1"),
    ("x${{ true }}", "xtrue"),
    ("x${{ 1.0 }}", "x1"),
    ("x${{ parameters.list }}", "x1,a"),
    ("x${{ {a: 1} }}", "x[object Object]"),
    ("${{ parameters.name === 'svc' }}", True),
    ("${{ parameters.flag !== true }}", False),
    ("${{ parameters.name.length }}", 3),
    ("${{ parameters.envs.replaceAll(',', '-') }}", "dev-qa"),
    ("${{ 'a-b-c'.replace('-', '+') }}", "a+b-c"),           # JS replace: first match only
    ("${{ 'a-b-c' | replace('-', '+') }}", "a+b+c"),         # Nunjucks filter: every match
    ("${{ parameters.name.startsWith('s') and parameters.name.includes('v') }}", True),
    ("${{ parameters.repoUrl | parseRepoUrl }}", {"host": "github.com", "owner": "acme", "repo": "demo"}),
    ("${{ parameters.repoUrl | projectSlug }}", "acme/demo"),
    ("${{ 'group:default/team-a' | parseEntityRef }}", {"kind": "group", "namespace": "default", "name": "team-a"}),
    ("${{ parameters | pick('port') }}", 8080),
    ("${{ parameters.list | dump }}", '[1,"a"]'),
    ("${{ parameters.name | projectSlug }}", "${{ parameters.name | projectSlug }}"),  # throws -> raw
    ("${{ nope( }}", "${{ nope( }}"),                        # does not parse -> raw
])
def test_value_rules(source: str, expected: Any) -> None:
    assert ENGINE.evaluate_string(source, CTX) == expected


def test_object_input_drops_undefined_keys_and_keeps_types() -> None:
    out = ENGINE.evaluate({"a": "${{ parameters.port }}", "b": "${{ parameters.nothing }}", "c": ["x"]}, CTX)
    assert out == {"a": 8080, "c": ["x"]}


def test_file_rendering_uses_nunjucks_syntax_and_fails_loudly() -> None:
    text = '{% for e in values.envs.split(",") %}ns-${{ e }}\n{% endfor %}{%- if values.x %}x{% endif %}\n'
    assert ENGINE.render_text(text, {"values": {"envs": "dev,qa"}}) == "ns-dev\nns-qa\n\n"
    with pytest.raises(ExpressionError) as info:
        ENGINE.render_text("line1\n${{ hashFiles('x') }}\n", {"values": {}})
    assert info.value.line == 2
    assert ENGINE.render_text("{{ cookiecutter.name | jsonify }}", {"cookiecutter": {"name": "n"}},
                              cookiecutter=True) == '"n"'


@pytest.mark.parametrize("source", [
    "${{ ''.__class__ }}",
    "${{ ''.__class__.__mro__[1].__subclasses__() }}",
    "${{ parameters.__class__ }}",
    "${{ parameters['__class__'] }}",
    "${{ parameters.items() }}",
    "${{ (parameters | attr('__class__')) }}",
    "${{ 'x' * 100000000 }}",
    "${{ range(10000000) | list | length }}",
    "${{ 'abc'.repeat(100000000) }}",
    "${{ ('x' * 1000000).replaceAll('', 'yyyyyy') }}",
    "${{ 2 ** 99999999 }}",
    "${{ '%999999999d' % 1 }}",
    "${{ lipsum(100000) }}",
])
def test_sandbox_refuses_escapes_and_bombs(source: str) -> None:
    assert ENGINE.evaluate_string(source, CTX) == source  # failed -> kept raw, nothing leaked
    with pytest.raises(ExpressionError):
        ENGINE.render_text(source, CTX)


def test_loops_share_one_budget() -> None:
    with pytest.raises(ExpressionError, match="loop iterations"):
        ENGINE.render_text("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}", {})
    with pytest.raises(ExpressionError):
        ENGINE.render_text('{% set ns = namespace(a="xxxxxxxxxx") %}{% for i in range(40) %}'
                           "{% set ns.a = ns.a ~ ns.a %}{% endfor %}${{ ns.a | length }}", {})
