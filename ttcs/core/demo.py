"""What ``make run`` shows: Huế's real communes and wards, sample villages, and a simulated
fleet of native IP speakers, registered and online.

The province and its 40 communes/wards come from the official list (``vietnam-provinces``);
the villages and residential groups below a few of them are *samples* with local codes
(``<ward code>-NN``), since no official national list of villages is published with codes.
"""

from __future__ import annotations

import structlog

from ..schemas import Area, AreaType, DeviceSpec
from ..simulators.base import Fleet, SimOptions
from ..simulators.native_speaker import build as build_native
from .hub import Hub
from .imports import official_areas

log = structlog.get_logger("ttcs.demo")

PROVINCE = "46"  # Thành phố Huế
ACTOR = "demo"


def sample_villages(communes: list[Area], per_commune: int = 3) -> list[Area]:
    villages = []
    for commune in communes:
        ward = commune.type is AreaType.WARD
        for n in range(1, per_commune + 1):
            villages.append(Area(
                code=f"{commune.code}-{n:02d}", parent_code=commune.code,
                name=f"Tổ dân phố {n}" if ward else f"Thôn {n}",
                type=AreaType.RESIDENTIAL_GROUP if ward else AreaType.VILLAGE))
    return villages


async def prepare(hub: Hub, devices: int) -> Fleet:
    """Seed areas (once), start ``devices`` simulated speakers and register the new ones."""
    if not await hub.registry.list_areas(type_=None, parent=None, under=PROVINCE):
        areas = official_areas(PROVINCE)
        await hub.registry.import_areas(areas, ACTOR)
        await hub.registry.import_areas(sample_villages(areas[1:5]), ACTOR)
    communes = [a for a in await hub.registry.list_areas(parent=PROVINCE)][:6]
    fleet = await build_native(SimOptions(count=devices, broker=hub.settings.mqtt_url,
                                          serial_prefix="HUE-SPK", extra={"heartbeat": "30"}))
    await fleet.start()
    registered = {d.serial for d in await hub.registry.list_devices(plugin="native")}
    for n, speaker in enumerate(fleet.devices.values()):
        if speaker.serial in registered:
            continue
        commune = communes[n % len(communes)]
        villages = await hub.registry.list_areas(parent=commune.code)
        spec = DeviceSpec(plugin="native", kind="ip_speaker", area_code=commune.code,
                          village_code=villages[n % len(villages)].code if villages else None,
                          name=f"Cụm loa {commune.name} #{n + 1}",
                          config={"serial": speaker.serial})
        device = await hub.registry.add_device(spec, ACTOR)
        await hub.supervise(device)
    return fleet
