"""A small HTTP media store for tests: serves bytes and hands out matching ``MediaRef`` dicts."""

from __future__ import annotations

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
        self._runner: web.AppRunner | None = None
        self.base = ""

    async def start(self) -> MediaServer:
        app = web.Application()
        app.router.add_get("/media/{name}", self._get)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}/media"
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

    def ref(self, name: str, data: bytes, mime: str = "image/png", *,
            claimed: bytes | None = None) -> dict[str, Any]:
        """Serve ``data`` as ``name``; the ref describes ``claimed`` (default: ``data``), so a
        test can hand out a reference that does not match what is served."""
        self.files[name] = (data, mime)
        described = claimed if claimed is not None else data
        return {"url": f"{self.base}/{name}", "sha256": hashlib.sha256(described).hexdigest(),
                "size": len(described), "mime": mime}
