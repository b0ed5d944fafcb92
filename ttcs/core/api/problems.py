"""Every error of the API as one ``application/problem+json`` document (RFC 9457).

The hub's own exceptions say what went wrong in words a person can act on; here each kind
gets its HTTP status. Anything unexpected is logged with its traceback and answered with a
plain 500 that shows none of it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web
from pydantic import ValidationError

from ...schemas.api import FieldProblem, Problem
from ...schemas.errors import problems
from .. import errors as e
from ..schedule.service import PolicyViolation
from .routing import BadInput, MalformedBody

log = structlog.get_logger("ttcs.api")

PROBLEM = "application/problem+json"
BASE = "https://ttcs-hub.example/problems/"

#: exception class -> (status, problem type, title); the first matching class wins
STATUSES: list[tuple[type[BaseException], int, str, str]] = [
    (e.NotAuthenticated, 401, "unauthenticated", "Not authenticated"),
    (e.AccessDenied, 403, "forbidden", "Not allowed"),
    (e.ApprovalDenied, 403, "approval-denied", "Not allowed to approve this item"),
    (e.RateLimited, 429, "rate-limited", "Too many requests"),
    (PolicyViolation, 422, "policy-violation", "The broadcast breaks area policy"),
    (MalformedBody, 400, "malformed-body", "The body is not JSON"),
    (BadInput, 422, "invalid-input", "Invalid input"),
    (e.InvalidInput, 422, "invalid-input", "Invalid input"),
    (e.NotFound, 404, "not-found", "Not found"),
    (e.UnknownPlugin, 422, "unknown-plugin", "Unknown plugin"),
    (e.Conflict, 409, "conflict", "Conflict"),
    (e.InvalidTransition, 409, "invalid-transition", "Not possible in the item's state"),
    (e.ContentNotDispatchable, 409, "not-dispatchable", "The content may not be played"),
    (e.UnsupportedCommand, 422, "unsupported-command", "The device cannot do this"),
    (e.CommandRejected, 409, "command-rejected", "The device refused the command"),
    (e.DeviceTimeout, 504, "device-timeout", "The device did not answer in time"),
    (e.DeviceError, 502, "device-error", "The device could not be reached or understood"),
    (e.TtsError, 502, "tts-failed", "Text-to-speech failed"),
    (e.TTCSError, 400, "bad-request", "The request cannot be done"),
]


def problem_response(status: int, kind: str, title: str, detail: str, instance: str, *,
                     headers: dict[str, str] | None = None, **extra: object) -> web.Response:
    body = Problem(type=BASE + kind, title=title, status=status, detail=detail,
                   instance=instance, **extra)
    return web.Response(status=status, headers=headers, content_type=PROBLEM,
                        text=json.dumps(body.model_dump(mode="json", exclude_none=True),
                                        ensure_ascii=False))


def from_exception(exc: BaseException, instance: str) -> web.Response:
    for cls, status, kind, title in STATUSES:
        if isinstance(exc, cls):
            extra: dict[str, object] = {}
            headers: dict[str, str] = {}
            if isinstance(exc, BadInput) and isinstance(exc.errors, ValidationError):
                extra["errors"] = [FieldProblem(**p) for p in problems(exc.errors)]
            if isinstance(exc, PolicyViolation):
                extra["violations"] = [str(v) for v in exc.violations]
            if isinstance(exc, e.RateLimited):
                headers["Retry-After"] = str(max(1, int(exc.retry_after + 0.999)))
            if isinstance(exc, e.NotAuthenticated):
                headers["WWW-Authenticate"] = 'Bearer realm="ttcs"'
            return problem_response(status, kind, title, str(exc) or title, instance,
                                    headers=headers or None, **extra)
    raise exc


@web.middleware
async def problem_middleware(request: web.Request,
                             handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                             ) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        detail = {404: f"no such endpoint: {request.method} {request.path} (see "
                       "/api/v1/openapi.json)",
                  405: f"{request.method} is not allowed on {request.path}"}.get(
            exc.status, exc.reason)
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return problem_response(exc.status, "http-" + str(exc.status), exc.reason, detail,
                                request.path, headers=headers or None)
    except e.TTCSError as exc:
        return from_exception(exc, request.path)
    except Exception:
        log.exception("api.crashed", method=request.method, path=request.path)
        return problem_response(500, "internal", "Internal error", "the hub failed to "
                                "answer this request; the error is in its log", request.path)
