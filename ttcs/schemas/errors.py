"""Turn pydantic validation errors into messages a person can act on."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


def explain(exc: ValidationError, *, limit: int = 10) -> str:
    """One line per problem: ``where: what is wrong (got VALUE)``; at most ``limit`` lines."""
    lines = [_line(err) for err in exc.errors(include_url=False)[:limit]]
    more = exc.error_count() - len(lines)
    if more > 0:
        lines.append(f"... and {more} more problem(s)")
    return "; ".join(lines)


def problems(exc: ValidationError) -> list[dict[str, Any]]:
    """Structured form for APIs: ``[{"field": "a.b", "message": "...", "input": ...}]``."""
    return [{"field": _loc(err["loc"]), "message": _message(err),
             "input": _short(err.get("input"))} for err in exc.errors(include_url=False)]


def _line(err: Any) -> str:
    where = _loc(err["loc"]) or "input"
    got = err.get("input")
    suffix = "" if err["type"] == "missing" or isinstance(got, dict) else f" (got {_short(got)!r})"
    return f"{where}: {_message(err)}{suffix}"


def _message(err: Any) -> str:
    if err["type"] == "missing":
        return "is required"
    if err["type"] == "extra_forbidden":
        return "is not a known field (check the spelling)"
    msg: str = err["msg"]
    return msg.removeprefix("Value error, ")


def _loc(loc: tuple[Any, ...]) -> str:
    # Drop the union-member tags pydantic inserts ('function-after[...]', 'tagged-union[...]').
    parts = [str(p) for p in loc if not (isinstance(p, str) and "[" in p)]
    return ".".join(parts)


def _short(value: Any) -> Any:
    text = repr(value)
    return value if len(text) <= 60 else text[:57] + "..."
