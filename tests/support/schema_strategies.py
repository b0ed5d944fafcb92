"""Hypothesis strategies that produce documents valid by a JSON Schema (the subset pydantic
emits: objects, arrays, strings with patterns and lengths, numbers with bounds, enums, consts,
anyOf/oneOf, $ref, date-time and URI formats)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=30)
_ZONES = st.sampled_from([UTC, timezone(timedelta(hours=7))])
_DATETIMES = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                          timezones=_ZONES).map(lambda d: d.isoformat())
_URLS = st.sampled_from(["http://hub.example/media/a.mp3", "https://cdn.example.vn/x/y.wav",
                         "rtsp://10.0.0.1/stream"])


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    defs = schema.get("$defs", {})
    return _strategy(schema, defs)


def _strategy(node: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[Any]:
    if "$ref" in node:
        return st.deferred(lambda: _strategy(defs[node["$ref"].split("/")[-1]], defs))
    if "const" in node:
        return st.just(node["const"])
    if "enum" in node:
        return st.sampled_from(node["enum"])
    for key in ("anyOf", "oneOf"):
        if key in node:
            return st.one_of([_strategy(n, defs) for n in node[key]])
    if "allOf" in node and len(node["allOf"]) == 1:
        return _strategy(node["allOf"][0], defs)
    kind = node.get("type")
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return st.integers(min_value=node.get("minimum", -(2**31)),
                           max_value=node.get("maximum", 2**31))
    if kind == "number":
        return st.floats(min_value=node.get("minimum", -1e9), max_value=node.get("maximum", 1e9),
                         allow_nan=False, allow_infinity=False)
    if kind == "string":
        return _string(node)
    if kind == "array":
        items = _strategy(node.get("items", {"type": "string"}), defs)
        return st.lists(items, min_size=node.get("minItems", 0),
                        max_size=max(node.get("minItems", 0), min(node.get("maxItems", 3), 3)))
    if kind == "object" or "properties" in node:
        return _object(node, defs)
    return st.one_of(st.none(), st.booleans(), st.integers(-100, 100), _TEXT)


def _string(node: dict[str, Any]) -> st.SearchStrategy[str]:
    fmt = node.get("format")
    if fmt == "date-time":
        return _DATETIMES
    if fmt == "uri":
        return _URLS
    if "pattern" in node:
        return st.from_regex(node["pattern"], fullmatch=True).filter(
            lambda s: node.get("minLength", 0) <= len(s) <= node.get("maxLength", 10**6))
    low, high = node.get("minLength", 0), node.get("maxLength", 30)
    return st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
                   min_size=low, max_size=max(low, min(high, 30)))


def _object(node: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    props = node.get("properties", {})
    required = set(node.get("required", []))
    fixed = {k: _strategy(v, defs) for k, v in props.items() if k in required}
    optional = {k: _strategy(v, defs) for k, v in props.items() if k not in required}
    extra = node.get("additionalProperties")
    base = st.fixed_dictionaries(fixed, optional=optional)
    if isinstance(extra, dict) and not props:
        return st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True),
                               _strategy(extra, defs), max_size=3)
    return base
