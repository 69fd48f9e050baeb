"""JavaScript value semantics for template expressions.

Backstage evaluates ``${{ }}`` with a Nunjucks interpreter running in JavaScript, so templates in
the wild rely on JavaScript behaviour: ``"a" + 1`` is ``a1``, ``true`` prints ``true``, ``1.0``
prints ``1``, a list prints ``1,a``, strings have ``.length``, ``.startsWith()``, ``.replaceAll()``
and so on. This module gives Python values those behaviours *without* exposing any Python
attribute: ``js_attribute`` is the only way an expression reaches a method, and it answers from a
fixed table (anything else is "undefined"). Every string-producing helper is bounded by
``MAX_STRING`` so that one expression cannot allocate gigabytes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from jinja2 import Undefined
from jinja2.exceptions import SecurityError

MAX_STRING = 5_000_000  # characters one expression may produce (a generous skeleton file)


class JsUndefined(Undefined):
    """JavaScript-like ``undefined``: prints "", chains (``a.b.c`` is undefined, not an error),
    is falsy, but calling it fails, as in Nunjucks (``Unable to call `x`, which is undefined``)."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        if name[:2] == "__":
            raise AttributeError(name)
        return self

    def __getitem__(self, key: Any) -> JsUndefined:
        return self

    def __str__(self) -> str:
        return ""


def bounded(value: str) -> str:
    if len(value) > MAX_STRING:
        raise SecurityError(f"expression result longer than {MAX_STRING} characters")
    return value


def js_number(value: float) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
    return repr(value)


def js_str(value: Any, *, top: bool = True) -> str:
    """``String(value)`` as JavaScript prints it (undefined/null print "" at top level, as Nunjucks
    suppresses them; inside a list they print as "" too, as ``Array.prototype.join`` does)."""
    if value is None or isinstance(value, Undefined):
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float)):
        return js_number(value)
    if isinstance(value, (list, tuple)):
        return bounded(",".join(js_str(v, top=False) for v in value))
    if isinstance(value, dict):
        return "[object Object]"
    if callable(value):
        return "function () { [native code] }"
    return str(value)


def js_concat_str(value: Any) -> str:
    """String conversion used by ``+``: unlike printing, undefined/null stay visible."""
    if isinstance(value, Undefined):
        return "undefined"
    if value is None:
        return "null"
    return js_str(value)


def js_plus(left: Any, right: Any) -> Any:
    """JavaScript ``+``: numeric addition for two numbers, otherwise string concatenation."""
    numeric = (int, float)
    if isinstance(left, numeric) and isinstance(right, numeric):
        return left + right
    return bounded(js_concat_str(left) + js_concat_str(right))


def normalize_json(value: Any) -> Any:
    """Turn an expression result into plain JSON data (as ``JSON.parse(JSON.stringify(x))``).

    Undefined and functions become ``MISSING`` (the caller drops the key), integral floats become
    ints, tuples become lists.
    """
    if isinstance(value, Undefined) or callable(value):
        return MISSING
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e21:
            return int(value)
        if math.isnan(value) or math.isinf(value):
            return None
        return value
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, (list, tuple)):
        items = [normalize_json(v) for v in value]
        return [None if v is MISSING else v for v in items]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            nv = normalize_json(v)
            if nv is not MISSING:
                out[str(k)] = nv
        return out
    return str(value)


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def js_dump(value: Any, indent: int | str | None = None) -> Any:
    """Nunjucks ``dump``: ``JSON.stringify(value, null, indent)``; undefined stays undefined."""
    data = normalize_json(value)
    if data is MISSING:
        return value
    spaces = indent if isinstance(indent, (int, str)) and indent else None
    if isinstance(spaces, int):
        spaces = min(spaces, 10)
    if spaces is None:
        return bounded(json.dumps(data, ensure_ascii=False, separators=(",", ":")))
    return bounded(json.dumps(data, ensure_ascii=False, indent=spaces))


def _index(length: int, value: Any, default: int) -> int:
    if value is None or isinstance(value, Undefined):
        return default
    i = int(value)
    return max(length + i, 0) if i < 0 else min(i, length)


def _safe_replace(text: str, old: str, new: str, count: int = -1) -> str:
    occurrences = text.count(old) if old else len(text) + 1
    if count >= 0:
        occurrences = min(occurrences, count)
    if len(text) + occurrences * (len(new) - len(old)) > MAX_STRING:
        raise SecurityError(f"replace would produce more than {MAX_STRING} characters")
    return text.replace(old, new, count)


def _split(text: str, sep: Any = None, limit: Any = None) -> list[str]:
    if sep is None or isinstance(sep, Undefined):
        parts = [text]
    elif sep == "":
        parts = list(text)
    else:
        parts = text.split(str(sep))
    return parts if limit is None else parts[: int(limit)]


def _pad(text: str, length: Any, fill: Any, start: bool) -> str:
    target = int(length)
    if target > MAX_STRING:
        raise SecurityError("padding longer than the expression size limit")
    fill_s = " " if fill is None else str(fill)
    if target <= len(text) or not fill_s:
        return text
    pad = (fill_s * ((target - len(text)) // len(fill_s) + 1))[: target - len(text)]
    return pad + text if start else text + pad


def _repeat(text: str, n: Any) -> str:
    count = int(n)
    if count < 0 or len(text) * count > MAX_STRING:
        raise SecurityError("repeat would exceed the expression size limit")
    return text * count


def _string_methods(s: str) -> dict[str, Callable[..., Any]]:
    n = len(s)
    return {
        "charAt": lambda i=0: s[int(i)] if 0 <= int(i) < n else "",
        "charCodeAt": lambda i=0: ord(s[int(i)]) if 0 <= int(i) < n else math.nan,
        "at": lambda i=0: s[int(i)] if -n <= int(i) < n else None,
        "concat": lambda *parts: bounded(s + "".join(js_str(p) for p in parts)),
        "endsWith": lambda suffix, end=None: s[: _index(n, end, n)].endswith(str(suffix)),
        "startsWith": lambda prefix, pos=0: s.startswith(str(prefix), _index(n, pos, 0)),
        "includes": lambda sub, pos=0: str(sub) in s[_index(n, pos, 0):],
        "indexOf": lambda sub, pos=0: s.find(str(sub), _index(n, pos, 0)),
        "lastIndexOf": lambda sub: s.rfind(str(sub)),
        "replace": lambda old, new: _safe_replace(s, str(old), js_str(new), 1),
        "replaceAll": lambda old, new: _safe_replace(s, str(old), js_str(new)),
        "slice": lambda start=0, end=None: s[_index(n, start, 0) : _index(n, end, n)],
        "substring": lambda start=0, end=None: s[
            min(_index(n, max(int(start), 0), 0), _index(n, end, n)) : max(
                _index(n, max(int(start), 0), 0), _index(n, end, n)
            )
        ],
        "split": lambda sep=None, limit=None: _split(s, sep, limit),
        "toLowerCase": lambda: s.lower(),
        "toUpperCase": lambda: s.upper(),
        "trim": lambda: s.strip(),
        "trimStart": lambda: s.lstrip(),
        "trimEnd": lambda: s.rstrip(),
        "padStart": lambda length, fill=None: _pad(s, length, fill, True),
        "padEnd": lambda length, fill=None: _pad(s, length, fill, False),
        "repeat": lambda count: _repeat(s, count),
        "toString": lambda: s,
    }


def _array_methods(items: list[Any]) -> dict[str, Callable[..., Any]]:
    n = len(items)
    return {
        "includes": lambda v: v in items,
        "indexOf": lambda v: items.index(v) if v in items else -1,
        "join": lambda sep=",": bounded(str(sep).join(js_str(v, top=False) for v in items)),
        "slice": lambda start=0, end=None: items[_index(n, start, 0) : _index(n, end, n)],
        "concat": lambda *more: items + [x for m in more for x in (m if isinstance(m, list) else [m])],
        "at": lambda i=0: items[int(i)] if -n <= int(i) < n else None,
        "toString": lambda: js_str(items),
    }


def js_attribute(obj: Any, name: str) -> Any:
    """Resolve ``obj.name`` the JavaScript way, or return ``MISSING`` (the caller then tries
    item lookup / undefined). Never returns a Python attribute."""
    if isinstance(obj, str):
        if name == "length":
            return len(obj)
        return _string_methods(obj).get(name, MISSING)
    if isinstance(obj, (list, tuple)):
        if name == "length":
            return len(obj)
        return _array_methods(list(obj)).get(name, MISSING)
    return MISSING
