"""The hub's HTTP server: ``/healthz`` (liveness and a fleet summary), ``/metrics``
(Prometheus text format), and the content library's ``/media/{sha256}`` (signed URLs for
devices) and ``/keys`` (public keys)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..schemas import Connectivity
from .content.http import add_content_routes
from .hub import Hub

HUB_KEY: web.AppKey[Hub] = web.AppKey("hub", Hub)


async def healthz(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    counts: dict[str, int] = {c.value: 0 for c in Connectivity}
    for sup in hub.supervisors.values():
        counts[sup.connectivity.value] += 1
    body: dict[str, Any] = {
        "status": "ok" if hub.started else "starting",
        "devices": {"total": len(hub.supervisors), **counts},
        "plugins": {p.id: p.state.value for p in hub.plugins.all()},
        "events_published": hub.bus.published,
    }
    return web.json_response(body, headers={"Cache-Control": "no-store"})


async def metrics(request: web.Request) -> web.Response:
    from .metrics import CONTENT_TYPE

    hub = request.app[HUB_KEY]
    if hub.monitor is None:
        raise web.HTTPServiceUnavailable(text="hub not started\n")
    return web.Response(body=hub.monitor.metrics.render().encode(),
                        headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})


def build_app(hub: Hub) -> web.Application:
    app = web.Application()
    app[HUB_KEY] = hub
    app.router.add_get("/healthz", healthz)
    add_content_routes(app, hub.content)
    app.router.add_get("/metrics", metrics)
    return app


async def start_http(hub: Hub) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(build_app(hub), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, hub.settings.api_host, hub.settings.api_port)
    await site.start()
    return runner, f"http://{hub.settings.api_host}:{hub.settings.api_port}"
