"""Alarms: each condition raised once and cleared once, from real native speakers over MQTT;
debounce and hysteresis rules with a controlled clock; alarms stored on SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.rig import SpeakerRig
from tests.support.wait import eventually
from ttcs.core.config import AlarmSettings, Settings
from ttcs.core.errors import DeviceTimeout
from ttcs.core.events import EventBus
from ttcs.core.health import (
    COMMAND_FAILURES,
    HIGH_TEMPERATURE,
    HIGH_VSWR,
    OFFLINE_TOO_LONG,
    ON_BATTERY,
    AlarmLog,
    HealthMonitor,
)
from ttcs.core.store import Store
from ttcs.schemas import (
    AlarmEvent,
    CommandResult,
    CommandResultEvent,
    CommandStatus,
    Connectivity,
    ConnectivityEvent,
    DeviceStatus,
    DeviceStatusEvent,
    PowerSource,
    parse_command,
)
from ttcs.simulators.base import Fault
from ttcs.simulators.native_speaker import NativeSpeaker

FAST = AlarmSettings(offline_after=0.3, debounce=0.0, check_interval=0.05,
                     command_failures=3, command_failure_window=60)


@pytest.fixture
async def rig(settings: Settings, amqtt_url: str) -> AsyncIterator[SpeakerRig]:
    r = await SpeakerRig.start(settings.model_copy(update={"alarms": FAST,
                                                           "command_timeout": 0.5}), amqtt_url)
    yield r
    await r.stop()


async def reading(rig: SpeakerRig, speaker: NativeSpeaker, device_id: str, **values: float
                  ) -> None:
    """Let the speaker report new readings and wait until the hub has taken them."""
    for key, value in values.items():
        if key == "temperature":
            speaker.temperature = value
        else:
            speaker.telemetry[key] = value
    await speaker.publish_status()

    def seen() -> bool:
        status = rig.hub.supervisors[device_id].status
        return status is not None and all(
            (status.temperature if k == "temperature" else status.telemetry.get(k)) == v
            for k, v in values.items())

    await eventually(seen)


async def stored(rig: SpeakerRig, code: str, *, active: bool | None = None):  # type: ignore[no-untyped-def]
    await rig.monitor.health.drain()
    alarms = await AlarmLog(rig.hub.store).list(code=code)
    return [a for a in alarms if active is None or a.active is active]


async def test_running_on_battery_raises_once_and_clears_when_mains_returns(rig):  # type: ignore[no-untyped-def]
    speaker, device = await rig.add("HL-0001")
    await speaker.inject(Fault.POWER_LOSS_BATTERY)
    await eventually(lambda: rig.alarms(ON_BATTERY))
    for _ in range(3):  # heartbeats while still on battery
        await speaker.publish_status()
    await speaker.clear(Fault.POWER_LOSS_BATTERY)
    await eventually(lambda: len(rig.alarms(ON_BATTERY)) == 2)
    assert rig.alarms(ON_BATTERY) == [(ON_BATTERY, device.id, True),
                                      (ON_BATTERY, device.id, False)]
    (alarm,) = await stored(rig, ON_BATTERY)
    assert not alarm.active and alarm.area_code == "19900" and "battery" in (alarm.detail or "")


async def test_vswr_bouncing_around_the_limit_raises_once_and_clears_below_the_margin(rig):  # type: ignore[no-untyped-def]
    speaker, device = await rig.add("HL-0001")
    for vswr in (1.5, 2.1, 1.9, 2.05, 1.85, 2.3, 1.81):  # limit 2.0, clears below 1.8
        await reading(rig, speaker, device.id, vswr=vswr)
    assert rig.alarms(HIGH_VSWR) == [(HIGH_VSWR, device.id, True)]
    await reading(rig, speaker, device.id, vswr=1.7)
    await eventually(lambda: len(rig.alarms(HIGH_VSWR)) == 2)
    assert rig.alarms(HIGH_VSWR)[-1] == (HIGH_VSWR, device.id, False)
    (alarm,) = await stored(rig, HIGH_VSWR)
    assert alarm.value == 2.1 and alarm.severity.value == "critical"


@pytest.mark.parametrize("source", ["temperature", "pa_temperature"])
async def test_temperature_bouncing_raises_once_and_clears_once(rig, source):  # type: ignore[no-untyped-def]
    speaker, device = await rig.add("HL-0001")
    for value in (69.0, 71.0, 67.0, 72.0, 66.0):  # limit 70, clears below 65
        await reading(rig, speaker, device.id, **{source: value})
    assert rig.alarms(HIGH_TEMPERATURE) == [(HIGH_TEMPERATURE, device.id, True)]
    await reading(rig, speaker, device.id, **{source: 60.0})
    assert rig.alarms(HIGH_TEMPERATURE) == [(HIGH_TEMPERATURE, device.id, True),
                                            (HIGH_TEMPERATURE, device.id, False)]


async def test_offline_too_long_is_raised_after_the_threshold_and_cleared_on_return(rig):  # type: ignore[no-untyped-def]
    speaker, device = await rig.add("HL-0001")
    await speaker.inject(Fault.POWER_LOSS)  # dead: the broker fires the last will
    await eventually(lambda: rig.alarms(OFFLINE_TOO_LONG))
    offline = next(e for e in rig.events if isinstance(e, ConnectivityEvent)
                   and e.current is Connectivity.OFFLINE)
    raised = next(e for e in rig.events if isinstance(e, AlarmEvent))
    assert (raised.at - offline.at).total_seconds() >= FAST.offline_after
    await speaker.clear(Fault.POWER_LOSS)
    await eventually(lambda: len(rig.alarms(OFFLINE_TOO_LONG)) == 2)
    assert rig.alarms() == [(OFFLINE_TOO_LONG, device.id, True),
                            (OFFLINE_TOO_LONG, device.id, False)]


async def test_repeated_command_failures_raise_once_and_a_success_clears(rig):  # type: ignore[no-untyped-def]
    _, device = await rig.add("HL-0001")
    await rig.hub.execute(device.id, parse_command({"type": "power", "on": False}))
    for volume in (10, 20, 30, 40):  # rejected: powered_off
        result = await rig.hub.execute(device.id, parse_command({"type": "set_volume",
                                                                 "volume": volume}))
        assert result.status is CommandStatus.REJECTED
    assert rig.alarms(COMMAND_FAILURES) == [(COMMAND_FAILURES, device.id, True)]
    await rig.hub.execute(device.id, parse_command({"type": "power", "on": True}))
    assert rig.alarms(COMMAND_FAILURES)[-1] == (COMMAND_FAILURES, device.id, False)
    (alarm,) = await stored(rig, COMMAND_FAILURES)
    assert "powered_off" in (alarm.detail or "")


async def test_items_that_keep_failing_to_play_raise_command_failures(rig):  # type: ignore[no-untyped-def]
    speaker, device = await rig.add("HL-0001")
    await speaker.inject(Fault.PLAYBACK_ERROR)  # accepted each time, then fails part-way
    for n in range(3):
        assert (await rig.play(device.id, f"bc-{n}")).ok
        await eventually(lambda n=n: len(speaker.truth.plays) > n
                         and speaker.truth.plays[n].outcome == "failed")
    await eventually(lambda: rig.alarms(COMMAND_FAILURES))
    await speaker.clear(Fault.PLAYBACK_ERROR)
    await rig.play(device.id, "bc-ok")
    await eventually(lambda: len(rig.alarms(COMMAND_FAILURES)) == 2)
    assert rig.alarms(COMMAND_FAILURES) == [(COMMAND_FAILURES, device.id, True),
                                            (COMMAND_FAILURES, device.id, False)]


async def test_timeouts_the_dispatcher_reports_count_as_command_failures(rig):  # type: ignore[no-untyped-def]
    speaker, device = await rig.add("HL-0001")
    await speaker.inject(Fault.HANG)
    for _ in range(3):
        with pytest.raises(DeviceTimeout) as failure:
            await rig.hub.execute(device.id, parse_command({"type": "set_volume",
                                                            "volume": 5}))
        rig.monitor.health.command_failed(device.id, str(failure.value),
                                          area_code=device.area_code)
    assert rig.alarms(COMMAND_FAILURES) == [(COMMAND_FAILURES, device.id, True)]


async def test_an_alarm_the_device_raises_is_recorded_once_and_cleared(rig):  # type: ignore[no-untyped-def]
    speaker, device = await rig.add("HL-0001")
    await speaker.inject(Fault.TAMPER)
    await speaker.inject(Fault.TAMPER)  # the device says it again
    await eventually(lambda: len(rig.alarms("tamper")) == 2)
    assert len(await stored(rig, "tamper", active=True)) == 1
    await speaker.clear(Fault.TAMPER)
    await eventually(lambda: len(rig.alarms("tamper")) == 3)
    (alarm,) = await stored(rig, "tamper")
    assert (alarm.source, alarm.active, alarm.clear_detail) == ("device", False,
                                                                "cabinet closed")


# -- stored alarms, on both databases ------------------------------------------------------------


@pytest.fixture
async def db_settings(settings: Settings, database_url: str) -> Settings:
    return settings.model_copy(update={"database_url": database_url, "alarms": FAST})


async def test_an_active_alarm_survives_a_restart_without_being_raised_again(  # type: ignore[no-untyped-def]
        db_settings, amqtt_url):
    first = await SpeakerRig.start(db_settings, amqtt_url)
    speaker, device = await first.add("HL-0001")
    await speaker.inject(Fault.POWER_LOSS_BATTERY)
    await eventually(lambda: first.alarms(ON_BATTERY))
    await first.hub.stop()

    second = await SpeakerRig.start(db_settings, amqtt_url)
    second.speakers = first.speakers
    try:
        await second.hub.supervise(device)
        await eventually(lambda: second.hub.supervisors[device.id].status is not None
                         and second.hub.supervisors[device.id].status.power_source
                         is PowerSource.BATTERY)
        await speaker.publish_status()
        await speaker.clear(Fault.POWER_LOSS_BATTERY)
        await eventually(lambda: second.alarms(ON_BATTERY))
        assert second.alarms(ON_BATTERY) == [(ON_BATTERY, device.id, False)]
        (alarm,) = await stored(second, ON_BATTERY)
        assert not alarm.active
    finally:
        await second.stop()


async def test_alarm_list_filters_by_active_area_and_device(db_settings, amqtt_url):  # type: ignore[no-untyped-def]
    rig = await SpeakerRig.start(db_settings, amqtt_url)
    try:
        ward_speaker, ward = await rig.add("HL-0001", area="19900")
        commune_speaker, commune = await rig.add("HL-0002", area="20101-01")
        await ward_speaker.inject(Fault.POWER_LOSS_BATTERY)
        await commune_speaker.inject(Fault.POWER_LOSS_BATTERY)
        await eventually(lambda: len(rig.alarms(ON_BATTERY)) == 2)
        await ward_speaker.clear(Fault.POWER_LOSS_BATTERY)
        await eventually(lambda: len(rig.alarms(ON_BATTERY)) == 3)
        await rig.monitor.health.drain()
        log = AlarmLog(rig.hub.store)
        assert [a.device_id for a in await log.list(active=True)] == [commune.id]
        assert [a.device_id for a in await log.list(area="20101")] == [commune.id]
        assert [a.device_id for a in await log.list(area="46")] == [commune.id, ward.id]
        assert [a.active for a in await log.list(device_id=ward.id)] == [False]
    finally:
        await rig.stop()


# -- the rules, with a controlled clock ----------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def monitor(settings: Settings) -> AsyncIterator[tuple[HealthMonitor, EventBus, Clock]]:
    store = await Store.open(settings)
    bus, clock = EventBus(), Clock()
    rules = AlarmSettings(offline_after=60, debounce=10, check_interval=3600)  # checks by hand
    health = HealthMonitor(store, bus, rules, clock=clock)
    await health.start()
    yield health, bus, clock
    await health.stop()
    await store.close()


def raised(bus_events: list[AlarmEvent]) -> list[tuple[str, bool]]:
    return [(e.code, e.raised) for e in bus_events]


def listen(bus: EventBus) -> list[AlarmEvent]:
    seen: list[AlarmEvent] = []
    bus.subscribe(lambda e: seen.append(e) if isinstance(e, AlarmEvent) else None)
    return seen


def status(source: PowerSource) -> DeviceStatusEvent:
    return DeviceStatusEvent(device_id="d1", area_code="19900",
                             status=DeviceStatus(power_source=source))


def connectivity(current: Connectivity) -> ConnectivityEvent:
    return ConnectivityEvent(device_id="d1", previous=Connectivity.ONLINE, current=current)


async def test_an_outage_shorter_than_the_threshold_raises_nothing(monitor):  # type: ignore[no-untyped-def]
    health, bus, clock = monitor
    seen = listen(bus)
    bus.publish(connectivity(Connectivity.OFFLINE))
    clock.now += 59
    health.check()
    bus.publish(connectivity(Connectivity.ONLINE))
    clock.now += 120
    health.check()
    assert seen == []
    bus.publish(connectivity(Connectivity.OFFLINE))
    clock.now += 60
    health.check()
    assert raised(seen) == [(OFFLINE_TOO_LONG, True)]


async def test_a_mains_blip_shorter_than_the_debounce_raises_nothing(monitor):  # type: ignore[no-untyped-def]
    health, bus, clock = monitor
    seen = listen(bus)
    bus.publish(status(PowerSource.BATTERY))
    clock.now += 9
    health.check()
    bus.publish(status(PowerSource.MAINS))
    clock.now += 30
    health.check()
    assert seen == []
    bus.publish(status(PowerSource.BATTERY))
    clock.now += 10
    health.check()  # no new status needed: the condition has simply lasted long enough
    assert raised(seen) == [(ON_BATTERY, True)]


async def test_a_clear_must_last_the_debounce_too(monitor):  # type: ignore[no-untyped-def]
    health, bus, clock = monitor
    seen = listen(bus)
    bus.publish(status(PowerSource.BATTERY))
    clock.now += 10
    health.check()
    bus.publish(status(PowerSource.MAINS))
    clock.now += 5
    health.check()
    bus.publish(status(PowerSource.BATTERY))  # mains came back only briefly
    clock.now += 30
    health.check()
    assert raised(seen) == [(ON_BATTERY, True)]
    bus.publish(status(PowerSource.MAINS))
    clock.now += 10
    health.check()
    assert raised(seen) == [(ON_BATTERY, True), (ON_BATTERY, False)]


async def test_busy_rejections_are_not_failures(monitor):  # type: ignore[no-untyped-def]
    health, bus, _ = monitor
    seen = listen(bus)
    for n in range(5):
        bus.publish(CommandResultEvent(device_id="d1", result=CommandResult(
            command_id=f"c{n}", status=CommandStatus.REJECTED, code="busy")))
    assert seen == []
    for n in range(3):
        bus.publish(CommandResultEvent(device_id="d1", result=CommandResult(
            command_id=f"f{n}", status=CommandStatus.FAILED, code="amplifier")))
    assert raised(seen) == [(COMMAND_FAILURES, True)]


async def test_failures_separated_by_a_success_do_not_add_up(monitor):  # type: ignore[no-untyped-def]
    health, bus, _ = monitor
    seen = listen(bus)
    for _ in range(3):
        health.command_failed("d1", "timeout")
        health.command_failed("d1", "timeout")
        health.command_succeeded("d1")
    assert seen == []


async def test_a_child_offline_with_its_parent_raises_no_alarm_of_its_own(monitor):  # type: ignore[no-untyped-def]
    health, bus, clock = monitor
    seen = listen(bus)
    bus.publish(ConnectivityEvent(device_id="tx", previous=Connectivity.ONLINE,
                                  current=Connectivity.OFFLINE))
    bus.publish(ConnectivityEvent(device_id="rx", previous=Connectivity.ONLINE,
                                  current=Connectivity.OFFLINE, via_parent="tx"))
    clock.now += 3600
    health.check()
    assert [(e.code, e.device_id) for e in seen] == [(OFFLINE_TOO_LONG, "tx")]
