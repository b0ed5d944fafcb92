"""The VangTech plugin against the VangTech speaker simulator, over real HTTP sockets: signed
requests (checked by the simulated speaker as firmware would), play/volume/stop/test tone,
priorities, proof of play from the play log, every fault, and an address change."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
import structlog

from tests.e2e.speaker_families import stream_play
from tests.e2e.vang_signing import vang_headers
from tests.support.media import MediaServer
from tests.support.wait import eventually
from ttcs.core.errors import (
    AuthFailed,
    DeviceNotReady,
    DeviceTimeout,
    DeviceUnreachable,
    PermanentDeviceError,
    ProtocolError,
)
from ttcs.core.hub import Hub
from ttcs.schemas import (
    Activity,
    AlarmEvent,
    CommandResult,
    CommandStatus,
    Connectivity,
    ConnectivityEvent,
    Device,
    DeviceSpec,
    Event,
    PlayEvent,
    PlayPhase,
    PowerSource,
    parse_command,
)
from ttcs.schemas.base import utcnow
from ttcs.simulators.base import Fault, PlayRecord
from ttcs.simulators.vang_speaker import VangSpeaker

SECRET = "vt-test-secret"
MAC = "02:56:54:00:00:01"


@dataclass
class Rig:
    hub: Hub
    speaker: VangSpeaker
    device: Device
    events: list[Event] = field(default_factory=list)

    @property
    def connectivity(self) -> Connectivity:
        return self.hub.supervisors[self.device.id].connectivity

    async def run(self, **command: Any) -> CommandResult:
        return await self.hub.execute(self.device.id, parse_command(command))

    def play(self, content_id: str) -> PlayRecord | None:
        return next((p for p in self.speaker.truth.plays if p.content_id == content_id), None)

    def phases(self, command_id: str) -> list[PlayPhase]:
        return [e.phase for e in self.events
                if isinstance(e, PlayEvent) and e.command_id == command_id]


async def register(hub: Hub, speaker: VangSpeaker, **config: Any) -> Device:
    device = await hub.registry.add_device(DeviceSpec(
        plugin="vang", kind="ip_speaker", area_code="20101",
        config={**speaker.registration()["config"], "timeout": 1.0, "poll_interval": 0.2,
                **config}), "test")
    await hub.supervise(device)
    return device


@pytest.fixture
async def speaker() -> AsyncIterator[VangSpeaker]:
    sim = VangSpeaker("VT-0001", secret=SECRET, mac=MAC, stream_seconds=30)
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
async def rig(hub: Hub, speaker: VangSpeaker) -> Rig:
    rig = Rig(hub, speaker, await register(hub, speaker))
    hub.bus.subscribe(rig.events.append)
    await eventually(lambda: rig.connectivity is Connectivity.ONLINE)
    return rig


def audio(media: MediaServer, name: str, *, seconds: float = 0.1,
          claimed: bytes | None = None) -> dict[str, Any]:
    ref = media.ref(name, b"ID3\x04" + bytes(4000), "audio/mpeg", claimed=claimed)
    return {**ref, "duration": seconds}


# -- identity and status -------------------------------------------------------------------------


async def test_registration_keys_the_speaker_by_its_serial_and_mac(rig: Rig) -> None:
    d = rig.device
    assert (d.serial, d.mac, d.vendor, d.model, d.firmware) == (
        "VT-0001", MAC, "VangTech", "VT-IPS40-4G", "2.7.1")
    assert "audio.test_tone" in d.capabilities and "power" not in d.capabilities


async def test_polled_status_matches_the_speaker(rig: Rig) -> None:
    sup = rig.hub.supervisors[rig.device.id]
    status = await eventually(lambda: sup.status)
    assert (status.volume, status.signal, status.temperature, status.firmware) == (
        60, -71, 38.5, "2.7.1")
    assert status.power_source is PowerSource.MAINS and status.battery is None
    assert status.activity is Activity.IDLE and status.telemetry["network"] == "4g"
    polls = len(rig.speaker.polls)
    await eventually(lambda: len(rig.speaker.polls) >= polls + 2)  # the shared poller polls


# -- the speaker's side of the signature: requests signed by hand ---------------------------------


async def signed(speaker: VangSpeaker, method: str, path: str, *, body: bytes = b"",
                 headers: dict[str, str] | None = None, query: dict[str, str] | None = None,
                 **signing: Any) -> tuple[int, dict[str, Any]]:
    """Send one request signed by ``vang_headers`` (or with ``headers`` as given)."""
    hdrs = headers or vang_headers(speaker.secret, method, path, body=body, query=query,
                                   **signing)
    async with aiohttp.ClientSession() as http, http.request(
            method, f"{speaker.url}{path}", data=body, params=query,
            headers={**hdrs, "Content-Type": "application/json"}) as response:
        return response.status, await response.json()


async def test_a_request_signed_by_hand_from_the_document_is_accepted(
        speaker: VangSpeaker) -> None:
    status, body = await signed(speaker, "GET", "/api/v1/status")
    assert status == 200 and body["serial"] == "VT-0001"
    status, body = await signed(speaker, "GET", "/api/v1/playlog",
                                query={"limit": "5", "after": "0"}, target="VT-0001")
    assert status == 200 and body["entries"] == []


async def test_a_replayed_request_is_refused_and_acted_on_once(speaker: VangSpeaker) -> None:
    body = b'{"level": 33}'
    headers = vang_headers(speaker.secret, "PUT", "/api/v1/volume", body=body)
    assert (await signed(speaker, "PUT", "/api/v1/volume", body=body, headers=headers))[0] == 200
    status, refusal = await signed(speaker, "PUT", "/api/v1/volume", body=body, headers=headers)
    assert (status, refusal["error"]) == (401, "replayed_nonce")
    assert [level for _, level in speaker.truth.volume_changes] == [33]


async def test_a_request_older_or_newer_than_30_seconds_is_refused(speaker: VangSpeaker) -> None:
    speaker.boot_clock = time.time() - 3600  # up for an hour: only the 30 s window counts
    for offset in (-31, 31):
        status, refusal = await signed(speaker, "GET", "/api/v1/status",
                                       timestamp=int(time.time()) + offset)
        assert (status, refusal["error"]) == (401, "stale_request")
        assert abs(refusal["device_time"] - time.time()) < 5
    status, _ = await signed(speaker, "GET", "/api/v1/status", timestamp=int(time.time()) - 25)
    assert status == 200  # inside the window


async def test_a_tampered_body_query_or_target_is_refused(speaker: VangSpeaker) -> None:
    headers = vang_headers(speaker.secret, "PUT", "/api/v1/volume", body=b'{"level": 10}')
    status, refusal = await signed(speaker, "PUT", "/api/v1/volume", body=b'{"level": 99}',
                                   headers=headers)
    assert (status, refusal["error"]) == (401, "bad_signature")
    headers = vang_headers(speaker.secret, "GET", "/api/v1/playlog", query={"after": "0"})
    status, refusal = await signed(speaker, "GET", "/api/v1/playlog", query={"after": "7"},
                                   headers=headers)
    assert (status, refusal["error"]) == (401, "bad_signature")
    headers = vang_headers(speaker.secret, "GET", "/api/v1/status", target="VT-0009")
    status, refusal = await signed(speaker, "GET", "/api/v1/status",
                                   headers={**headers, "X-Vang-Device": "VT-0001"})
    assert (status, refusal["error"]) == (401, "bad_signature")
    assert speaker.volume == 60 and speaker.truth.volume_changes == []
    assert [r.code for r in speaker.truth.rejections] == ["bad_signature"] * 3


async def test_a_wrong_secret_or_key_id_or_missing_header_is_refused(
        speaker: VangSpeaker) -> None:
    headers = vang_headers("not-the-secret", "GET", "/api/v1/status")
    assert (await signed(speaker, "GET", "/api/v1/status", headers=headers))[1]["error"] == (
        "bad_signature")
    headers = vang_headers(speaker.secret, "GET", "/api/v1/status", key_id="installer")
    assert (await signed(speaker, "GET", "/api/v1/status", headers=headers))[1]["error"] == (
        "unknown_key")
    headers = vang_headers(speaker.secret, "GET", "/api/v1/status")
    del headers["X-Vang-Nonce"]
    status, refusal = await signed(speaker, "GET", "/api/v1/status", headers=headers)
    assert (status, refusal["error"]) == (401, "missing_auth")


async def test_a_request_meant_for_another_speaker_is_refused_with_its_serial(
        speaker: VangSpeaker) -> None:
    status, refusal = await signed(speaker, "PUT", "/api/v1/volume", body=b'{"level": 5}',
                                   target="VT-0002")
    assert (status, refusal["error"], refusal["serial"]) == (421, "wrong_device", "VT-0001")
    assert speaker.volume == 60


async def test_a_request_stamped_before_a_reboot_is_refused_after_it(
        speaker: VangSpeaker) -> None:
    speaker.boot_clock = time.time() - 3600  # up for an hour
    headers = vang_headers(speaker.secret, "GET", "/api/v1/status",
                           timestamp=int(time.time()) - 2)
    assert (await signed(speaker, "GET", "/api/v1/status", headers=headers))[0] == 200
    await speaker.inject(Fault.REBOOT, seconds=0.1)  # the nonce cache lived in RAM
    status, refusal = await signed(speaker, "GET", "/api/v1/status", headers=headers)
    assert (status, refusal["error"]) == (401, "stale_request")


async def test_a_speaker_whose_clock_is_off_is_not_ready_rather_than_refusing_credentials(
        hub: Hub) -> None:
    skewed = VangSpeaker("VT-0077", secret=SECRET, clock_offset=-120)
    await skewed.start()
    try:
        with pytest.raises(DeviceNotReady, match="clock is -12\\d s off.*NTP"):
            await register(hub, skewed)
    finally:
        await skewed.stop()


# -- commands ------------------------------------------------------------------------------------


async def test_a_file_is_fetched_checked_played_repeat_times_and_reported(
        rig: Rig, media: MediaServer) -> None:
    ref = audio(media, "ban-tin.mp3", seconds=0.1)
    result = await rig.run(type="play", media=ref, content_id="ct-file",
                           broadcast_id="bc-file", repeat=3)
    assert (result.status, result.data["seconds"]) == (CommandStatus.ACCEPTED, 0.3)
    play = await eventually(lambda: rig.play("ct-file"))
    assert (play.source, play.level, play.command_id) == (ref["url"], "normal", result.command_id)
    await eventually(lambda: play.outcome == "finished")
    assert media.requests == 1
    await eventually(lambda: rig.phases(result.command_id) == [PlayPhase.STARTED,
                                                                PlayPhase.FINISHED])
    reported = [e for e in rig.events if isinstance(e, PlayEvent)]
    assert {(e.device_id, e.content_id, e.broadcast_id) for e in reported} == {
        (rig.device.id, "ct-file", "bc-file")}


async def test_altered_media_is_refused_by_the_speaker_and_nothing_plays(
        rig: Rig, media: MediaServer) -> None:
    ref = audio(media, "altered.mp3", claimed=b"what was approved")
    result = await rig.run(type="play", media=ref, content_id="ct-altered")
    assert (result.status, result.code) == (CommandStatus.REJECTED, "checksum_mismatch")
    assert rig.speaker.truth.plays == []
    assert rig.speaker.truth.rejections[-1].code == "checksum_mismatch"


async def test_media_the_speaker_cannot_fetch_is_a_failed_result_that_may_be_retried(
        rig: Rig, media: MediaServer) -> None:
    ref = {**audio(media, "gone.mp3"), "url": f"{media.base}/nowhere.mp3"}
    result = await rig.run(type="play", media=ref, content_id="ct-gone")
    assert (result.status, result.code) == (CommandStatus.FAILED, "media_unavailable")
    again = await rig.run(type="play", media=ref, content_id="ct-gone",
                          idempotency_key=result.command_id)  # a failure is not remembered
    assert again.status is CommandStatus.FAILED
    assert [c["path"] for c in rig.speaker.truth.commands].count("/api/v1/play") == 2


async def test_the_volume_of_a_play_is_for_that_job_only(rig: Rig) -> None:
    await rig.run(**stream_play(content_id="ct-loud", volume=90))
    play = await eventually(lambda: rig.play("ct-loud"))
    assert play.volume == 90 and rig.speaker.volume == 60
    status = await rig.hub.read_status(rig.device.id)
    assert (status.volume, status.telemetry["job_volume"]) == (60, 90)
    assert status.current_item == "ct-loud"


async def test_levels_preempt_equal_or_lower_priorities_and_never_the_other_way(
        rig: Rig) -> None:
    first = await rig.run(**stream_play(content_id="ct-n1"))
    second = await rig.run(**stream_play(content_id="ct-n2"))  # equal level: preempts
    assert rig.play("ct-n1").outcome == "interrupted"  # type: ignore[union-attr]
    urgent = await rig.run(**stream_play(content_id="ct-p", level="priority"))
    assert urgent.ok and rig.play("ct-n2").outcome == "interrupted"  # type: ignore[union-attr]
    refused = await rig.run(**stream_play(content_id="ct-n3"))
    assert (refused.status, refused.code) == (CommandStatus.REJECTED, "busy")
    alert = await rig.run(**stream_play(content_id="ct-e", level="emergency"))
    assert alert.ok
    levels = [(p.content_id, p.level, p.outcome) for p in rig.speaker.truth.plays]
    assert levels == [("ct-n1", "normal", "interrupted"), ("ct-n2", "normal", "interrupted"),
                      ("ct-p", "priority", "interrupted"), ("ct-e", "emergency", "playing")]
    for cmd in (first, second):  # the dispatcher resumes interrupted items from these events
        await eventually(lambda c=cmd: PlayPhase.INTERRUPTED in rig.phases(c.command_id))


async def test_a_test_tone_plays_when_idle_yields_to_any_play_and_never_interrupts_one(
        rig: Rig) -> None:
    tone = await rig.run(type="test_tone", frequency=440, seconds=20)
    assert tone.status is CommandStatus.ACCEPTED
    [record] = rig.speaker.truth.plays
    assert (record.source, record.level, record.outcome) == ("tone:440Hz", "test", "playing")
    assert (await rig.hub.read_status(rig.device.id)).activity is Activity.PLAYING
    await rig.run(**stream_play(content_id="ct-after-tone"))
    assert record.outcome == "interrupted"
    busy = await rig.run(type="test_tone", frequency=440, seconds=1)
    assert (busy.status, busy.code) == (CommandStatus.REJECTED, "busy")
    assert rig.play("ct-after-tone").outcome == "playing"  # type: ignore[union-attr]


async def test_stop_naming_a_content_id_stops_only_that_item(rig: Rig) -> None:
    await rig.run(**stream_play(content_id="ct-a"))
    other = await rig.run(type="stop", content_id="ct-b")
    assert (other.status, other.code) == (CommandStatus.DONE, "not_playing")
    assert rig.play("ct-a").outcome == "playing"  # type: ignore[union-attr]
    job = rig.speaker.current
    assert job is not None
    done = await rig.run(type="stop", content_id="ct-a")
    assert (done.code, done.data["stopped"]) == ("ok", job.id)
    assert rig.play("ct-a").outcome == "stopped"  # type: ignore[union-attr]


async def test_a_repeat_after_a_timeout_finds_the_job_instead_of_playing_it_again(
        rig: Rig) -> None:
    command = stream_play(content_id="ct-slow", idempotency_key="bc-slow/dev")
    await rig.speaker.inject(Fault.SLOW, delay=1.5)
    with pytest.raises(DeviceTimeout):
        await rig.run(**command)
    await eventually(lambda: rig.play("ct-slow"), timeout=10)  # it did start, late
    await rig.speaker.clear(Fault.SLOW)
    again = await rig.run(**command)  # a new command id, the same key (as the dispatcher does)
    assert (again.status, again.data["found_on_device"]) == (CommandStatus.ACCEPTED, True)
    assert [p.content_id for p in rig.speaker.truth.plays] == ["ct-slow"]


async def test_an_expired_command_is_rejected_before_it_reaches_the_speaker(rig: Rig) -> None:
    late = utcnow() - timedelta(seconds=1)
    result = await rig.run(**stream_play(content_id="ct-late", expires_at=late.isoformat()))
    assert (result.status, result.code) == (CommandStatus.REJECTED, "expired")
    assert rig.speaker.truth.commands == []


async def test_reboot_command_restarts_the_speaker_and_it_comes_back(rig: Rig) -> None:
    boot = rig.speaker.boot_id
    assert (await rig.run(type="reboot")).status is CommandStatus.ACCEPTED
    await eventually(lambda: rig.speaker.boot_id != boot and rig.speaker.server.listening)
    assert (await rig.run(type="set_volume", volume=41)).ok


# -- faults --------------------------------------------------------------------------------------


async def test_offline_is_unreachable_logged_once_and_comes_back(rig: Rig) -> None:
    with structlog.testing.capture_logs() as logs:
        await rig.speaker.inject(Fault.OFFLINE)
        with pytest.raises(DeviceUnreachable):
            await rig.run(type="set_volume", volume=10)
        await eventually(lambda: rig.connectivity is Connectivity.OFFLINE)
        polls = rig.hub.poller.job(rig.device.id).runs  # type: ignore[union-attr]
        await eventually(lambda: rig.hub.poller.job(rig.device.id).runs >= polls + 3)  # type: ignore[union-attr]
        await rig.speaker.clear(Fault.OFFLINE)
        await eventually(lambda: rig.connectivity is Connectivity.ONLINE)
    assert [e["event"] for e in logs if e["event"] == "device.offline"] == ["device.offline"]
    changes = [e.current for e in rig.events if isinstance(e, ConnectivityEvent)]
    assert changes[-2:] == [Connectivity.OFFLINE, Connectivity.ONLINE]
    assert changes.count(Connectivity.OFFLINE) == 1


async def test_an_offline_speaker_is_polled_less_often_and_at_its_rate_once_back(rig: Rig
                                                                                ) -> None:
    job = rig.hub.poller.job(rig.device.id)
    assert job is not None and job.every == 1
    await rig.speaker.inject(Fault.OFFLINE)
    await eventually(lambda: rig.connectivity is Connectivity.OFFLINE)
    await eventually(lambda: job.every >= 2 and job.paced >= 1)  # slots pass it by
    await rig.speaker.clear(Fault.OFFLINE)
    await eventually(lambda: rig.connectivity is Connectivity.ONLINE, timeout=10)
    assert job.every == 1


async def test_slow_answers_time_out_within_the_device_timeout(rig: Rig) -> None:
    await rig.speaker.inject(Fault.SLOW, delay=2.0)
    with pytest.raises(DeviceTimeout):
        await rig.run(type="set_volume", volume=10)
    await rig.speaker.clear(Fault.SLOW)
    assert (await rig.run(type="set_volume", volume=11)).ok


async def test_garbage_answers_are_protocol_errors_and_the_speaker_degrades(rig: Rig) -> None:
    await rig.speaker.inject(Fault.GARBAGE)
    with pytest.raises(ProtocolError):
        await rig.hub.read_status(rig.device.id)
    await eventually(lambda: rig.connectivity in (Connectivity.DEGRADED, Connectivity.OFFLINE))
    await rig.speaker.clear(Fault.GARBAGE)
    await eventually(lambda: rig.connectivity is Connectivity.ONLINE)


async def test_a_dropped_connection_costs_at_most_one_request(rig: Rig) -> None:
    rig.hub.poller.remove(rig.device.id)  # keep the poller from taking the dropped request
    await rig.speaker.inject(Fault.DROP_CONNECTION)
    with contextlib.suppress(DeviceUnreachable):  # aiohttp may retry on a fresh connection
        await rig.hub.read_status(rig.device.id)
    assert rig.speaker.server.dropped == 1
    assert (await rig.hub.read_status(rig.device.id)).firmware == "2.7.1"


async def test_power_loss_cuts_the_job_goes_offline_and_reports_it_after_boot(rig: Rig) -> None:
    result = await rig.run(**stream_play(content_id="ct-cut"))
    boot = rig.speaker.boot_id
    await rig.speaker.inject(Fault.POWER_LOSS)
    assert rig.play("ct-cut").outcome == "power_lost"  # type: ignore[union-attr]
    await eventually(lambda: rig.connectivity is Connectivity.OFFLINE)
    await rig.speaker.clear(Fault.POWER_LOSS)
    await eventually(lambda: rig.connectivity is Connectivity.ONLINE)
    assert rig.speaker.boot_id != boot
    await eventually(lambda: rig.phases(result.command_id) == [PlayPhase.STARTED,
                                                                PlayPhase.INTERRUPTED])
    [ended] = [e for e in rig.events if isinstance(e, PlayEvent)
               and e.phase is PlayPhase.INTERRUPTED]
    assert ended.detail == "power_lost"


async def test_on_battery_the_status_says_so(rig: Rig) -> None:
    await rig.speaker.inject(Fault.POWER_LOSS_BATTERY)
    status = await rig.hub.read_status(rig.device.id)
    assert (status.power_source, status.battery) == (PowerSource.BATTERY, 96)
    assert "on_battery" in status.faults
    await rig.speaker.clear(Fault.POWER_LOSS_BATTERY)
    assert (await rig.hub.read_status(rig.device.id)).power_source is PowerSource.MAINS


async def test_a_reboot_with_new_firmware_updates_the_registry_not_the_identity(
        rig: Rig) -> None:
    await rig.speaker.inject(Fault.REBOOT, firmware="2.8.0", seconds=0.2)

    async def stored() -> Device | None:
        device = await rig.hub.registry.get_device(rig.device.id)
        return device if device.firmware == "2.8.0" else None

    device = await eventually(stored)
    assert (device.id, device.serial, device.mac) == (rig.device.id, "VT-0001", MAC)


async def test_a_changed_secret_is_an_auth_failure_offline_at_once_and_logged_once(
        rig: Rig) -> None:
    with structlog.testing.capture_logs() as logs:
        await rig.speaker.inject(Fault.WRONG_CREDENTIALS, secret="reset-on-site")
        await eventually(lambda: rig.connectivity is Connectivity.OFFLINE)
        assert rig.hub.supervisors[rig.device.id].failures == 1  # at once, not after three
        await eventually(lambda: rig.speaker.auth_refusals >= 4)
        with pytest.raises(AuthFailed, match="bad_signature"):
            await rig.run(type="set_volume", volume=1)
    assert [e["event"] for e in logs if e["event"] == "device.offline"] == ["device.offline"]
    assert not any(SECRET in json.dumps(e, default=str) for e in logs)
    assert rig.speaker.volume == 60
    await rig.speaker.clear(Fault.WRONG_CREDENTIALS)
    await eventually(lambda: rig.connectivity is Connectivity.ONLINE)


async def test_a_hung_speaker_times_out_without_delaying_another(rig: Rig) -> None:
    other_sim = VangSpeaker("VT-0002", secret=SECRET)
    await other_sim.start()
    try:
        other = await register(rig.hub, other_sim)
        await rig.speaker.inject(Fault.HANG)
        hung = asyncio.create_task(rig.run(type="set_volume", volume=5))
        assert (await rig.hub.execute(other.id, parse_command(
            {"type": "set_volume", "volume": 6}))).ok
        assert not hung.done() and other_sim.volume == 6
        with pytest.raises(DeviceTimeout):
            await hung
        assert rig.speaker.volume == 60
    finally:
        await rig.speaker.clear(Fault.HANG)
        await other_sim.stop()


async def test_a_playback_error_is_reported_as_a_failed_play(rig: Rig) -> None:
    await rig.speaker.inject(Fault.PLAYBACK_ERROR)
    result = await rig.run(**stream_play(content_id="ct-broken"))
    play = await eventually(lambda: rig.play("ct-broken"))
    await eventually(lambda: play.outcome == "failed")
    await eventually(lambda: rig.phases(result.command_id) == [PlayPhase.STARTED,
                                                                PlayPhase.FAILED])


async def test_tamper_raises_an_alarm_once_and_clears_it_once(rig: Rig) -> None:
    def alarms() -> list[bool]:
        return [e.raised for e in rig.events if isinstance(e, AlarmEvent) and e.code == "tamper"
                and e.device_id == rig.device.id]

    await rig.speaker.inject(Fault.TAMPER)
    await eventually(lambda: alarms() == [True])
    polls = len(rig.speaker.polls)
    await eventually(lambda: len(rig.speaker.polls) >= polls + 3)
    assert alarms() == [True]
    await rig.speaker.clear(Fault.TAMPER)
    await eventually(lambda: alarms() == [True, False])


# -- identity across an address change ---------------------------------------------------------


async def test_the_same_speaker_at_a_new_address_keeps_its_identity(rig: Rig) -> None:
    await rig.speaker.stop()  # moved to another cell: its old address is gone
    moved = VangSpeaker("VT-0001", secret=SECRET, mac=MAC)
    await moved.start()
    try:
        assert moved.url != rig.speaker.url
        updated = rig.device.model_copy(update={"config": {**rig.device.config,
                                                           "url": moved.url}})
        await rig.hub.supervise(updated)  # what the integrator's config change leads to
        await eventually(lambda: rig.connectivity is Connectivity.ONLINE)
        assert (await rig.run(type="set_volume", volume=44)).ok and moved.volume == 44
        stored = await rig.hub.registry.get_device(rig.device.id)
        assert (stored.id, stored.serial) == (rig.device.id, "VT-0001")
    finally:
        await moved.stop()


async def test_another_speaker_at_the_new_address_is_refused_with_a_permanent_error(
        rig: Rig) -> None:
    stranger = VangSpeaker("VT-0666", secret=SECRET)  # same fleet secret, another speaker
    await stranger.start()
    try:
        updated = rig.device.model_copy(update={"config": {**rig.device.config,
                                                           "url": stranger.url}})
        await rig.hub.supervise(updated)
        await eventually(lambda: rig.connectivity is Connectivity.OFFLINE)
        sup = rig.hub.supervisors[rig.device.id]
        assert sup.failures == 1 and "VT-0666, not VT-0001" in (sup.last_error or "")
        with pytest.raises(PermanentDeviceError, match="refusing to drive another device"):
            await rig.run(type="set_volume", volume=9)
        with pytest.raises(PermanentDeviceError):
            await rig.run(**stream_play(content_id="ct-wrong-commune"))
        assert stranger.volume == 60 and stranger.truth.plays == []
        assert {r.code for r in stranger.truth.rejections} == {"wrong_device"}
    finally:
        await stranger.stop()
