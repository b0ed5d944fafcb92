"""The device-facing HTTP(S) server: where devices behind NAT call the hub.

Boards on 4G cannot be reached from the hub, so they connect *out* and poll. One
:class:`DeviceEndpoint` per ``(host, port)`` serves every plugin of the hub process, on a port
of its own (never the operator API's): plugins add and remove routes while it runs, which a
plain aiohttp router does not allow once started, so requests go through one catch-all handler
that matches the plugins' patterns itself.

Get it through :meth:`ttcs.adapters.pool.Transports.device_endpoint`; it is closed with the
transports. With ``cert`` and ``key`` it speaks TLS. Port 0 binds a free port (tests); read
:attr:`DeviceEndpoint.port` for the one chosen.
"""

from __future__ import annotations

import errno
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web

from ..core.errors import ConfigError, DeviceUnreachable

log = structlog.get_logger("ttcs.device_endpoint")

#: default port of the device-facing endpoint (the operator API defaults to 8080)
DEFAULT_DEVICE_PORT = 8081

#: largest request body accepted (a board's screenshot travels base64 in a poll)
MAX_BODY = 16 * 1024 * 1024

RouteHandler = Callable[[web.Request, dict[str, str]], Awaitable[web.StreamResponse]]

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Route:
    """One route a plugin added: method, pattern such as ``/x/v1/boards/{serial}/poll``."""

    method: str
    pattern: str
    handler: RouteHandler
    regex: re.Pattern[str]


def _compile(pattern: str) -> re.Pattern[str]:
    if not pattern.startswith("/"):
        raise ConfigError(f"route pattern must start with '/': {pattern!r}")
    parts = _PARAM.split(pattern)
    # split() alternates literal text and parameter names
    regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)"
                    for i, p in enumerate(parts))
    return re.compile(f"^{regex}$")


def server_ssl_context(cert: str, key: str) -> ssl.SSLContext:
    """A TLS server context from PEM files; bad files are a :class:`ConfigError`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load TLS certificate {cert} / key {key}: {exc}") from exc
    return context


class DeviceEndpoint:
    """One aiohttp server that devices call; plugins register routes on it at any time."""

    def __init__(self, host: str, port: int, *, cert: str | None = None,
                 key: str | None = None) -> None:
        if bool(cert) != bool(key):
            raise ConfigError("the device endpoint needs both a TLS certificate and its key")
        self.host = host
        self.requested_port = port
        self.cert, self.key = cert, key
        self.port = port
        self._routes: list[Route] = []
        self._runner: web.AppRunner | None = None
        self.requests = 0
        self.unmatched = 0

    @property
    def tls(self) -> bool:
        return self.cert is not None

    @property
    def url(self) -> str:
        """Base URL devices use (with the bound port); ``0.0.0.0`` shown as 127.0.0.1."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host  # noqa: S104
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._runner is not None

    async def start(self) -> None:
        """Bind and serve. A port in use is :class:`DeviceUnreachable` (devices cannot reach
        us), bad TLS files a :class:`ConfigError`."""
        if self._runner is not None:
            return
        context = server_ssl_context(self.cert, self.key) if self.cert and self.key else None
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, ssl_context=context)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            why = "address in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or exc)
            raise DeviceUnreachable(f"cannot listen for devices on {self.host}:{self.port}: "
                                    f"{why}") from exc
        sockets = getattr(site._server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        self._runner = runner
        log.info("device_endpoint.listening", url=self.url)

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    # -- routes -------------------------------------------------------------------------------

    def route(self, method: str, pattern: str, handler: RouteHandler) -> Route:
        """Serve ``method pattern`` with ``handler(request, params)`` from now on."""
        route = Route(method.upper(), pattern, handler, _compile(pattern))
        self._routes.append(route)
        return route

    def unroute(self, route: Route) -> None:
        if route in self._routes:
            self._routes.remove(route)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        allowed: list[str] = []
        for route in list(self._routes):
            match = route.regex.match(request.path)
            if match is None:
                continue
            if route.method not in (request.method, "*"):
                allowed.append(route.method)
                continue
            try:
                return await route.handler(request, match.groupdict())
            except web.HTTPException:
                raise
            except Exception:  # a plugin bug must not take the endpoint down
                log.exception("device_endpoint.handler_failed", path=request.path)
                return _json_error(500, "internal_error", "the hub failed to handle this")
        self.unmatched += 1
        if allowed:
            return _json_error(405, "method_not_allowed", f"use {', '.join(allowed)}")
        return _json_error(404, "not_found", f"nothing is served at {request.path}")


def _json_error(status: int, error: str, detail: str) -> web.Response:
    return web.json_response({"error": error, "detail": detail}, status=status)


def json_error(status: int, error: str, detail: str, **headers: Any) -> web.Response:
    """The endpoint's error shape, ``{"error": CODE, "detail": TEXT}``, for plugin handlers."""
    response = _json_error(status, error, detail)
    response.headers.update({k.replace("_", "-"): str(v) for k, v in headers.items()})
    return response


__all__ = ["DEFAULT_DEVICE_PORT", "DeviceEndpoint", "Route", "RouteHandler", "json_error"]
