"""``${{ }}`` expressions and Nunjucks-style file templating, on Jinja2's SandboxedEnvironment.

Model. Backstage renders template strings with Nunjucks, configured with ``${{``/``}}`` as variable
delimiters (``{%``/``%}`` blocks and ``{# #}`` comments unchanged); ``cookiecutterCompat`` switches
file rendering to ``{{``/``}}`` with the context under ``cookiecutter``. We use Jinja2's
``SandboxedEnvironment`` (never the plain ``Environment``) with the same delimiters plus a
JavaScript-compatibility layer:

* a token pre-pass (``_JsSyntax``): ``===``/``!==`` become ``==``/``!=``, bare keys in object
  literals (``{a: 1}``) become strings, ``elseif`` becomes ``elif``;
* attribute access goes through ``jscompat.js_attribute`` only: dict keys, ``.length`` and the
  JavaScript string/array methods (``.replaceAll()``, ``.includes()``, ``.split()``, ...). No Python
  attribute or method is ever reachable; names starting with ``_`` raise ``SecurityError``;
* ``+`` follows JavaScript (``"a" + 1`` is ``a1``; ``undefined + "/"`` is ``undefined/``);
  printing follows JavaScript (``true``, ``1`` for ``1.0``, ``1,a`` for lists,
  ``[object Object]``); ``undefined``/``null`` print ``""``;
* Nunjucks's ``for k, v in object`` iterates key/value pairs.

Value rules (``evaluate``): a string that is exactly one ``${{ expr }}`` keeps the expression's type
(number, list, object); an undefined result drops the key; a string that fails to render is kept raw
(``${{ ... }}``). ``render_text`` (files of fetch:template) raises ``ExpressionError`` instead.

Bounds: every render has a budget (``Limits``): loop iterations (all ``for`` loops share it, so
nested loops cannot multiply), calls, wall time, and string sizes (``*``, ``+``, ``~``, replace,
padding, output). Exceeding one raises ``SecurityError``, which fails the expression.
"""

from __future__ import annotations

import contextvars
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import SecurityError, TemplateError, TemplateSyntaxError
from jinja2.ext import Extension
from jinja2.filters import FILTERS as JINJA_FILTERS
from jinja2.lexer import Token, TokenStream
from jinja2.sandbox import SandboxedEnvironment

from greenroom.core.errors import InputError
from greenroom.scaffolder.engine import jscompat
from greenroom.scaffolder.engine.filters import DEFAULT_INTEGRATIONS, make_filters
from greenroom.scaffolder.engine.jscompat import MISSING, JsUndefined, bounded, js_str

_NUNJUCKS_FILTERS = ["abs", "batch", "capitalize", "center", "default", "d", "dictsort", "escape", "e", "first", "float", "forceescape", "groupby", "indent", "int", "last", "list", "lower", "random", "reject", "rejectattr", "reverse", "round", "safe", "select", "selectattr", "slice", "sort", "sum", "title", "trim", "truncate", "upper", "urlencode", "urlize", "wordcount", "striptags"]


@dataclass(frozen=True)
class Limits:
    """Per-render budget. Defaults are far above what real skeleton files need."""

    max_iterations: int = 100_000
    max_calls: int = 200_000
    max_seconds: float = 5.0
    max_output: int = jscompat.MAX_STRING


class ExpressionError(InputError):
    """A template string or file failed to render; ``line`` is 1-based within it when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


@dataclass
class _Budget:
    limits: Limits
    deadline: float
    iterations: int = 0
    calls: int = 0
    captured: list[Any] = field(default_factory=list)

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise SecurityError(f"expression took longer than {self.limits.max_seconds} s")


_budget: contextvars.ContextVar[_Budget] = contextvars.ContextVar("scaffolder_expression_budget")


def _current_budget() -> _Budget:
    try:
        return _budget.get()
    except LookupError:  # rendering outside ExpressionEngine (should not happen): fresh budget
        budget = _Budget(Limits(), time.monotonic() + Limits().max_seconds)
        _budget.set(budget)
        return budget


class _JsSyntax(Extension):
    """Token pre-pass turning JavaScript spellings into Jinja ones (see module docstring)."""

    def filter_stream(self, stream: TokenStream) -> Iterator[Token]:
        tokens = list(stream)
        brackets: list[str] = []
        last_type = ""
        i = 0
        while i < len(tokens):
            token = tokens[i]
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            if token.type in ("eq", "ne") and nxt is not None and nxt.type == "assign":
                i += 1  # `===` lexes as `==` `=`; JavaScript's strict equality is our `==`
            elif token.type == "name" and token.value == "elseif":
                token = Token(token.lineno, "name", "elif")
            elif token.type in ("lbrace", "lbracket", "lparen"):
                brackets.append(token.type)
            elif token.type in ("rbrace", "rbracket", "rparen") and brackets:
                brackets.pop()
            elif (
                token.type == "name" and brackets and brackets[-1] == "lbrace"
                and nxt is not None and nxt.type == "colon" and last_type in ("lbrace", "comma")
            ):
                token = Token(token.lineno, "string", token.value)  # {a: 1} -> {'a': 1}
            elif token.type in ("variable_end", "block_end"):
                brackets.clear()
            last_type = token.type
            i += 1
            yield token


def _bounded_iter(value: Any, pairs: bool = False) -> Iterator[Any]:
    budget = _current_budget()
    if isinstance(value, Mapping):
        items: Any = value.items() if pairs else value.keys()
    elif value is None or isinstance(value, jscompat.Undefined):
        items = ()
    else:
        items = value
    for item in items:
        budget.iterations += 1
        if budget.iterations > budget.limits.max_iterations:
            raise SecurityError(f"more than {budget.limits.max_iterations} loop iterations")
        if budget.iterations % 256 == 0:
            budget.tick()
        yield item


def _concat(parts: list[Any]) -> str:
    return bounded("".join(js_str(p) for p in parts))


def _capture(value: Any) -> str:
    _current_budget().captured.append(value)
    return ""


class _SecureEnvironment(SandboxedEnvironment):
    """The sandbox plus JavaScript member lookup, bounded loops/strings and a call budget."""

    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        _rewrite(tree)
        return tree

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(attribute, str) and attribute.startswith("_"):
            raise SecurityError(f"access to attribute {attribute!r} is not allowed in templates")
        if isinstance(obj, Mapping):
            return obj[attribute] if attribute in obj else self.undefined(obj=obj, name=attribute)
        if obj is None or isinstance(obj, jscompat.Undefined):
            return self.undefined(name=attribute)
        found = jscompat.js_attribute(obj, attribute)
        if found is not MISSING:
            return found
        if isinstance(obj, (str, int, float, bool, list, tuple)):
            return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)  # loop, cycler, namespace, macro: sandbox rules

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(argument, str):
            return self.getattr(obj, argument)
        if isinstance(obj, (str, list, tuple)) and isinstance(argument, (int, float)):
            index = int(argument)
            if 0 <= index < len(obj) and index == argument:
                return obj[index]
            return self.undefined(obj=obj, name=str(argument))  # JS: a[-1] is undefined
        if isinstance(argument, slice) and isinstance(obj, (str, list, tuple)):
            return obj[argument]
        if obj is None or isinstance(obj, jscompat.Undefined) or isinstance(obj, Mapping):
            return self.undefined(obj=obj, name=str(argument))
        return super().getitem(obj, argument)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "+":
            return jscompat.js_plus(left, right)
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(n, int):
                    if len(seq) * n > self._limits.max_output:
                        raise SecurityError("sequence repetition exceeds the size limit")
            return left * right
        if operator == "**":
            if isinstance(right, (int, float)) and abs(right) > 64 and abs(left) > 1:
                raise SecurityError("exponent too large")
            return left**right
        if operator == "%":
            if isinstance(left, str):
                raise SecurityError("string formatting with % is not available in templates")
            return left % right
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = _current_budget()
        budget.calls += 1
        if budget.calls > budget.limits.max_calls:
            raise SecurityError(f"more than {budget.limits.max_calls} calls in one expression")
        if budget.calls % 64 == 0:
            budget.tick()
        return super().call(__context, __obj, *args, **kwargs)

    _limits: Limits = Limits()


class _CompatEnvironment(_SecureEnvironment):
    """cookiecutterCompat: Jinja-style method names on strings/dicts used by cookiecutter skeletons."""

    _PY_STR = {"upper": "toUpperCase", "lower": "toLowerCase", "strip": "trim", "lstrip": "trimStart",
               "rstrip": "trimEnd", "startswith": "startsWith", "endswith": "endsWith", "split": "split"}

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, str) and attribute in self._PY_STR:
            return jscompat.js_attribute(obj, self._PY_STR[attribute])
        if isinstance(obj, str) and attribute in ("title", "capitalize"):
            return getattr(obj, attribute)
        if isinstance(obj, str) and attribute == "replace":
            return lambda old, new: jscompat._safe_replace(obj, str(old), str(new))
        if isinstance(obj, Mapping) and attribute not in obj and attribute in ("items", "keys", "values"):
            return lambda: list(getattr(obj, attribute)())
        return super().getattr(obj, attribute)


def _rewrite(node: nodes.Node) -> None:
    """Bound every ``for`` loop and turn ``~`` into a size-checked concatenation."""
    for field_name in node.fields:
        value = getattr(node, field_name, None)
        if isinstance(value, nodes.Node):
            replacement = _replace(value)
            setattr(node, field_name, replacement)
            _rewrite(replacement)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, nodes.Node):
                    value[i] = _replace(item)
                    _rewrite(value[i])
    if isinstance(node, nodes.For) and not getattr(node, "_gr_bounded", False):
        pairs = isinstance(node.target, nodes.Tuple) and len(node.target.items) == 2
        node.iter = nodes.Filter(
            node.iter, "gr_iter", [nodes.Const(pairs)], [], None, None, lineno=node.lineno
        )
        node._gr_bounded = True  # type: ignore[attr-defined]


def _replace(node: nodes.Node) -> nodes.Node:
    if isinstance(node, nodes.Concat):
        return nodes.Filter(nodes.List(node.nodes), "gr_concat", [], [], None, None, lineno=node.lineno)
    return node


def _default(value: Any, default_value: Any = "", boolean: bool = False) -> Any:
    if isinstance(value, jscompat.Undefined) or (boolean and not value):
        return default_value
    return value


def _replace_filter(value: Any, old: Any, new: Any, count: Any = None) -> str:
    limit = -1 if count is None or isinstance(count, jscompat.Undefined) else int(count)
    return jscompat._safe_replace(js_str(value), js_str(old), js_str(new), limit)


def _width_checked(name: str) -> Callable[..., Any]:
    original = JINJA_FILTERS[name]

    def checked(value: Any, width: Any = 80, *args: Any, **kwargs: Any) -> Any:
        if isinstance(width, int) and width > 10_000:
            raise SecurityError(f"{name} width too large")
        return original(value, width, *args, **kwargs)

    return checked


def _length(value: Any) -> int:
    if isinstance(value, jscompat.Undefined) or value is None:
        return 0
    return len(value) if hasattr(value, "__len__") else 0


def _nl2br(value: Any) -> str:
    return js_str(value).replace("\r\n", "<br />\n").replace("\n", "<br />\n")


def _join(value: Any, separator: Any = "", attribute: Any = None) -> str:
    items = list(value or [])
    if attribute is not None:
        items = [i.get(attribute) if isinstance(i, Mapping) else None for i in items]
    return bounded(js_str(separator).join(js_str(i) for i in items))


class ExpressionEngine:
    """Renders expressions and files. Thread-safe for concurrent renders (state is per call).

    ``integrations`` maps git hosts to integration types for parseRepoUrl/projectSlug;
    ``extra_filters`` adds filters (e.g. from plugins). Filters receive plain JSON-like values.
    """

    def __init__(
        self,
        integrations: Mapping[str, str] | None = None,
        extra_filters: Mapping[str, Callable[..., Any]] | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.limits = limits or Limits()
        self.integrations = dict(DEFAULT_INTEGRATIONS if integrations is None else integrations)
        filters: dict[str, Callable[..., Any]] = {n: JINJA_FILTERS[n] for n in _NUNJUCKS_FILTERS}
        filters.update(
            {
                "center": _width_checked("center"),
                "indent": _width_checked("indent"),
                "truncate": _width_checked("truncate"),
                "default": _default,
                "d": _default,
                "replace": _replace_filter,
                "dump": jscompat.js_dump,
                "string": js_str,
                "length": _length,
                "join": _join,
                "nl2br": _nl2br,
                "gr_iter": _bounded_iter,
                "gr_concat": _concat,
                "gr_capture": _capture,
            }
        )
        filters.update(make_filters(self.integrations))
        filters.update(extra_filters or {})
        self._filters = filters
        self._envs: dict[tuple[bool, bool, bool], _SecureEnvironment] = {}
        self._cache: dict[tuple[tuple[bool, bool, bool], str], Any] = {}

    @property
    def filter_names(self) -> list[str]:
        return sorted(n for n in self._filters if not n.startswith("gr_"))

    def _env(self, compat: bool = False, trim: bool = False, lstrip: bool = False) -> _SecureEnvironment:
        key = (compat, trim, lstrip)
        env = self._envs.get(key)
        if env is None:
            cls = _CompatEnvironment if compat else _SecureEnvironment
            env = cls(
                variable_start_string="{{" if compat else "${{",
                variable_end_string="}}",
                autoescape=False,
                keep_trailing_newline=True,  # Nunjucks keeps a file's final newline
                trim_blocks=trim,
                lstrip_blocks=lstrip,
                undefined=JsUndefined,
                finalize=js_str,
                extensions=[_JsSyntax],
            )
            env._limits = self.limits
            env.filters = dict(self._filters)
            if compat:
                env.filters["jsonify"] = jscompat.js_dump
            env.globals.pop("lipsum", None)
            env.globals.update({"null": None})
            self._envs[key] = env
        return env

    def _compile(self, source: str, key: tuple[bool, bool, bool]) -> Any:
        cached = self._cache.get((key, source))
        if cached is None:
            cached = self._env(*key).from_string(source)
            if len(self._cache) > 2048:
                self._cache.clear()
            self._cache[(key, source)] = cached
        return cached

    def _run(self, source: str, context: Mapping[str, Any], key: tuple[bool, bool, bool]) -> tuple[str, _Budget]:
        budget = _Budget(self.limits, time.monotonic() + self.limits.max_seconds)
        token = _budget.set(budget)
        try:
            template = self._compile(source, key)
            size = 0
            chunks: list[str] = []
            for chunk in template.generate(dict(context)):
                size += len(chunk)
                if size > self.limits.max_output:
                    raise SecurityError(f"rendered output larger than {self.limits.max_output} characters")
                chunks.append(chunk)
            return "".join(chunks), budget
        finally:
            _budget.reset(token)

    @staticmethod
    def _error(source: str, exc: Exception) -> ExpressionError:
        line = getattr(exc, "lineno", None)
        if line is None:
            for frame in reversed(traceback.extract_tb(exc.__traceback__)):
                if frame.filename == "<template>":
                    line = frame.lineno
                    break
        text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        return ExpressionError(f"{type(exc).__name__}: {text}", line)

    def render_text(
        self,
        source: str,
        context: Mapping[str, Any],
        *,
        cookiecutter: bool = False,
        trim_blocks: bool = False,
        lstrip_blocks: bool = False,
    ) -> str:
        """Render a whole text (a skeleton file or file name); raise ``ExpressionError`` on failure."""
        start = "{{" if cookiecutter else "${{"
        if start not in source and "{%" not in source and "{#" not in source:
            return source
        try:
            return self._run(source, context, (cookiecutter, trim_blocks, lstrip_blocks))[0]
        except (TemplateError, ArithmeticError, TypeError, ValueError, LookupError, InputError,
                RecursionError, AttributeError) as exc:
            raise self._error(source, exc) from None

    def is_single_expression(self, value: str) -> bool:
        if not (value.startswith("${{") and value.endswith("}}")):
            return False
        try:
            kinds = [tok[1] for tok in self._env().lex(value)]
        except TemplateSyntaxError:
            return False
        return (
            kinds[0] == "variable_begin" and kinds[-1] == "variable_end"
            and kinds.count("variable_begin") == 1 and "data" not in kinds
            and "block_begin" not in kinds and "comment_begin" not in kinds
        )

    def evaluate_string(self, value: str, context: Mapping[str, Any]) -> Any:
        """One string of a step input/if/output: typed if a whole expression, ``MISSING`` if
        undefined/empty, the raw string if rendering fails."""
        if "${{" not in value and "{%" not in value and "{#" not in value:
            return value
        if self.is_single_expression(value):
            try:
                inner = value[3:-2]
                _, budget = self._run("${{ (" + inner + ") | gr_capture }}", context, (False, False, False))
                return jscompat.normalize_json(budget.captured[-1]) if budget.captured else MISSING
            except Exception:  # noqa: BLE001 - any failure falls back, exactly as Backstage does
                pass
        try:
            text = self.render_text(value, context)
        except ExpressionError:
            return value
        return MISSING if text == "" else text

    def evaluate(self, value: Any, context: Mapping[str, Any]) -> Any:
        """Render every string inside a JSON value; keys whose value is undefined are dropped."""
        if isinstance(value, str):
            return self.evaluate_string(value, context)
        if isinstance(value, Mapping):
            out = {}
            for k, v in value.items():
                rendered = self.evaluate(v, context)
                if rendered is not MISSING:
                    out[k] = rendered
            return out
        if isinstance(value, list):
            return [None if (r := self.evaluate(v, context)) is MISSING else r for v in value]
        return value

    def check_syntax(self, value: str) -> str | None:
        """Return a parse error message for a template string, or None if it parses."""
        try:
            self._env().parse(value)
        except TemplateSyntaxError as exc:
            return f"line {exc.lineno}: {exc.message}"
        return None


def is_truthy(value: Any) -> bool:
    """Backstage's ``isTruthy``: arrays by length, everything else by JavaScript truthiness."""
    if value is MISSING or value is None:
        return False
    if isinstance(value, list):
        return len(value) > 0
    if isinstance(value, dict):
        return True
    return bool(value)
