"""HTTP routes of the content library, mounted on the hub's app.

``GET /media/{sha256}?exp=&sig=``
    a stored file, for devices: only with a valid, unexpired signature (403 otherwise); range
    requests, HEAD and conditional requests are served by aiohttp's file response.
``GET /keys``
    the JWK Set of public keys devices verify content tokens with (approvers, render key).
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from ..errors import MediaMissing
from .library import ContentLibrary
from .urls import UrlRefused

LIBRARY_KEY: web.AppKey[ContentLibrary] = web.AppKey("content", ContentLibrary)
_CHUNK = 256 * 1024


async def get_media(request: web.Request) -> web.StreamResponse:
    library = request.app[LIBRARY_KEY]
    sha256 = request.match_info["sha256"]
    try:
        remaining = library.urls.check(sha256, request.query.get("exp"),
                                       request.query.get("sig"))
    except UrlRefused as exc:
        return web.json_response({"error": str(exc)}, status=403)
    try:
        info = await library.media.info(sha256)
    except MediaMissing:
        return web.json_response({"error": "no such media"}, status=404)
    headers = {"Content-Type": info.mime,
               # content-addressed bytes never change; the URL itself expires
               "Cache-Control": f"private, max-age={remaining}, immutable"}
    path = library.media.path(sha256)
    if path is not None:
        return web.FileResponse(path, headers=headers)
    response = web.StreamResponse(headers={**headers, "Content-Length": str(info.size)})
    await response.prepare(request)
    fh = await asyncio.to_thread(library.media.open, sha256)  # a store without local paths
    try:
        while chunk := await asyncio.to_thread(fh.read, _CHUNK):
            await response.write(chunk)
    finally:
        fh.close()
    await response.write_eof()
    return response


async def get_keys(request: web.Request) -> web.Response:
    library = request.app[LIBRARY_KEY]
    return web.json_response(await library.jwks(), headers={"Cache-Control": "max-age=60"})


def add_content_routes(app: web.Application, library: ContentLibrary) -> None:
    app[LIBRARY_KEY] = library
    app.router.add_get("/media/{sha256:[0-9a-f]{64}}", get_media)
    app.router.add_get("/keys", get_keys)
