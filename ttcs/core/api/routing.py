"""Endpoints as data: one declaration gives the route, the checks and the OpenAPI operation.

Each endpoint names its :class:`~ttcs.core.access.policy.Action`, its body, query and
response models, and (for one object) how to find the :class:`Target` it concerns. The
generic request handler authenticates, validates, asks the access policy, and only then runs
the endpoint's function with a :class:`Call`, which holds everything already checked. So a
handler never checks rights itself, and the OpenAPI document cannot describe an API other
than the one served.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import web
from pydantic import BaseModel, TypeAdapter, ValidationError

from ...schemas.api import Page
from ..access.policy import MUTATING, AccessPolicy, Action, ListScope, Principal, Target
from ..errors import AccessDenied, InvalidInput, NotAuthenticated

if TYPE_CHECKING:
    from ..hub import Hub
    from .service import ApiService

log = structlog.get_logger("ttcs.api")

PREFIX = "/api/v1"
JSON = "application/json"

Handler = Callable[["Call"], Awaitable[Any]]
TargetOf = Callable[["Call"], Awaitable[Target]]


class BadInput(InvalidInput):
    """Input that failed validation; carries pydantic's errors for the problem document."""

    def __init__(self, message: str, errors: ValidationError | None = None) -> None:
        super().__init__(message)
        self.errors = errors


@dataclass
class Call:
    """One request after authentication, validation and the access check."""

    request: web.Request
    api: ApiService
    principal: Principal
    policy: AccessPolicy
    path: dict[str, str]
    query: Any = None
    body: Any = None
    scope: ListScope = field(default_factory=lambda: ListScope(None))
    target: Target | None = None

    @property
    def hub(self) -> Hub:
        return self.api.hub

    @property
    def actor(self) -> str:
        return self.principal.actor

    @property
    def source(self) -> str:
        return self.api.source_address(self.request)

    def page(self, items: list[Any], limit: int, offset: int) -> Page[Any]:
        """A page from ``limit + 1`` fetched items (the extra one says a next page exists)."""
        more = len(items) > limit
        nxt = None
        if more:
            nxt = str(self.request.rel_url.update_query(offset=offset + limit, limit=limit))
        return Page[Any](items=items[:limit], limit=limit, offset=offset, next=nxt)

    async def area_filter(self, requested: str | None) -> str | None:
        """The area a listing covers: the one asked for (checked to be in scope by the
        endpoint's target) or else the caller's whole scope."""
        return requested if requested is not None else self.scope.area


@dataclass
class Endpoint:
    method: str
    path: str  # below PREFIX, aiohttp syntax: /devices/{id}
    handler: Handler
    summary: str
    tag: str
    action: Action | None  # None: public (no credentials)
    body: type[BaseModel] | TypeAdapter[Any] | None = None
    raw_body: str | None = None  # media type of a binary body (uploads)
    query: type[BaseModel] | None = None
    response: type[BaseModel] | TypeAdapter[Any] | None = None
    status: int = 200
    produces: str = JSON
    also_produces: tuple[str, ...] = ()  # further media types of the success response
    target: TargetOf | None = None
    description: str = ""
    errors: tuple[int, ...] = ()

    @property
    def operation_id(self) -> str:
        return self.handler.__name__


#: every endpoint, in declaration order (modules in ``resources`` add theirs on import)
ENDPOINTS: list[Endpoint] = []


def endpoint(method: str, path: str, *, tag: str, action: Action | None,
             summary: str, **options: Any) -> Callable[[Handler], Handler]:
    """Declare the decorated coroutine as the handler of ``method path``."""

    def register(handler: Handler) -> Handler:
        ENDPOINTS.append(Endpoint(method, path, handler, summary, tag, action,
                                  description=(handler.__doc__ or "").strip(), **options))
        return handler

    return register


def _validate(model: type[BaseModel] | TypeAdapter[Any], data: Any, where: str) -> Any:
    from ...schemas.errors import explain

    try:
        if isinstance(model, TypeAdapter):
            return model.validate_python(data)
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadInput(f"{where}: {explain(exc)}", exc) from exc


class MalformedBody(InvalidInput):
    """The body is not JSON at all."""


async def _read_json(request: web.Request) -> Any:
    raw = await request.read()
    if not raw:
        raise MalformedBody("the request needs a JSON body")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedBody(f"the body is not valid JSON: {exc}") from exc


def _query(request: web.Request, model: type[BaseModel]) -> Any:
    data: dict[str, Any] = {}
    for key in request.query:
        values = request.query.getall(key)
        info = model.model_fields.get(key)
        is_list = info is not None and "list" in str(info.annotation)
        data[key] = values if is_list else values[-1]
    return _validate(model, data, "query")


def serialise(model: type[BaseModel] | TypeAdapter[Any] | None, value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(model, TypeAdapter):
        return model.dump_python(value, mode="json")
    return value


def make_handler(api: ApiService, ep: Endpoint) -> Callable[[web.Request], Awaitable[
        web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        policy = AccessPolicy(api.hub.store)
        principal = await api.authenticate(request) if ep.action is not None else None
        call = Call(request, api, principal or api.anonymous, policy,
                    dict(request.match_info))
        if ep.query is not None:
            call.query = _query(request, ep.query)
        if ep.body is not None:
            call.body = _validate(ep.body, await _read_json(request), "body")
        elif ep.raw_body is not None:
            call.body = await request.read()
        if ep.action is not None and principal is not None:
            await _authorise(api, call, ep, principal)
        result = await ep.handler(call)
        if isinstance(result, web.StreamResponse):
            return result
        if ep.status == 204:
            return web.Response(status=204)
        body = json.dumps(serialise(ep.response, result), ensure_ascii=False)
        return web.Response(status=ep.status, text=body, content_type=JSON)

    handle.__name__ = ep.operation_id
    return handle


async def _authorise(api: ApiService, call: Call, ep: Endpoint, principal: Principal) -> None:
    assert ep.action is not None
    try:
        # without a target of its own, an endpoint concerns the caller's own scope
        call.target = (await ep.target(call) if ep.target is not None
                       else Target.of([principal.area_code]))
        await call.policy.check(principal, ep.action, call.target)
        call.scope = await call.policy.list_scope(principal, ep.action)
    except AccessDenied as exc:
        await api.hub.store.audit.record(
            principal.actor, ep.action.value, call.request.path, outcome="denied",
            detail={"method": ep.method, "reason": str(exc),
                    "mutating": ep.action in MUTATING})
        log.info("api.denied", user=principal.name, action=ep.action.value,
                 path=call.request.path)
        raise


def require(principal: Principal | None) -> Principal:
    if principal is None:
        raise NotAuthenticated("send a token: 'Authorization: Bearer ttcs_...'")
    return principal
