"""How the kit sees what it certifies: a station of several boxes, children, device files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ttcs.conformance.outcome import NotRun
from ttcs.conformance.targets import DeviceFile, RealUnderTest, merged_truth, station_of
from ttcs.simulators.base import Fleet, SimulatedDevice


class Box(SimulatedDevice):
    """A simulated box that says how it is registered, or not (a decoder beside a station)."""

    def __init__(self, serial: str, *, registrable: bool) -> None:
        super().__init__(serial)
        self.registrable = registrable

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def state(self) -> dict[str, Any]:
        return {}

    def connection_info(self) -> dict[str, Any]:
        return {}

    def registration(self) -> dict[str, Any]:
        if not self.registrable:
            raise NotImplementedError("a part of a station")
        return {"plugin": "acme", "kind": "wired_zone_controller", "config": {}}


def test_the_box_that_says_how_it_is_registered_is_certified_and_the_rest_are_its_parts(
        ) -> None:
    controller, decoder = Box("ZT-1", registrable=True), Box("VC-1", registrable=False)
    sim, parts = station_of(Fleet([decoder, controller]))
    assert sim is controller and parts == [decoder]


def test_a_fleet_with_two_registrable_boxes_for_one_station_is_not_run() -> None:
    with pytest.raises(NotRun, match="2 of which describe their registration"):
        station_of(Fleet([Box("A", registrable=True), Box("B", registrable=True)]))


def test_the_stations_ground_truth_is_every_boxs_in_time_order() -> None:
    controller = {"volume_changes": [["2026-01-01T00:00:03+00:00", 40]],
                  "zone_changes": [{"at": "2026-01-01T00:00:01+00:00", "zones": {"1": True}}],
                  "faults": []}
    decoder = {"volume_changes": [["2026-01-01T00:00:02+00:00", 55],
                                  ["2026-01-01T00:00:04+00:00", 60]],
               "plays": [{"started_at": "2026-01-01T00:00:05+00:00", "content_id": "c"}],
               "faults": []}
    merged = merged_truth([controller, decoder])
    assert [v for _, v in merged["volume_changes"]] == [55, 40, 60]
    assert merged["plays"] == decoder["plays"]
    assert merged["zone_changes"] == controller["zone_changes"]


def test_a_device_file_names_the_children_registered_under_the_device(tmp_path: Path) -> None:
    path = tmp_path / "device.yaml"
    path.write_text(yaml.safe_dump({
        "plugin": "zonetech", "kind": "wired_zone_controller", "config": {"host": "10.0.0.5"},
        "children": [{"kind": "wired_zone", "config": {"line": n}} for n in (1, 2)]}))
    [entry] = DeviceFile.read(path).devices
    children = RealUnderTest(entry, None).children("zonetech-zt-0001")
    assert children == [{"plugin": "zonetech", "kind": "wired_zone",
                         "parent_id": "zonetech-zt-0001", "config": {"line": n}}
                        for n in (1, 2)]
