"""The shared device-facing server: routes added at run time, one server per address, TLS."""

from __future__ import annotations

import ssl
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tests.support.brokers import make_tls_files
from tests.support.net import free_port
from ttcs.adapters.device_endpoint import DeviceEndpoint
from ttcs.adapters.pool import Transports
from ttcs.core.config import Settings
from ttcs.core.errors import ConfigError, DeviceUnreachable


async def echo(request: web.Request, params: dict[str, str]) -> web.StreamResponse:
    return web.json_response({"serial": params["serial"], "method": request.method})


async def crash(request: web.Request, params: dict[str, str]) -> web.StreamResponse:
    raise RuntimeError("plugin bug")


async def get(url: str, method: str = "GET", **kwargs: object) -> tuple[int, dict[str, str]]:
    async with aiohttp.ClientSession() as s, s.request(method, url, **kwargs) as r:  # type: ignore[arg-type]
        return r.status, await r.json()


@pytest.fixture
async def transports(tmp_path: Path):  # type: ignore[no-untyped-def]
    t = Transports(Settings(home=tmp_path))
    yield t
    await t.close()


async def test_routes_added_while_running_are_served_with_their_parameters(transports):  # type: ignore[no-untyped-def]
    endpoint = await transports.device_endpoint("127.0.0.1", 0)
    assert (await get(f"{endpoint.url}/x/v1/boards/B1/poll"))[0] == 404
    endpoint.route("POST", "/x/v1/boards/{serial}/poll", echo)
    assert await get(f"{endpoint.url}/x/v1/boards/B1/poll", "POST") == (
        200, {"serial": "B1", "method": "POST"})


async def test_wrong_method_is_405_and_removed_route_is_404(transports):  # type: ignore[no-untyped-def]
    endpoint = await transports.device_endpoint("127.0.0.1", 0)
    route = endpoint.route("POST", "/r/{serial}", echo)
    status, body = await get(f"{endpoint.url}/r/B1")
    assert status == 405 and body["error"] == "method_not_allowed"
    endpoint.unroute(route)
    assert (await get(f"{endpoint.url}/r/B1", "POST"))[0] == 404


async def test_a_crashing_handler_answers_500_and_the_endpoint_lives_on(transports):  # type: ignore[no-untyped-def]
    endpoint = await transports.device_endpoint("127.0.0.1", 0)
    endpoint.route("GET", "/boom", crash)
    endpoint.route("GET", "/ok/{serial}", echo)
    assert (await get(f"{endpoint.url}/boom"))[0] == 500
    assert (await get(f"{endpoint.url}/ok/B2"))[0] == 200


async def test_everyone_asking_for_an_address_shares_one_server(transports):  # type: ignore[no-untyped-def]
    port = free_port()
    first = await transports.device_endpoint("127.0.0.1", port)
    assert await transports.device_endpoint("127.0.0.1", port) is first
    assert first.port == port
    free = await transports.device_endpoint("127.0.0.1", 0)
    assert free is not first and free.port not in (0, port)
    assert await transports.device_endpoint("127.0.0.1", 0) is free


async def test_closing_the_transports_closes_the_endpoint(tmp_path: Path) -> None:
    t = Transports(Settings(home=tmp_path))
    endpoint = await t.device_endpoint("127.0.0.1", 0)
    url = endpoint.url
    await t.close()
    assert not endpoint.running
    with pytest.raises(aiohttp.ClientConnectionError):
        await get(url)


async def test_a_port_in_use_is_reported_as_unreachable(transports):  # type: ignore[no-untyped-def]
    taken = DeviceEndpoint("127.0.0.1", 0)
    await taken.start()
    try:
        with pytest.raises(DeviceUnreachable, match="address in use"):
            await transports.device_endpoint("127.0.0.1", taken.port)
    finally:
        await taken.close()


async def test_tls_endpoint_serves_https_with_its_certificate(transports, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ca, cert, key = make_tls_files(tmp_path)
    endpoint = await transports.device_endpoint("127.0.0.1", 0, cert=str(cert), key=str(key))
    endpoint.route("GET", "/b/{serial}", echo)
    assert endpoint.url.startswith("https://")
    context = ssl.create_default_context(cafile=str(ca))
    assert (await get(f"{endpoint.url}/b/B3", ssl=context))[1]["serial"] == "B3"


async def test_sharing_a_port_with_other_tls_settings_is_a_config_error(transports, tmp_path):  # type: ignore[no-untyped-def]
    _, cert, key = make_tls_files(tmp_path)
    port = free_port()
    await transports.device_endpoint("127.0.0.1", port)
    with pytest.raises(ConfigError, match="TLS"):
        await transports.device_endpoint("127.0.0.1", port, cert=str(cert), key=str(key))


async def test_unreadable_tls_files_are_a_config_error(transports, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="certificate"):
        await transports.device_endpoint("127.0.0.1", 0, cert=str(tmp_path / "none.pem"),
                                         key=str(tmp_path / "none.key"))
