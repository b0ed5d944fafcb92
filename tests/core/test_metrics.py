"""``GET /metrics``: the hub's state in the Prometheus text format, scraped over HTTP and read
back with the reference parser."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.net import free_port
from tests.support.rig import SpeakerRig
from tests.support.wait import eventually
from ttcs.core.config import AlarmSettings, Settings
from ttcs.core.http import start_http
from ttcs.core.metrics import Exposition
from ttcs.core.playlog import PlayFilter, PlayLog
from ttcs.simulators.base import Fault


@pytest.fixture
async def served(settings: Settings, amqtt_url: str) -> AsyncIterator[tuple[SpeakerRig, str]]:
    s = settings.model_copy(update={"api_port": free_port(), "alarms": AlarmSettings(
        debounce=0, check_interval=0.05)})
    rig = await SpeakerRig.start(s, amqtt_url)
    runner, url = await start_http(rig.hub)
    yield rig, url
    await runner.cleanup()
    await rig.stop()


async def scrape(url: str) -> tuple[str, dict[tuple[str, frozenset[tuple[str, str]]], float]]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as response:
        assert response.status == 200
        text = await response.text()
        content_type = response.headers["Content-Type"]
    samples = {(s.name, frozenset(s.labels.items())): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    return content_type, samples


def value(samples, name, **labels):  # type: ignore[no-untyped-def]
    return samples.get((name, frozenset(labels.items())))


async def test_metrics_report_devices_events_commands_plays_and_alarms(served):  # type: ignore[no-untyped-def]
    rig, url = served
    speaker, device = await rig.add("MX-0001", area="19900")
    await rig.add("MX-0002", area="20101")
    assert (await rig.play(device.id)).ok
    await speaker.inject(Fault.POWER_LOSS_BATTERY)
    await eventually(rig.alarms)
    log = PlayLog(rig.hub.store)
    await eventually(lambda: _count(log, 2))

    content_type, samples = await scrape(url)
    assert content_type.startswith("text/plain; version=0.0.4")
    assert value(samples, "ttcs_devices", kind="ip_speaker", connectivity="online") == 2
    assert value(samples, "ttcs_devices", kind="ip_speaker", connectivity="offline") == 0
    assert value(samples, "ttcs_play_events_total", phase="started") == 1
    assert value(samples, "ttcs_play_events_total", phase="finished") == 1
    assert value(samples, "ttcs_playlog_rows_written_total") == 2
    assert value(samples, "ttcs_commands_total", status="accepted") == 1
    assert value(samples, "ttcs_events_total", type="play") == 2
    assert value(samples, "ttcs_alarms_active", code="on_battery", severity="warning") == 1
    assert value(samples, "ttcs_alarms_raised_total", code="on_battery") == 1
    assert value(samples, "ttcs_bus_dropped_events_total", consumer="playlog") == 0
    assert value(samples, "ttcs_bus_events_published_total") >= 4

    await speaker.clear(Fault.POWER_LOSS_BATTERY)
    await eventually(lambda: len(rig.alarms()) == 2)
    _, samples = await scrape(url)
    assert value(samples, "ttcs_alarms_active", code="on_battery", severity="warning") is None
    assert value(samples, "ttcs_alarms_cleared_total", code="on_battery") == 1


async def test_a_device_going_offline_moves_between_connectivity_series(served):  # type: ignore[no-untyped-def]
    rig, url = served
    speaker, _ = await rig.add("MX-0001")
    await speaker.inject(Fault.POWER_LOSS)
    await eventually(lambda: next(iter(rig.hub.supervisors.values())).connectivity.value
                     == "offline")
    _, samples = await scrape(url)
    assert value(samples, "ttcs_devices", kind="ip_speaker", connectivity="online") == 0
    assert value(samples, "ttcs_devices", kind="ip_speaker", connectivity="offline") == 1


async def test_poller_lag_is_reported_for_polled_devices(served):  # type: ignore[no-untyped-def]
    rig, url = served
    _, device = await rig.add("MX-0001")
    polls = []

    async def poll() -> None:  # stands in for a poll driver's read_status
        polls.append(1)

    rig.hub.poller.add(device.id, 0.05, poll, first_in=0)
    await eventually(lambda: len(polls) >= 3)
    _, samples = await scrape(url)
    assert value(samples, "ttcs_poller_jobs") == 1
    assert {stat for (name, labels) in samples if name == "ttcs_poller_lag_seconds"
            for _, stat in labels} == {"p50", "p99", "max"}
    assert value(samples, "ttcs_poller_lag_seconds", stat="max") >= 0


def test_label_values_with_quotes_backslashes_and_newlines_survive_the_parser() -> None:
    out = Exposition()
    nasty = 'say "hi"\\ then\nnewline'
    out.family("ttcs_test", "gauge", "Help with a \\ backslash\nand a newline.",
               [({"code": nasty}, 1.5), ({}, float("inf"))])
    (family,) = text_string_to_metric_families(out.text())
    assert [(s.labels, s.value) for s in family.samples] == [({"code": nasty}, 1.5),
                                                              ({}, float("inf"))]


async def _count(log: PlayLog, wanted: int) -> bool:
    return len(await log.entries(PlayFilter())) >= wanted
