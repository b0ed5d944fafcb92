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
    from .api import mount
    from .api.security import security_headers

    app = web.Application()
    app[HUB_KEY] = hub
    app.router.add_get("/healthz", healthz)
    add_content_routes(app, hub.content)
    app.router.add_get("/metrics", metrics)
    mount(app, hub)
    app.on_response_prepare.append(security_headers)
    return app


async def start_http(hub: Hub) -> tuple[web.AppRunner, str]:
    """Serve the hub's HTTP application (TLS when a certificate is configured); returns the
    runner and the base URL (with the port actually bound, so port 0 works)."""
    from .api.security import server_tls

    tls = server_tls(hub.settings)
    runner = web.AppRunner(build_app(hub), access_log=None, shutdown_timeout=5)
    await runner.setup()
    site = web.TCPSite(runner, hub.settings.api_host, hub.settings.api_port, ssl_context=tls)
    await site.start()
    port = hub.settings.api_port
    server = getattr(site, "_server", None)
    if server is not None and server.sockets:
        port = server.sockets[0].getsockname()[1]
    host = hub.settings.api_host
    return runner, f"{'https' if tls else 'http'}://{host}:{port}"
