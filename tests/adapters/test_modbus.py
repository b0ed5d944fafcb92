"""The shared Modbus TCP endpoint against the ZoneTech simulator (pymodbus server, real TCP):
one connection per endpoint, requests serialised, timeouts that cover the wait, backoff."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.support.net import free_port
from ttcs.adapters.modbus import ModbusEndpoint, ModbusRefused
from ttcs.adapters.pool import Transports
from ttcs.core.config import Settings
from ttcs.core.errors import DeviceTimeout, DeviceUnreachable
from ttcs.simulators.base import Fault
from ttcs.simulators.zonetech_controller import ZoneController


@pytest.fixture
async def sim() -> AsyncIterator[ZoneController]:
    c = ZoneController("ZT-AD01")
    await c.start()
    yield c
    await c.stop()


@pytest.fixture
async def transports(settings: Settings) -> AsyncIterator[Transports]:
    t = Transports(settings)
    yield t
    await t.close()


async def test_every_driver_of_an_endpoint_shares_one_connection(
        sim: ZoneController, transports: Transports) -> None:
    first, second = transports.modbus(sim.host, sim.port), transports.modbus(sim.host, sim.port)
    assert first is second
    await asyncio.gather(*(first.read_coils(1, 0, 8, timeout=2) for _ in range(5)),
                         second.read_input_registers(1, 20, 10, timeout=2))
    assert first.stats.connects == 1 and first.stats.requests == 6


async def test_requests_to_one_endpoint_never_overlap(sim: ZoneController,
                                                      transports: Transports) -> None:
    await sim.inject(Fault.SLOW, delay=0.05)
    endpoint = transports.modbus(sim.host, sim.port)
    results = await asyncio.gather(*(endpoint.read_holding_registers(1, 0, 8, timeout=3)
                                     for _ in range(6)))
    assert results == [sim.volumes] * 6
    assert sim.peak_inflight == 1 and endpoint.stats.queued >= 5


async def test_a_timeout_covers_waiting_behind_a_hung_request(sim: ZoneController,
                                                              transports: Transports) -> None:
    endpoint = transports.modbus(sim.host, sim.port)
    await sim.inject(Fault.HANG)
    hung = asyncio.ensure_future(endpoint.read_coils(1, 0, 8, timeout=1.0))
    await asyncio.sleep(0)  # let it take the endpoint first
    with pytest.raises(DeviceTimeout, match="stayed busy"):
        await endpoint.read_coils(1, 0, 8, timeout=0.2)
    with pytest.raises(DeviceTimeout):
        await hung
    await sim.clear(Fault.HANG)
    assert await endpoint.read_coils(1, 0, 8, timeout=1) == [False] * 8


async def test_a_dead_endpoint_is_not_hammered(transports: Transports) -> None:
    endpoint = ModbusEndpoint("127.0.0.1", free_port(), backoff_min=30)
    with pytest.raises(DeviceUnreachable, match="cannot connect"):
        await endpoint.read_coils(1, 0, 1, timeout=1)
    with pytest.raises(DeviceUnreachable, match="next attempt in"):
        await endpoint.read_coils(1, 0, 1, timeout=1)
    assert endpoint.stats.connects == 1
    await endpoint.close()


async def test_a_refused_write_is_a_rejection_with_the_modbus_code(
        sim: ZoneController, transports: Transports) -> None:
    endpoint = transports.modbus(sim.host, sim.port)
    with pytest.raises(ModbusRefused) as refused:
        await endpoint.write_register(1, 0, 101, timeout=1)
    assert refused.value.code == "modbus_exception_3" and sim.volumes[0] == 70
