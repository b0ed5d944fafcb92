"""The HTTP side of a simulated device: its own aiohttp server on its own port, and the faults
every HTTP device shows the same way.

One server per device, as on a real network: ``offline`` and ``power_loss`` close *this*
device's port (connection refused) and ``hang`` stalls *its* TCP answers, which a server
shared by many devices on paths could not do. The port is kept across restarts, so a device
comes back where the hub expects it.

:meth:`HttpDeviceServer.faults` is the first middleware of the device's application:

- ``hang``: the request is accepted and never answered until the fault is cleared;
- ``drop_connection`` (one-shot, see :meth:`on_fault`): the next request's connection is
  aborted;
- ``slow``: every answer is ``delay`` seconds late (the request is carried out even when the
  client gave up waiting, as on a real device);
- ``garbage``: ``200`` with bytes that are not the protocol.
"""

from __future__ import annotations

import asyncio
import random
import ssl
from collections.abc import Awaitable, Callable

from aiohttp import web

from .base import Fault, SimulatedDevice

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HttpDeviceServer:
    """Serves one simulated device's application on ``host:port`` (HTTPS with cert/key)."""

    def __init__(self, device: SimulatedDevice, *, host: str = "127.0.0.1", port: int = 0,
                 cert: str | None = None, key: str | None = None,
                 garbage_prefix: bytes = b"\x00\xff") -> None:
        self.device = device
        self.host, self.port = host, port
        self.cert, self.key = cert, key
        self.garbage_prefix = garbage_prefix
        self.dropped = 0  # connections aborted by drop_connection
        self._runner: web.AppRunner | None = None
        self._released = asyncio.Event()  # set to let hung requests go
        self._drop_next = False

    @property
    def url(self) -> str:
        return f"{'https' if self.cert else 'http'}://{self.host}:{self.port}"

    @property
    def listening(self) -> bool:
        return self._runner is not None

    async def listen(self, app: web.Application) -> None:
        """Start serving ``app`` (a no-op while already serving)."""
        if self._runner is not None:
            return
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await runner.setup()
        context = None
        if self.cert and self.key:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.cert, self.key)
        site = web.TCPSite(runner, self.host, self.port, ssl_context=context,
                           reuse_address=True)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])  # keep it across restarts
        self._released.clear()
        self._runner = runner

    async def close(self) -> None:
        """Stop serving: the port refuses connections; hung requests are let go."""
        runner, self._runner = self._runner, None
        self._released.set()
        if runner is not None:
            await runner.cleanup()

    def on_fault(self, fault: Fault, *, active: bool) -> None:
        """Follow the faults that act on the connection: ``drop_connection`` (the next
        request's connection breaks) and the end of ``hang`` (what waits is answered)."""
        if fault is Fault.DROP_CONNECTION and active:
            self._drop_next = True
        elif fault is Fault.HANG and not active:
            self._released.set()
            self._released = asyncio.Event()

    @web.middleware
    async def faults(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        device = self.device
        if device.has(Fault.HANG):
            await self._released.wait()  # accepted, never answered (until cleared or stopped)
        if self._drop_next:
            self._drop_next = False
            self.dropped += 1
            if request.transport is not None:
                request.transport.abort()  # the link breaks: no answer at all
            raise asyncio.CancelledError
        try:
            await request.read()  # received in full, then acted on late: a slow device acts
        except ConnectionResetError:  # the client gave up while the device hung
            raise asyncio.CancelledError from None
        await device.slow_down()
        if device.has(Fault.GARBAGE):
            noise = bytes(random.getrandbits(8) for _ in range(random.randint(8, 64)))
            return web.Response(body=self.garbage_prefix + noise, status=200,
                                content_type="application/json")
        return await handler(request)


__all__ = ["HttpDeviceServer"]
