"""The API describing itself: the OpenAPI document and a readable page rendered from it."""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from ..routing import Call, endpoint

_STATIC = {"reference.js": "text/javascript", "reference.css": "text/css"}


@endpoint("GET", "/openapi.json", tag="meta", action=None,
          summary="This API as an OpenAPI 3.1 document")
async def openapi_document(call: Call) -> web.Response:
    return web.Response(text=call.api.openapi_text, content_type="application/json")


@endpoint("GET", "/docs", tag="meta", action=None, produces="text/html",
          summary="This API as a page to read (served by the hub; no internet needed)")
async def api_page(call: Call) -> web.Response:
    return web.Response(text=_asset("index.html"), content_type="text/html")


@endpoint("GET", "/docs/{asset}", tag="meta", action=None, produces="text/plain",
          summary="Script and style of the API page")
async def api_page_asset(call: Call) -> web.Response:
    name = call.path["asset"]
    if name not in _STATIC:
        raise web.HTTPNotFound()
    return web.Response(text=_asset(name), content_type=_STATIC[name])


def _asset(name: str) -> str:
    return (resources.files("ttcs.core.api") / "static" / name).read_text(encoding="utf-8")
