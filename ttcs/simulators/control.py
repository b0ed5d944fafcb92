"""The control plane of a running simulator fleet: read ground truth, inject faults.

``ttcs sim run`` serves it on HTTP beside the devices' own protocol so that tests, the
conformance kit and people can drive faults in a simulator running in another process::

    GET    /devices                         every device: state, faults, connection
    GET    /devices/{serial}                one device
    GET    /devices/{serial}/truth          its ground truth
    POST   /devices/{serial}/faults         {"fault": "offline", "params": {...}}
    DELETE /devices/{serial}/faults/{name}  clear one fault ("all" clears every fault)
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .base import Fault, Fleet, SimulatedDevice

FLEET_KEY: web.AppKey[Fleet] = web.AppKey("fleet", Fleet)


def _device(request: web.Request) -> SimulatedDevice:
    fleet = request.app[FLEET_KEY]
    serial = request.match_info["serial"]
    if serial not in fleet.devices:
        raise web.HTTPNotFound(text=f"no simulated device {serial}")
    return fleet.devices[serial]


async def _list(request: web.Request) -> web.Response:
    fleet = request.app[FLEET_KEY]
    return web.json_response([d.snapshot() for d in fleet.devices.values()])


async def _one(request: web.Request) -> web.Response:
    return web.json_response(_device(request).snapshot())


async def _truth(request: web.Request) -> web.Response:
    return web.json_response(_device(request).truth.to_json())


async def _inject(request: web.Request) -> web.Response:
    device = _device(request)
    try:
        body: dict[str, Any] = await request.json()
        fault = Fault(body["fault"])
        params = dict(body.get("params") or {})
    except (ValueError, KeyError, TypeError) as exc:
        names = ", ".join(f.value for f in Fault)
        raise web.HTTPBadRequest(text=f"send {{\"fault\": NAME, \"params\": {{}}}} with NAME one "
                                 f"of: {names} ({exc!r})") from exc
    await device.inject(fault, **params)
    return web.json_response(device.snapshot())


async def _clear(request: web.Request) -> web.Response:
    device = _device(request)
    name = request.match_info["fault"]
    try:
        fault = None if name == "all" else Fault(name)
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"unknown fault {name}") from exc
    await device.clear(fault)
    return web.json_response(device.snapshot())


def control_app(fleet: Fleet) -> web.Application:
    app = web.Application()
    app[FLEET_KEY] = fleet
    app.router.add_get("/devices", _list)
    app.router.add_get("/devices/{serial}", _one)
    app.router.add_get("/devices/{serial}/truth", _truth)
    app.router.add_post("/devices/{serial}/faults", _inject)
    app.router.add_delete("/devices/{serial}/faults/{fault}", _clear)
    return app


async def serve_control(fleet: Fleet, host: str = "127.0.0.1", port: int = 0
                        ) -> tuple[web.AppRunner, str]:
    """Start the control server; returns the runner and its base URL."""
    runner = web.AppRunner(control_app(fleet), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server
    sockets = getattr(server, "sockets", None) or []
    bound = int(sockets[0].getsockname()[1]) if sockets else port
    return runner, f"http://{host}:{bound}"
