"""Proof of play: native speakers report plays over MQTT; the hub stores, queries, exports
and reconciles them — on SQLite and on PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tests.support.rig import SpeakerRig
from tests.support.wait import eventually
from ttcs.core.config import Settings
from ttcs.core.errors import DeviceTimeout
from ttcs.core.playlog import (
    CSV_COLUMNS,
    DeviceOutcome,
    PlayFilter,
    PlayLog,
    export_csv,
    export_json,
    reconcile_time,
)
from ttcs.core.store.tables import Base
from ttcs.schemas import PlayEvent, PlayPhase, StopCommand, utcnow
from ttcs.simulators.base import Fault


@pytest.fixture
async def rig(settings: Settings, database_url: str, amqtt_url: str
              ) -> AsyncIterator[SpeakerRig]:
    s = settings.model_copy(update={"database_url": database_url, "command_timeout": 1.0,
                                    "clock_skew_tolerance": 30.0})
    r = await SpeakerRig.start(s, amqtt_url)
    yield r
    await r.stop()


def playlog(rig: SpeakerRig) -> PlayLog:
    return PlayLog(rig.hub.store, skew_tolerance=rig.hub.settings.clock_skew_tolerance)


async def entries(rig: SpeakerRig, count: int, where: PlayFilter | None = None):  # type: ignore[no-untyped-def]
    """Wait until ``count`` entries match, then return them."""
    async def enough():  # type: ignore[no-untyped-def]
        found = await playlog(rig).entries(where)
        return found if len(found) >= count else None

    return await eventually(enough)


async def test_started_and_finished_are_stored_with_device_and_receive_time(rig):  # type: ignore[no-untyped-def]
    speaker, device = await rig.add("PL-0001", area="19900", village="19900-01")
    assert (await rig.play(device.id, "bc-1", "ct-1")).ok
    started, finished = await entries(rig, 2)
    truth = speaker.truth.plays[0]
    assert [started.phase, finished.phase] == [PlayPhase.STARTED, PlayPhase.FINISHED]
    assert started.device_time == truth.started_at and finished.device_time == truth.ended_at
    assert started.received_at >= started.device_time  # the hub heard it after it happened
    assert started.at == started.device_time and not started.skewed
    assert (finished.device_id, finished.area_code, finished.village_code) == (
        device.id, "19900", "19900-01")
    assert (finished.broadcast_id, finished.content_id) == ("bc-1", "ct-1")
    assert finished.command_id == truth.command_id


async def test_export_for_an_area_and_period_parses_back_as_csv_and_json(rig):  # type: ignore[no-untyped-def]
    _, ward = await rig.add("PL-0001", area="19900")
    _, commune = await rig.add("PL-0002", area="20101", village="20101-01")
    await rig.play(ward.id)
    await rig.play(commune.id)
    await entries(rig, 4)
    now = utcnow()
    where = PlayFilter(area="20101", since=now - timedelta(hours=1), until=now + timedelta(1))
    out = io.StringIO()
    assert await export_csv(playlog(rig).stream(where), out) == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert list(rows[0]) == CSV_COLUMNS
    assert [(r["device_id"], r["phase"], r["village_code"]) for r in rows] == [
        (commune.id, "started", "20101-01"), (commune.id, "finished", "20101-01")]
    out = io.StringIO()
    assert await export_json(playlog(rig).stream(PlayFilter(area="46")), out) == 4
    assert {r["device_id"] for r in json.loads(out.getvalue())} == {ward.id, commune.id}


async def test_period_outside_the_plays_exports_nothing(rig):  # type: ignore[no-untyped-def]
    _, device = await rig.add("PL-0001")
    await rig.play(device.id)
    await entries(rig, 2)
    yesterday = utcnow() - timedelta(days=1)
    out = io.StringIO()
    assert await export_csv(playlog(rig).stream(PlayFilter(
        until=yesterday)), out) == 0
    assert await export_json(playlog(rig).stream(PlayFilter(since=utcnow() + timedelta(1))),
                             io.StringIO()) == 0


async def test_plays_of_a_merged_commune_count_for_the_commune_it_merged_into(rig):  # type: ignore[no-untyped-def]
    _, device = await rig.add("PL-0001", area="20014")
    await rig.play(device.id)
    await entries(rig, 2)
    await rig.hub.registry.merge_areas(["20014"], "20101", "test")
    merged = await playlog(rig).entries(PlayFilter(area="20101"))
    assert [e.area_code for e in merged] == ["20014", "20014"]


async def test_queries_per_broadcast_and_per_content(rig):  # type: ignore[no-untyped-def]
    _, device = await rig.add("PL-0001")
    await rig.play(device.id, "bc-1", "ct-1")
    await entries(rig, 2)
    await rig.play(device.id, "bc-2", "ct-2")
    await entries(rig, 4)
    assert {e.broadcast_id for e in await playlog(rig).entries(
        PlayFilter(broadcast_id="bc-2"))} == {"bc-2"}
    assert len(await playlog(rig).entries(PlayFilter(content_id="ct-1"))) == 2


async def test_a_redelivered_play_event_is_stored_once(rig):  # type: ignore[no-untyped-def]
    _, device = await rig.add("PL-0001")
    event = PlayEvent(device_id=device.id, area_code="19900", phase=PlayPhase.STARTED,
                      broadcast_id="bc-9", device_time=utcnow())
    rig.hub.bus.publish(event)
    rig.hub.bus.publish(event)  # MQTT QoS 1 may deliver twice
    await rig.monitor.playlog.drain()
    assert len(await playlog(rig).entries(PlayFilter(broadcast_id="bc-9"))) == 1


async def test_one_malformed_report_does_not_cost_the_plays_in_its_batch(rig):  # type: ignore[no-untyped-def]
    _, device = await rig.add("PL-0001")
    good = [PlayEvent(device_id=device.id, phase=PlayPhase.STARTED, broadcast_id="bc-b")
            for _ in range(3)]
    bad = PlayEvent(device_id=device.id, phase=PlayPhase.STARTED, broadcast_id="bc-b",
                    area_code="x" * 100)  # longer than any area code the store can hold
    for event in (good[0], bad, good[1], good[2]):
        rig.hub.bus.publish(event)
    await rig.monitor.playlog.drain()
    stored = await playlog(rig).entries(PlayFilter(broadcast_id="bc-b"))
    if rig.hub.store.dialect == "postgresql":  # SQLite does not enforce lengths
        assert {e.event_id for e in stored} == {e.id for e in good}
        assert rig.monitor.playlog.failed == 1
    else:
        assert len(stored) == 4


async def test_an_overlong_event_id_from_a_device_is_stored_under_its_digest(rig):  # type: ignore[no-untyped-def]
    _, device = await rig.add("PL-0001")
    rig.hub.bus.publish(PlayEvent(id="e" * 300, device_id=device.id, phase=PlayPhase.STARTED,
                                  broadcast_id="bc-long"))
    await rig.monitor.playlog.drain()
    (entry,) = await playlog(rig).entries(PlayFilter(broadcast_id="bc-long"))
    assert entry.event_id.startswith("sha256-") and len(entry.event_id) == 64


async def test_device_text_cannot_become_a_spreadsheet_formula_in_the_csv(rig):  # type: ignore[no-untyped-def]
    _, device = await rig.add("PL-0001")
    rig.hub.bus.publish(PlayEvent(device_id=device.id, phase=PlayPhase.FAILED,
                                  broadcast_id="bc-x", detail='=HYPERLINK("http://evil")'))
    await rig.monitor.playlog.drain()
    out = io.StringIO()
    await export_csv(playlog(rig).stream(PlayFilter(broadcast_id="bc-x")), out)
    (row,) = csv.DictReader(io.StringIO(out.getvalue()))
    assert row["detail"] == '\'=HYPERLINK("http://evil")'


async def test_a_device_clock_off_by_minutes_is_flagged_and_the_hub_time_used(rig):  # type: ignore[no-untyped-def]
    _, device = await rig.add("PL-0001", clock_offset=-600)  # ten minutes slow
    await rig.play(device.id)
    started, _ = await entries(rig, 2)
    assert started.skewed and started.clock_skew == pytest.approx(600, abs=5)
    assert started.at == started.received_at


async def test_coverage_tells_played_failed_interrupted_and_silent_devices_apart(rig):  # type: ignore[no-untyped-def]
    _, played = await rig.add("PL-0001", area="19900", village="19900-01")
    failing, failed = await rig.add("PL-0002", area="19900", village="19900-01")
    _, cut = await rig.add("PL-0003", area="20014")
    hung, silent = await rig.add("PL-0004", area="20101", village="20101-01")
    _, stray = await rig.add("PL-0005", area="20101")
    await failing.inject(Fault.PLAYBACK_ERROR)
    await hung.inject(Fault.HANG)
    rig.speakers["PL-0003"].stream_seconds = 30  # long enough to be stopped
    for device in (played, failed, cut):
        assert (await rig.play(device.id, "bc-7")).ok
    with pytest.raises(DeviceTimeout):
        await rig.play(silent.id, "bc-7")
    await rig.hub.execute(cut.id, StopCommand())
    await rig.play(stray.id, "bc-7")  # not targeted: a device playing what it was not sent
    await entries(rig, 8, PlayFilter(broadcast_id="bc-7"))

    coverage = await playlog(rig).coverage("bc-7", [played.id, failed.id, cut.id, silent.id,
                                                    "never-registered"])
    outcomes = {d.device_id: d.outcome for d in coverage.devices}
    assert outcomes == {played.id: DeviceOutcome.PLAYED, failed.id: DeviceOutcome.FAILED,
                        cut.id: DeviceOutcome.INTERRUPTED, silent.id: DeviceOutcome.SILENT,
                        "never-registered": DeviceOutcome.SILENT}
    assert (coverage.targeted, coverage.played, coverage.failed, coverage.interrupted,
            coverage.silent) == (5, 1, 1, 1, 2)
    assert coverage.device_share == 0.2
    # villages: 19900-01 (reached), 20014 (the area; cut off), 20101-01 (silent)
    assert (coverage.villages_targeted, coverage.villages_reached) == (3, 1)
    assert coverage.village_share == pytest.approx(1 / 3, abs=1e-3)
    assert coverage.untargeted == [stray.id]
    assert coverage.unknown == ["never-registered"]


async def test_migration_creates_the_tables_as_declared(rig):  # type: ignore[no-untyped-def]
    def diff(conn):  # type: ignore[no-untyped-def]
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return [d for d in compare_metadata(context, Base.metadata)
                if "play_log" in repr(d) or "alarms" in repr(d)]

    async with rig.hub.store.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


def test_time_within_tolerance_is_the_device_time_beyond_it_the_receive_time() -> None:
    received = utcnow()
    assert reconcile_time(received - timedelta(seconds=2), received, 30) == (
        received - timedelta(seconds=2), 2.0)
    assert reconcile_time(received + timedelta(minutes=5), received, 30) == (received, -300.0)
    assert reconcile_time(None, received, 30) == (received, None)
