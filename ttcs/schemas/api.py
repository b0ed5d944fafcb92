"""Envelopes of the northbound API: problems (RFC 9457) and pages of a listing."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from .base import Model

T = TypeVar("T")


class FieldProblem(Model):
    """One thing wrong with the input: where, and what."""

    field: str = Field(description="dotted path in the body or query ('' = the whole input)")
    message: str
    input: Any = None


class Problem(Model):
    """An error, as ``application/problem+json`` (RFC 9457). ``detail`` says what to do."""

    type: str = Field(default="about:blank", description="URI naming the kind of problem")
    title: str = Field(description="short summary of the kind of problem")
    status: int = Field(ge=400, le=599)
    detail: str = Field(description="what went wrong here, and how to put it right")
    instance: str | None = Field(default=None, description="the request path")
    errors: list[FieldProblem] | None = Field(default=None, description="input problems")
    violations: list[str] | None = Field(default=None, description="area policy rules a "
                                         "broadcast breaks")


class Page(BaseModel, Generic[T]):
    """One page of a listing. ``next`` is the link to the following page (absent at the end)."""

    items: list[T]
    limit: int
    offset: int
    next: str | None = Field(default=None, description="URL of the next page, if any")
