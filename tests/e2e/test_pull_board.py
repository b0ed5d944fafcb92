"""The pull-board plugin against the 4G pull-board simulator: the board polls the hub's device
endpoint over real sockets (HTTP, and HTTPS with a test CA)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog

from tests.e2e.boards import at, brightest, green, has_colour, picture, run, shown_ids
from tests.support.brokers import make_tls_files
from tests.support.media import png_image
from tests.support.net import free_port
from tests.support.wait import eventually
from ttcs.core.errors import AuthFailed, DeviceTimeout, DeviceUnreachable
from ttcs.core.hub import Hub
from ttcs.schemas import Activity, CommandStatus, Connectivity, DeviceSpec, PowerSource
from ttcs.simulators.base import Fault
from ttcs.simulators.board_display import LOCAL_TZ
from ttcs.simulators.pull_board import PullBoard

TOKEN = "hls-test-token"
POLL = 0.2


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
async def board(port: int) -> AsyncIterator[PullBoard]:
    b = PullBoard("HLS-0001", f"http://127.0.0.1:{port}", token=TOKEN, poll_interval=POLL,
                  mac="02:48:4C:00:00:01")
    await b.start()
    yield b
    await b.stop()


def config(port: int, **extra: Any) -> dict[str, Any]:
    return {"serial": "HLS-0001", "token": TOKEN, "listen_host": "127.0.0.1",
            "listen_port": port, "poll_interval": POLL, **extra}


async def register(hub: Hub, cfg: dict[str, Any], kind: str = "lcd_board") -> Any:
    device = await hub.registry.add_device(DeviceSpec(
        plugin="pullboard", kind=kind, area_code="20101", config=cfg), "test")
    await hub.supervise(device)
    return device


@pytest.fixture
async def rig(hub: Hub, board: PullBoard, port: int):  # type: ignore[no-untyped-def]
    device = await register(hub, config(port))
    await eventually(lambda: connectivity(hub, device) is Connectivity.ONLINE)
    return hub, board, device


def connectivity(hub: Hub, device: Any) -> Connectivity:
    return hub.supervisors[device.id].connectivity


def session(hub: Hub, device: Any) -> Any:
    driver = hub.supervisors[device.id].driver
    return driver.session  # type: ignore[union-attr]


# -- registration and status -------------------------------------------------------------------


async def test_registration_takes_identity_from_the_boards_heartbeat(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    assert (device.serial, device.vendor, device.model, device.firmware, device.mac) == (
        "HLS-0001", "HaLong Signage", "HLS-4G-LCD43", "2.4.0", "02:48:4C:00:00:01")
    assert device.kind == "lcd_board"


async def test_status_arrives_with_heartbeats_without_the_hub_polling(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    assert hub.poller.job(device.id) is None  # device pull: nobody polls the board
    status = hub.supervisors[device.id].status
    assert status.brightness == 80 and status.signal == board.signal
    assert status.telemetry["storage_total_mb"] == 512.0
    assert status.telemetry["boot_id"] == board.boot_id
    live = await hub.read_status(device.id)
    assert live.connectivity is Connectivity.ONLINE and live.firmware == "2.4.0"


async def test_unknown_board_is_told_404_and_never_shows_up(hub: Hub, board: PullBoard,
                                                            port: int) -> None:
    other = PullBoard("HLS-0404", f"http://127.0.0.1:{port}", token=TOKEN, poll_interval=POLL)
    await other.start()
    try:
        await register(hub, config(port))
        await eventually(lambda: other.poll_failures > 2)
        assert "404" in (other.last_error or "")
    finally:
        await other.stop()


# -- showing -------------------------------------------------------------------------------------


async def test_show_text_reaches_the_board_on_its_next_poll(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    text = "Tiêm phòng dại cho chó mèo: 8h sáng Chủ nhật tại nhà văn hoá thôn"
    result = await run(hub, device, type="show", text=text, content_id="ct-rabies")
    assert result.status is CommandStatus.DONE and result.data["showing"] is True
    assert board.display.current.text == text
    await eventually(lambda: hub.supervisors[device.id].status.current_item == "ct-rabies")
    assert hub.supervisors[device.id].status.telemetry["current_text"] == text


async def test_show_image_the_board_fetches_and_checks_itself(rig, media):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    ref = media.ref("map.png", png_image(120, 60, (0, 180, 0)))
    result = await run(hub, device, type="show", text="Bản đồ ngập", media=ref,
                       content_id="ct-map")
    assert result.status is CommandStatus.DONE
    assert board.media[ref["sha256"]][0] == media.files["map.png"][0]
    shot = picture(await run(hub, device, type="screenshot"))
    assert shot.size == (800, 480) and shot.text["ttcs:item"] == "ct-map"
    assert has_colour(shot, green)


async def test_altered_media_is_refused_by_the_board_and_not_shown(rig, media):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    ref = media.ref("swap.png", png_image(colour=(255, 0, 0)), claimed=png_image())
    result = await run(hub, device, type="show", media=ref, content_id="ct-bad")
    assert result.status is CommandStatus.REJECTED and result.code == "checksum_mismatch"
    assert board.truth.shown == []
    assert [(r.command_id, r.code) for r in board.truth.rejections] == [
        ("ct-bad", "checksum_mismatch")]
    await eventually(lambda: board.rejected == [])  # the hub took the item back


async def test_screenshot_carries_the_png_and_the_current_item(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    await run(hub, device, type="show", text="Lịch cắt nước", content_id="ct-water")
    result = await run(hub, device, type="screenshot")
    assert result.data["current_item"] == "ct-water" and result.data["text"] == "Lịch cắt nước"
    shot = picture(result)
    assert shot.text["ttcs:text"] == "Lịch cắt nước" and brightest(shot) > 100


async def test_set_brightness_goes_through_the_queue_and_is_recorded(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    result = await run(hub, device, type="set_brightness", brightness=45)
    assert result.status is CommandStatus.DONE and result.data["brightness"] == 45
    assert [c["level"] for c in board.truth.brightness_changes] == [45]
    await eventually(lambda: hub.supervisors[device.id].status.brightness == 45)
    assert session(hub, device).pending == {}


async def test_item_outside_its_validity_window_is_not_shown(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    await run(hub, device, type="show", text="cũ", content_id="ct-old",
              valid_from=at(-7200), valid_until=at(-3600))
    await run(hub, device, type="show", text="mai", content_id="ct-later", valid_from=at(3600))
    assert board.truth.shown == []
    assert {(s["item_id"], s["reason"]) for s in board.truth.skipped} == {
        ("ct-old", "expired"), ("ct-later", "not_yet_valid")}


async def test_item_appears_when_its_window_opens(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    await run(hub, device, type="show", text="sắp", content_id="ct-soon", valid_from=at(0.8))
    assert board.display.current is None
    await eventually(lambda: board.display.current is not None)
    assert shown_ids(board.truth) == ["ct-soon"]


async def test_clear_empties_the_boards_playlist(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    await run(hub, device, type="show", text="xoá", content_id="ct-clear")
    assert (await run(hub, device, type="clear")).status is CommandStatus.DONE
    assert board.display.items == [] and board.display.current is None


async def test_power_command_switches_the_screen(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    await run(hub, device, type="show", text="đèn", content_id="ct-p")
    await run(hub, device, type="power", on=False)
    assert brightest(picture(await run(hub, device, type="screenshot"))) == 0
    await eventually(lambda: hub.supervisors[device.id].status.activity is Activity.OFF)


async def test_power_schedule_from_config_reaches_the_board(hub, board, port):  # type: ignore[no-untyped-def]
    local = datetime.now(LOCAL_TZ)
    on, off = ((local + timedelta(hours=h)).strftime("%H:%M") for h in (-1, 1))
    await register(hub, config(port, power_on=on, power_off=off))
    await eventually(lambda: board.display.schedule is not None)
    assert board.truth.power_schedules[-1]["schedule"] == {"on": on, "off": off}
    assert board.display.dark_reason() is None  # now is inside the on-hours


async def test_a_fresh_driver_learns_the_boards_playlist_before_changing_it(rig, port):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    await run(hub, device, type="show", text="một", content_id="ct-a")
    await hub.unsupervise(device.id)  # as after a hub restart: the driver knows nothing
    await hub.transports.close()
    await hub.supervise(device)
    await run(hub, device, type="show", text="hai", content_id="ct-b")
    assert [i.id for i in board.display.items] == ["ct-a", "ct-b"]


# -- idempotency and redelivery ------------------------------------------------------------------


async def test_repeated_idempotency_key_acts_once(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    for _ in range(2):
        assert (await run(hub, device, type="set_brightness", brightness=50,
                          idempotency_key="k-once")).ok
    assert [c["level"] for c in board.truth.brightness_changes] == [50]


async def test_a_repeated_screenshot_key_gets_the_first_answer_without_its_png(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    first = await run(hub, device, type="screenshot", idempotency_key="k-shot")
    again = await run(hub, device, type="screenshot", idempotency_key="k-shot")
    assert "png_base64" in first.data and board.truth.screenshots == 1
    assert again.data["png_dropped"] is True and "png_base64" not in again.data
    assert again.data["current_item"] == first.data["current_item"]


async def test_reply_lost_to_a_dropped_connection_is_redelivered_and_acted_on_once(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    await board.inject(Fault.DROP_CONNECTION, on="commands")
    result = await run(hub, device, type="set_brightness", brightness=61)
    assert result.ok and board.dropped == 1
    assert session(hub, device).redeliveries >= 1
    assert [c["level"] for c in board.truth.brightness_changes] == [61]


async def test_dropped_poll_costs_nothing_but_that_poll(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    await board.inject(Fault.DROP_CONNECTION)
    await eventually(lambda: board.dropped == 1)
    assert (await run(hub, device, type="set_brightness", brightness=62)).ok
    assert connectivity(hub, device) is Connectivity.ONLINE


async def test_command_with_expiry_stays_queued_while_the_board_is_hung(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    hub.settings.command_timeout = 0.5
    await board.inject(Fault.HANG)
    with pytest.raises(DeviceTimeout):
        await run(hub, device, type="set_brightness", brightness=12, expires_at=at(60))
    assert board.display.brightness == 80  # hung: nothing happened
    await board.clear(Fault.HANG)
    await eventually(lambda: board.display.brightness == 12)
    await eventually(lambda: session(hub, device).pending == {})


# -- faults --------------------------------------------------------------------------------------


async def test_wrong_token_is_refused_with_401_logged_once_and_offline(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    with structlog.testing.capture_logs() as logs:
        await board.inject(Fault.WRONG_CREDENTIALS)
        await eventually(lambda: board.auth_refusals >= 3)
    assert [e["event"] for e in logs if e["event"].startswith("pullboard.auth")] == [
        "pullboard.auth_failed"]
    await eventually(lambda: connectivity(hub, device) is Connectivity.OFFLINE)
    assert "auth_failed" in hub.supervisors[device.id].status.faults
    with pytest.raises(AuthFailed):
        await run(hub, device, type="set_brightness", brightness=1)
    await board.clear(Fault.WRONG_CREDENTIALS)
    await eventually(lambda: connectivity(hub, device) is Connectivity.ONLINE)


async def test_board_that_says_goodbye_is_offline_at_once_and_back_when_it_returns(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    await board.inject(Fault.OFFLINE)
    assert connectivity(hub, device) is Connectivity.OFFLINE
    with pytest.raises(DeviceUnreachable):
        await run(hub, device, type="set_brightness", brightness=10)
    await board.clear(Fault.OFFLINE)
    await eventually(lambda: connectivity(hub, device) is Connectivity.ONLINE)


async def test_power_loss_is_offline_after_missed_heartbeats_then_reboots(hub, board, port):  # type: ignore[no-untyped-def]
    device = await register(hub, config(port, offline_after=6))
    await run(hub, device, type="show", text="mất điện", content_id="ct-pl")
    boot = board.boot_id
    await board.inject(Fault.POWER_LOSS)
    assert board.truth.shown[-1]["outcome"] == "power_lost"
    await eventually(lambda: connectivity(hub, device) is Connectivity.DEGRADED, timeout=1)
    await eventually(lambda: connectivity(hub, device) is Connectivity.OFFLINE, timeout=2)
    await board.clear(Fault.POWER_LOSS)
    await eventually(lambda: connectivity(hub, device) is Connectivity.ONLINE)
    assert hub.supervisors[device.id].status.telemetry["boot_id"] != boot
    assert board.display.current.id == "ct-pl"  # the playlist survived in flash


async def test_battery_power_is_reported_and_brightness_capped(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    await board.inject(Fault.POWER_LOSS_BATTERY)
    status = await eventually(lambda: hub.supervisors[device.id].status if
                              hub.supervisors[device.id].status.power_source
                              is PowerSource.BATTERY else None)
    assert status.brightness == 30 and "on_battery" in status.faults


async def test_reboot_with_new_firmware_updates_the_registry(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    await board.inject(Fault.REBOOT, firmware="2.5.1", seconds=0.2)

    async def stored() -> bool:
        return (await hub.registry.get_device(device.id)).firmware == "2.5.1"

    await eventually(stored)


async def test_reboot_command_is_acknowledged_before_the_board_restarts(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    boot = board.boot_id
    result = await run(hub, device, type="reboot")
    assert result.status is CommandStatus.ACCEPTED
    await eventually(lambda: board.boot_id != boot)
    await eventually(lambda: connectivity(hub, device) is Connectivity.ONLINE)


async def test_slow_board_times_out_the_command(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    hub.settings.command_timeout = 0.5
    await board.inject(Fault.SLOW, delay=1.5)
    with pytest.raises(DeviceTimeout):
        await run(hub, device, type="set_brightness", brightness=20)
    await board.clear(Fault.SLOW)
    await eventually(lambda: connectivity(hub, device) is Connectivity.ONLINE, timeout=5)


async def test_garbage_polls_are_refused_and_the_board_goes_offline(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    await board.inject(Fault.GARBAGE)
    await eventually(lambda: connectivity(hub, device) is Connectivity.OFFLINE)
    assert session(hub, device).bad_requests > 0 and "400" in (board.last_error or "")
    await board.clear(Fault.GARBAGE)
    await eventually(lambda: connectivity(hub, device) is Connectivity.ONLINE)


async def test_hung_board_keeps_heartbeating_but_commands_time_out(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    hub.settings.command_timeout = 0.5
    await board.inject(Fault.HANG)
    with pytest.raises(DeviceTimeout):
        await run(hub, device, type="screenshot")
    assert connectivity(hub, device) is Connectivity.ONLINE
    assert session(hub, device).pending == {}  # withdrawn: it had no expiry


async def test_a_stranger_with_a_wrong_token_does_not_knock_a_polling_board_offline(rig, port):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    stranger = PullBoard("HLS-0001", f"http://127.0.0.1:{port}", token="guess",
                         poll_interval=POLL / 2)
    await stranger.start()
    try:
        await eventually(lambda: stranger.auth_refusals >= 5)
        assert connectivity(hub, device) is Connectivity.ONLINE
        assert (await run(hub, device, type="set_brightness", brightness=77)).ok
    finally:
        await stranger.stop()


async def test_probing_with_a_mistyped_token_does_not_lock_out_the_registered_board(rig, port):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    with pytest.raises(Exception, match="already registered"):
        await hub.registry.add_device(DeviceSpec(
            plugin="pullboard", kind="lcd_board", area_code="20101",
            config={**config(port), "token": "typo"}), "test")
    assert (await run(hub, device, type="set_brightness", brightness=66)).ok


# -- TLS -----------------------------------------------------------------------------------------


async def test_board_polls_over_https_with_the_hubs_certificate(hub: Hub, port: int,
                                                                tmp_path: Path) -> None:
    ca, cert, key = make_tls_files(tmp_path)
    board = PullBoard("HLS-0001", f"https://127.0.0.1:{port}", token=TOKEN,
                      poll_interval=POLL, ca_file=str(ca))
    await board.start()
    try:
        device = await register(hub, config(port, tls_cert=str(cert), tls_key=str(key)))
        assert (await run(hub, device, type="show", text="TLS", content_id="ct-tls")).ok
        assert board.display.current.id == "ct-tls"
    finally:
        await board.stop()


async def test_plain_http_board_cannot_talk_to_a_tls_endpoint(hub: Hub, board: PullBoard,
                                                               port: int, tmp_path: Path) -> None:
    _, cert, key = make_tls_files(tmp_path)
    hub.settings.probe_timeout = 0.5
    with pytest.raises(DeviceUnreachable, match="has not polled"):
        await register(hub, config(port, tls_cert=str(cert), tls_key=str(key)))
    assert board.poll_failures > 0


async def test_commands_to_one_board_do_not_wait_for_another(rig, port):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    await board.inject(Fault.HANG)
    other = PullBoard("HLS-0002", f"http://127.0.0.1:{port}", token=TOKEN, poll_interval=POLL)
    await other.start()
    try:
        second = await register(hub, {**config(port), "serial": "HLS-0002"})
        hung = asyncio.create_task(run(hub, device, type="set_brightness", brightness=3))
        assert (await run(hub, second, type="set_brightness", brightness=4)).ok
        assert not hung.done()
        hung.cancel()
    finally:
        await other.stop()
