"""The northbound API as an aiohttp sub-application mounted at ``/api/v1``.

:class:`ApiService` owns what lives as long as the API: the rate limiters, the event stream's
subscribers and the webhook sender. Handlers reach the hub's services through it.
"""

from __future__ import annotations

import asyncio
from ipaddress import ip_address, ip_network
from typing import TYPE_CHECKING

import structlog
from aiohttp import web

from ...schemas.access import Role
from ..access.policy import Principal
from ..access.ratelimit import RateLimiter
from ..errors import NotAuthenticated, RateLimited
from .problems import problem_middleware
from .replay import RecentEvents
from .resources.events import STREAM_TYPES
from .routing import ENDPOINTS, PREFIX, make_handler
from .webhooks import WebhookService

if TYPE_CHECKING:
    from ..hub import Hub
    from ..schedule.service import BroadcastService

log = structlog.get_logger("ttcs.api")

API_KEY: web.AppKey[ApiService] = web.AppKey("api", object)  # type: ignore[arg-type]


class ApiService:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        api = hub.settings.api
        self.logins_by_user = RateLimiter(api.login_per_account)
        self.logins_by_address = RateLimiter(api.login_per_address)
        self.broadcasts_by_user = RateLimiter(api.broadcasts_per_account)
        self.broadcasts_by_address = RateLimiter(api.broadcasts_per_address)
        self._proxies = [ip_network(p, strict=False) for p in api.trusted_proxies]
        self.anonymous = Principal(name="anonymous", role=Role.VENDOR, area_code="-")
        self.webhooks = WebhookService(hub.store, hub.bus, api)
        self.stream_clients = 0
        #: what event-stream clients that reconnect may have missed
        self.recent = RecentEvents(hub.bus, STREAM_TYPES, max(api.stream_queue, 5000))
        self.closing = asyncio.Event()  # set at shutdown: event streams end
        self._openapi: str | None = None

    @property
    def broadcasts(self) -> BroadcastService:
        if self.hub.broadcasts is None:
            raise RuntimeError("hub not opened")
        return self.hub.broadcasts

    @property
    def openapi_text(self) -> str:
        if self._openapi is None:
            from .openapi import render

            self._openapi = render()
        return self._openapi

    # -- who is calling -----------------------------------------------------------------------

    def source_address(self, request: web.Request) -> str:
        """The client's address; a trusted reverse proxy's X-Forwarded-For is believed."""
        peer = request.remote or "unknown"
        forwarded = request.headers.get("X-Forwarded-For")
        if forwarded and self._proxies:
            try:
                if any(ip_address(peer) in net for net in self._proxies):
                    return forwarded.split(",")[-1].strip()
            except ValueError:
                pass
        return peer

    async def authenticate(self, request: web.Request) -> Principal:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthenticated("send a token: 'Authorization: Bearer ttcs_...' (create "
                                   "one with `ttcs tokens create USER` or POST "
                                   "/api/v1/auth/login)")
        try:
            return await self.hub.accounts.authenticate(token.strip())
        except NotAuthenticated as exc:
            source = self.source_address(request)
            wait, first = self.logins_by_address.hit(source)
            if wait is None or first:
                await self.hub.store.audit.record("anonymous", "auth.token", request.path,
                                                  outcome="denied", detail={
                                                      "source": source, "reason": str(exc)})
            if wait is not None:
                raise RateLimited(f"too many failed attempts from {source}; wait "
                                  f"{wait:.0f} s", wait) from exc
            raise

    def limit(self, limiters: list[tuple[RateLimiter, str]], what: str) -> None:
        """Take one attempt from each limiter; refuse with the longest wait if any is out."""
        waits = [w for w in (lim.hit(key)[0] for lim, key in limiters) if w is not None]
        if waits:
            wait = max(waits)
            raise RateLimited(f"too many {what}; try again in {wait:.0f} s", wait)

    # -- the application ----------------------------------------------------------------------

    def build(self) -> web.Application:
        from . import resources  # noqa: F401  (declares the endpoints)

        app = web.Application(middlewares=[problem_middleware], client_max_size=256 * 2**20)
        app[API_KEY] = self
        for ep in ENDPOINTS:
            app.router.add_route(ep.method, ep.path, make_handler(self, ep))
        app.on_startup.append(self._startup)
        app.on_shutdown.append(self._shutdown)
        app.on_cleanup.append(self._cleanup)
        return app

    async def _startup(self, _: web.Application) -> None:
        if self.hub.started:  # deliveries need the running hub's events
            self.webhooks.start()

    async def _shutdown(self, _: web.Application) -> None:
        self.closing.set()

    async def _cleanup(self, _: web.Application) -> None:
        self.recent.close()
        await self.webhooks.stop()


def mount(app: web.Application, hub: Hub) -> ApiService:
    """Mount the API into the hub's HTTP application."""
    service = ApiService(hub)
    app.add_subapp(PREFIX, service.build())
    return service
