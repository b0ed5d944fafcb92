"""A small HTTP media store for tests: serves bytes and hands out matching ``MediaRef`` dicts,
and endless live streams (``/live/{name}``) for devices that play a stream until stopped."""

from __future__ import annotations

import asyncio
import hashlib
import io
from typing import Any

from aiohttp import web


def png_image(width: int = 64, height: int = 32, colour: tuple[int, int, int] = (0, 200, 0)
              ) -> bytes:
    """A plain PNG picture, e.g. for a board to show."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG")
    return buffer.getvalue()


class MediaServer:
    """``await MediaServer().start()``; ``ref(name, data, mime)`` publishes a file."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}
        self.requests = 0
        self.listeners = 0  # live-stream connections open now
        self._runner: web.AppRunner | None = None
        self.base = ""

    async def start(self) -> MediaServer:
        app = web.Application()
        app.router.add_get("/media/{name}", self._get)
        app.router.add_get("/live/{name}", self._live)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}/media"
        self.live_base = f"http://127.0.0.1:{port}/live"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _get(self, request: web.Request) -> web.Response:
        self.requests += 1
        entry = self.files.get(request.match_info["name"])
        if entry is None:
            raise web.HTTPNotFound()
        return web.Response(body=entry[0], content_type=entry[1])

    async def _live(self, request: web.Request) -> web.StreamResponse:
        """An endless stream of (silent) audio, 2 KiB every 20 ms, until the client goes."""
        self.requests += 1
        response = web.StreamResponse(headers={"Content-Type": "audio/mpeg"})
        await response.prepare(request)
        self.listeners += 1
        try:
            while True:
                await response.write(b"\xff\xfb" + bytes(2046))
                await asyncio.sleep(0.02)
        except ConnectionError:
            pass  # the device went away
        finally:
            self.listeners -= 1
        return response

    def live(self, name: str = "radio") -> str:
        """The URL of an endless live stream."""
        return f"{self.live_base}/{name}"

    def ref(self, name: str, data: bytes, mime: str = "image/png", *,
            claimed: bytes | None = None) -> dict[str, Any]:
        """Serve ``data`` as ``name``; the ref describes ``claimed`` (default: ``data``), so a
        test can hand out a reference that does not match what is served."""
        self.files[name] = (data, mime)
        described = claimed if claimed is not None else data
        return {"url": f"{self.base}/{name}", "sha256": hashlib.sha256(described).hexdigest(),
                "size": len(described), "mime": mime}
