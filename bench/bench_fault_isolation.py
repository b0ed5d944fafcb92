"""Fault isolation between IP speakers: do the healthy ones notice that one device of each
family hangs, is offline, answers garbage or answers slowly?

One hub drives N simulated speakers of every family in ``tests/e2e/speaker_families.FAMILIES``
(native over a private Mosquitto, VangTech over HTTP, ...) — adding a family there adds it
here. For each phase (no fault, then each fault injected into device 0 of every family at
once, which the hub keeps commanding in the background as a dispatcher would) it measures, on
the healthy devices only:

- command latency (``set_volume`` through ``Hub.execute``, each healthy device commanded in
  turn), p50/p99 in ms;
- for polled families, the interval between two status polls as the simulated device saw
  them (``polls`` timestamps) against the configured interval, and the poller's lateness.

    .venv/bin/python bench/bench_fault_isolation.py [--devices 8] [--seconds 5] [--poll 1]

Prints one JSON line (figures in ms).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import tempfile
import time
from pathlib import Path
from typing import Any

from common import emit, percentile

from tests.e2e.speaker_families import FAMILIES, SpeakerFamily
from ttcs.core.config import Settings
from ttcs.core.hub import Hub
from ttcs.core.logging import configure
from ttcs.schemas import Area, AreaType, Connectivity, Device, parse_command
from ttcs.simulators.base import Fault, SimulatedDevice
from ttcs.testing import Mosquitto

PHASES: list[tuple[str, Fault | None, dict[str, Any]]] = [
    ("none", None, {}), ("hang", Fault.HANG, {}), ("offline", Fault.OFFLINE, {}),
    ("garbage", Fault.GARBAGE, {}), ("slow", Fault.SLOW, {"delay": 3.0})]


def summary(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50": round(percentile(values, 50), 1),
            "p99": round(percentile(values, 99), 1), "max": round(max(values), 1)}


class Fleet:
    """The families, their simulated devices and the registered devices, in one hub."""

    def __init__(self, hub: Hub, families: dict[str, SpeakerFamily]) -> None:
        self.hub = hub
        self.families = families
        self.devices: dict[str, list[tuple[SimulatedDevice, Device]]] = {}

    async def add(self, name: str, count: int) -> None:
        family = self.families[name]
        for n in range(count):
            sim, spec = await family.device(f"BENCH-{name.upper()}-{n:03d}", play_seconds=5)
            device = await self.hub.registry.add_device(spec, "bench")
            await self.hub.supervise(device)
            self.devices.setdefault(name, []).append((sim, device))

    def online(self, devices: list[tuple[SimulatedDevice, Device]]) -> bool:
        return all(self.hub.supervisors[d.id].connectivity is Connectivity.ONLINE
                   for _, d in devices)

    async def wait_online(self, devices: list[tuple[SimulatedDevice, Device]],
                          timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not self.online(devices):
            if time.monotonic() > deadline:
                raise RuntimeError("devices did not come online")
            await asyncio.sleep(0.05)

    def victims(self) -> list[tuple[SimulatedDevice, Device]]:
        return [pairs[0] for pairs in self.devices.values()]

    def healthy(self, name: str) -> list[tuple[SimulatedDevice, Device]]:
        return self.devices[name][1:]


async def command_loop(hub: Hub, devices: list[Device], until: float,
                       latencies: list[float], errors: list[str]) -> None:
    """Command the devices in turn, one command at a time, until ``until``."""
    volumes = itertools.cycle(range(20, 80))
    for device in itertools.cycle(devices):
        if time.monotonic() >= until:
            return
        started = time.monotonic()
        try:
            result = await hub.execute(device.id, parse_command(
                {"type": "set_volume", "volume": next(volumes)}))
            if not result.ok:
                errors.append(result.code)
        except Exception as exc:  # a healthy device failing is what we look for
            errors.append(type(exc).__name__)
        latencies.append((time.monotonic() - started) * 1000)


async def pester(hub: Hub, devices: list[Device], until: float, failed: dict[str, int]
                 ) -> None:
    """Keep commanding the faulty devices, as the dispatcher would retry them."""
    while time.monotonic() < until:
        answers = await asyncio.gather(*(hub.execute(d.id, parse_command(
            {"type": "set_volume", "volume": 50})) for d in devices), return_exceptions=True)
        for device, answer in zip(devices, answers, strict=True):
            if isinstance(answer, BaseException) or not answer.ok:
                failed[device.id] = failed.get(device.id, 0) + 1
        await asyncio.sleep(0.2)


def poll_figures(fleet: Fleet, name: str, since: float, interval: float,
                 runs: dict[str, int]) -> dict[str, Any] | None:
    pairs = fleet.healthy(name)
    if not all(hasattr(sim, "polls") for sim, _ in pairs):
        return None  # a push family: the device reports, nothing is polled
    gaps: list[float] = []
    for sim, _ in pairs:
        times = [t for t in sim.polls if t >= since]  # type: ignore[attr-defined]
        gaps += [(b - a) * 1000 for a, b in itertools.pairwise(times)]
    late: list[float] = []
    for _, device in pairs:
        job = fleet.hub.poller.job(device.id)
        if job is not None:  # this phase's runs only
            late += [x * 1000 for x in job.lateness[-(job.runs - runs[device.id]):]
                     if job.runs > runs[device.id]]
    drift = [abs(g - interval * 1000) for g in gaps]
    return {"interval_ms": summary(gaps), "drift_ms": summary(drift),
            "poller_lateness_ms": summary(late)}


async def phase(fleet: Fleet, fault: Fault | None, params: dict[str, Any], seconds: float,
                poll: float) -> dict[str, Any]:
    victims = fleet.victims()
    if fault is not None:
        for sim, _ in victims:
            await sim.inject(fault, **params)
    since = time.monotonic()
    until = since + seconds
    runs = {device.id: job.runs for pairs in fleet.devices.values() for _, device in pairs
            if (job := fleet.hub.poller.job(device.id)) is not None}
    failed: dict[str, int] = {}
    results: dict[str, Any] = {}
    loops = []
    for name in fleet.devices:
        latencies: list[float] = []
        errors: list[str] = []
        results[name] = (latencies, errors)
        loops.append(command_loop(fleet.hub, [d for _, d in fleet.healthy(name)], until,
                                  latencies, errors))
    background = asyncio.create_task(pester(fleet.hub, [d for _, d in victims], until,
                                            failed)) if fault is not None else None
    await asyncio.gather(*loops)
    if background is not None:
        await background
    figures: dict[str, Any] = {}
    for name, (latencies, errors) in results.items():
        figures[name] = {"command_ms": summary(latencies), "errors": len(errors),
                         "healthy_online": fleet.online(fleet.healthy(name))}
        polls = poll_figures(fleet, name, since, poll, runs)
        if polls is not None:
            figures[name]["polls"] = polls
        if fault is not None:  # proof that the fault did bite the faulty device
            victim = fleet.devices[name][0][1]
            figures[name]["faulty"] = {
                "failed_commands": failed.get(victim.id, 0),
                "connectivity": fleet.hub.supervisors[victim.id].connectivity.value}
    if fault is not None:
        for sim, _ in victims:
            await sim.clear(fault)
        await fleet.wait_online(victims)
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=8, help="per family (one is faulty)")
    parser.add_argument("--seconds", type=float, default=5.0, help="per phase")
    parser.add_argument("--poll", type=float, default=1.0, help="poll interval, s")
    args = parser.parse_args()
    configure(level="error")
    broker = Mosquitto().start()
    families = {name: cls(broker.url()) for name, cls in FAMILIES.items()}
    for family in families.values():
        with contextlib.suppress(AttributeError):
            family.poll_interval = args.poll  # type: ignore[attr-defined]
    settings = Settings(home=Path(tempfile.mkdtemp(prefix="bench-isolation-")),
                        command_timeout=2.0, probe_timeout=3.0)
    for family in families.values():
        settings = family.hub_settings(settings)
    hub = Hub(settings)
    fleet = Fleet(hub, families)
    try:
        for family in families.values():
            await family.setup()
        await hub.start()
        await hub.registry.import_areas([
            Area(code="46", name="Thành phố Huế", type=AreaType.MUNICIPALITY),
            Area(code="19900", name="Phường Thuận An", type=AreaType.WARD, parent_code="46")],
            "bench")
        for name in families:
            await fleet.add(name, args.devices)
        await fleet.wait_online([p for pairs in fleet.devices.values() for p in pairs])
        await asyncio.sleep(args.poll * 2)  # let the poller settle on its grid
        started = time.monotonic()
        phases = {}
        for label, fault, params in PHASES:
            phases[label] = await phase(fleet, fault, params, args.seconds, args.poll)
        emit("fault_isolation", devices_per_family=args.devices, faulty_per_family=1,
             families=sorted(families), phase_seconds=args.seconds, poll_interval_s=args.poll,
             command_timeout_s=settings.command_timeout, phases=phases,
             wall_s=round(time.monotonic() - started, 1))
    finally:
        await hub.stop()
        for family in families.values():
            await family.teardown()
        broker.stop()


if __name__ == "__main__":
    asyncio.run(main())
