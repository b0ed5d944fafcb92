"""The LEDViet plugin against the LEDViet board simulator, over real HTTP sockets."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.e2e.boards import at, brightest, green, has_colour, picture, run, shown_ids
from tests.support.media import png_image
from tests.support.wait import eventually
from ttcs.core.errors import (
    AuthFailed,
    DeviceTimeout,
    DeviceUnreachable,
    ProtocolError,
)
from ttcs.core.hub import Hub
from ttcs.plugins.ledviet.driver import LedVietBoardDriver
from ttcs.schemas import Activity, CommandStatus, Connectivity, DeviceSpec, PowerSource
from ttcs.simulators.base import Fault
from ttcs.simulators.board_display import LOCAL_TZ
from ttcs.simulators.ledviet_board import LedVietBoard

TOKEN = "lv-test-token"


@pytest.fixture
async def board() -> AsyncIterator[LedVietBoard]:
    b = LedVietBoard("LV-0001", token=TOKEN, mac="02:4C:56:00:00:01")
    await b.start()
    yield b
    await b.stop()


async def register(hub: Hub, board: LedVietBoard, kind: str = "led_board",
                   **config: Any) -> Any:
    device = await hub.registry.add_device(DeviceSpec(
        plugin="ledviet", kind=kind, area_code="20101",
        config={"url": board.url, "token": TOKEN, "timeout": 1.0, **config}), "test")
    await hub.supervise(device)
    return device


@pytest.fixture
async def rig(hub: Hub, board: LedVietBoard, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(LedVietBoardDriver, "poll_interval", 0.2)
    return hub, board, await register(hub, board)


def online(hub: Hub, device: Any) -> bool:
    return hub.supervisors[device.id].connectivity is Connectivity.ONLINE


# -- registration and status -------------------------------------------------------------------


async def test_registration_keys_board_by_its_serial_and_reports_led_kind(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    assert (device.serial, device.vendor, device.model, device.firmware, device.mac) == (
        "LV-0001", "LEDViet", "LV-P10-OUT-320", "3.2.1", "02:4C:56:00:00:01")
    assert device.kind == "led_board"


async def test_lcd_board_cannot_be_registered_as_led_board(hub: Hub):  # type: ignore[no-untyped-def]
    lcd = LedVietBoard("LV-0100", token=TOKEN, display="lcd")
    await lcd.start()
    try:
        with pytest.raises(Exception, match="lcd_board, not a led_board"):
            await register(hub, lcd)
        device = await register(hub, lcd, kind="lcd_board")
        assert device.model == "LV-LCD55-FHD"
    finally:
        await lcd.stop()


async def test_polled_status_matches_the_board(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    sup = hub.supervisors[device.id]
    status = await eventually(lambda: sup.status if sup.status and online(hub, device) else None)
    assert status.brightness == board.display.brightness == 80
    assert status.temperature == board.temperature
    assert status.firmware == "3.2.1" and status.power_source is PowerSource.MAINS
    assert status.telemetry["storage_total_mb"] == 64.0
    assert status.telemetry["uptime_s"] >= 0
    assert status.activity is Activity.IDLE


# -- showing -------------------------------------------------------------------------------------


async def test_show_text_uploads_it_by_sha256_and_the_board_shows_it(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    text = "Thông báo: cắt điện từ 7h đến 11h ngày 25/11"
    result = await run(hub, device, type="show", text=text, content_id="ct-power-cut")
    assert result.status is CommandStatus.DONE
    assert hashlib.sha256(text.encode()).hexdigest() in board.assets
    assert board.display.current is not None and board.display.current.text == text
    status = await hub.read_status(device.id)
    assert status.current_item == "ct-power-cut" and status.activity is Activity.DISPLAYING
    assert status.telemetry["current_text"] == text


async def test_show_image_with_caption_is_drawn_on_the_screenshot(rig, media):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    image = png_image(80, 40, (0, 200, 0))
    ref = media.ref("flood.png", image)
    result = await run(hub, device, type="show", text="Lũ lụt", media=ref, content_id="ct-img")
    assert result.status is CommandStatus.DONE
    assert board.assets[ref["sha256"]][0] == image
    shot = picture(await run(hub, device, type="screenshot"))
    assert shot.size == (320, 160)
    assert shot.text["ttcs:item"] == "ct-img" and shot.text["ttcs:kind"] == "image"
    assert shot.text["ttcs:text"] == "Lũ lụt"
    assert has_colour(shot, green)


async def test_video_is_uploaded_and_shown_as_a_video_item(rig, media):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    clip = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8
    ref = media.ref("clip.mp4", clip, "video/mp4")
    result = await run(hub, device, type="show", media=ref, content_id="ct-video")
    assert result.status is CommandStatus.DONE
    assert board.assets[ref["sha256"]] == (clip, "video/mp4")
    shot = picture(await run(hub, device, type="screenshot"))
    assert shot.text["ttcs:kind"] == "video" and brightest(shot) > 0


async def test_media_that_does_not_match_its_sha256_is_refused_and_never_uploaded(rig, media):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    ref = media.ref("swapped.png", png_image(colour=(255, 0, 0)), claimed=png_image())
    result = await run(hub, device, type="show", media=ref)
    assert result.status is CommandStatus.REJECTED and result.code == "checksum_mismatch"
    assert board.assets == {} and board.truth.shown == []


async def test_screenshot_carries_png_and_current_item(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    await run(hub, device, type="show", text="Họp tổ dân phố 19h", content_id="ct-meeting")
    result = await run(hub, device, type="screenshot")
    assert result.data["current_item"] == "ct-meeting"
    assert result.data["text"] == "Họp tổ dân phố 19h"
    shot = picture(result)
    assert (result.data["width"], result.data["height"]) == shot.size
    assert shot.text["ttcs:state"] == "showing" and brightest(shot) > 100


async def test_set_brightness_is_recorded_and_dims_the_screen(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    await run(hub, device, type="show", text="Sáng / tối", content_id="ct-b")
    bright = brightest(picture(await run(hub, device, type="screenshot")))
    result = await run(hub, device, type="set_brightness", brightness=25)
    assert result.status is CommandStatus.DONE
    assert [c["level"] for c in board.truth.brightness_changes] == [25]
    dim = brightest(picture(await run(hub, device, type="screenshot")))
    assert dim < bright * 0.4
    assert (await hub.read_status(device.id)).brightness == 25


async def test_item_shows_only_inside_its_validity_window(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    await run(hub, device, type="show", text="đã hết hạn", content_id="ct-past",
              valid_from=at(-7200), valid_until=at(-3600))
    await run(hub, device, type="show", text="ngày mai", content_id="ct-future",
              valid_from=at(3600))
    assert board.truth.shown == []
    assert {(s["item_id"], s["reason"]) for s in board.truth.skipped} == {
        ("ct-past", "expired"), ("ct-future", "not_yet_valid")}
    shot = picture(await run(hub, device, type="screenshot"))
    assert shot.text["ttcs:state"] == "blank" and brightest(shot) == 0


async def test_item_appears_when_its_window_opens_and_goes_when_it_closes(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    await run(hub, device, type="show", text="sắp tới", content_id="ct-soon",
              valid_from=at(0.6), valid_until=at(1.4))
    assert board.display.current is None
    await eventually(lambda: board.display.current is not None)
    await eventually(lambda: board.display.current is None)
    [entry] = board.truth.shown
    assert entry["item_id"] == "ct-soon" and entry["outcome"] == "ended"
    assert 0.5 < (entry["until"] - entry["at"]).total_seconds() < 1.5


async def test_show_for_seconds_then_the_previous_item_comes_back(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    await run(hub, device, type="show", text="thường", content_id="ct-normal")
    await run(hub, device, type="show", text="30 giây", content_id="ct-short", seconds=0.5)
    assert board.display.current.id == "ct-short"
    await eventually(lambda: board.display.current and board.display.current.id == "ct-normal")
    assert shown_ids(board.truth) == ["ct-normal", "ct-short", "ct-normal"]


async def test_emergency_preempts_the_rotation_which_resumes_after_it(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    await run(hub, device, type="show", text="một", content_id="ct-1")
    await run(hub, device, type="show", text="BÃO SỐ 9", content_id="ct-storm",
              level="emergency", seconds=0.6)
    assert board.display.current.id == "ct-storm"
    await eventually(lambda: board.display.current and board.display.current.id == "ct-1")
    assert "ct-storm" not in [i.id for i in board.display.items]  # expired, dropped


async def test_clear_leaves_the_screen_blank(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    await run(hub, device, type="show", text="xoá tôi", content_id="ct-x")
    assert (await run(hub, device, type="clear")).status is CommandStatus.DONE
    assert board.display.items == [] and board.display.current is None
    assert board.truth.shown[-1]["outcome"] == "ended"


async def test_power_off_darkens_the_screen_and_status_says_off(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    await run(hub, device, type="show", text="tắt", content_id="ct-off")
    await run(hub, device, type="power", on=False)
    assert brightest(picture(await run(hub, device, type="screenshot"))) == 0
    assert (await hub.read_status(device.id)).activity is Activity.OFF
    await run(hub, device, type="power", on=True)
    assert board.display.current.id == "ct-off"
    assert [c["on"] for c in board.truth.power_changes] == [False, True]


async def test_power_schedule_from_config_is_applied_and_respected(hub, board, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(LedVietBoardDriver, "poll_interval", 0.2)
    local = datetime.now(LOCAL_TZ)
    # a schedule whose "on" hours are anywhere but now: the board must be dark
    on, off = ((local + timedelta(hours=h)).strftime("%H:%M") for h in (2, 3))
    device = await register(hub, board, power_on=on, power_off=off)
    await eventually(lambda: board.display.schedule is not None)
    assert board.truth.power_schedules[-1]["schedule"] == {"on": on, "off": off}
    await run(hub, device, type="show", text="đêm", content_id="ct-night")
    status = await hub.read_status(device.id)
    assert status.activity is Activity.OFF and status.telemetry["dark_reason"] == "schedule_off"
    assert status.telemetry["power_schedule"] == f"{on}-{off}"


# -- idempotency ---------------------------------------------------------------------------------


async def test_repeated_idempotency_key_acts_once(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    for _ in range(2):
        result = await run(hub, device, type="set_brightness", brightness=33,
                           idempotency_key="k-bright")
        assert result.ok
    assert [c["level"] for c in board.truth.brightness_changes] == [33]


async def test_a_second_driver_repeating_a_key_is_deduplicated_by_the_board(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    from ttcs.schemas import parse_command

    command = {"type": "set_brightness", "brightness": 41, "idempotency_key": "k-twice"}
    await run(hub, device, **command)
    other = hub.make_driver(device)  # as the CLI would: a fresh driver, no memory of the key
    await other.execute(parse_command(command))
    assert [c["level"] for c in board.truth.brightness_changes] == [41]


# -- faults --------------------------------------------------------------------------------------


async def test_offline_board_is_unreachable_then_comes_back(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    await eventually(lambda: online(hub, device))
    await board.inject(Fault.OFFLINE)
    with pytest.raises(DeviceUnreachable):
        await run(hub, device, type="set_brightness", brightness=10)
    await eventually(lambda: hub.supervisors[device.id].connectivity is Connectivity.OFFLINE)
    await board.clear(Fault.OFFLINE)
    await eventually(lambda: online(hub, device))


async def test_slow_board_times_out_within_the_device_timeout(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    await board.inject(Fault.SLOW, delay=2.0)
    with pytest.raises(DeviceTimeout):
        await run(hub, device, type="set_brightness", brightness=10)
    await board.clear(Fault.SLOW)
    assert (await run(hub, device, type="set_brightness", brightness=11)).ok


async def test_garbage_answers_are_protocol_errors(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    await board.inject(Fault.GARBAGE)
    with pytest.raises(ProtocolError):
        await hub.read_status(device.id)
    with pytest.raises(ProtocolError):
        await run(hub, device, type="screenshot")
    await eventually(lambda: hub.supervisors[device.id].connectivity in (
        Connectivity.DEGRADED, Connectivity.OFFLINE))
    await board.clear(Fault.GARBAGE)
    await eventually(lambda: online(hub, device))


async def test_dropped_connection_costs_at_most_one_request(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    hub.poller.remove(device.id)  # keep the poller from taking the one dropped request
    await board.inject(Fault.DROP_CONNECTION)
    # the HTTP client may retry on a fresh connection by itself; if not, the request fails
    with contextlib.suppress(DeviceUnreachable):
        await hub.read_status(device.id)
    assert board.dropped == 1
    assert (await hub.read_status(device.id)).firmware == "3.2.1"


async def test_power_loss_goes_dark_offline_and_back_with_playlist_kept(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    await run(hub, device, type="show", text="giữ lại", content_id="ct-keep")
    boot = board.boot_id
    await board.inject(Fault.POWER_LOSS)
    assert board.truth.shown[-1]["outcome"] == "power_lost"
    await eventually(lambda: hub.supervisors[device.id].connectivity is Connectivity.OFFLINE)
    await board.clear(Fault.POWER_LOSS)
    await eventually(lambda: online(hub, device))
    assert board.boot_id != boot and board.display.current.id == "ct-keep"


async def test_battery_power_shows_in_status_and_caps_brightness(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    await board.inject(Fault.POWER_LOSS_BATTERY)
    status = await hub.read_status(device.id)
    assert status.power_source is PowerSource.BATTERY and "on_battery" in status.faults
    assert status.brightness == 30
    await board.clear(Fault.POWER_LOSS_BATTERY)
    assert (await hub.read_status(device.id)).brightness == 80


async def test_reboot_with_new_firmware_updates_the_registry(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    await board.inject(Fault.REBOOT, firmware="3.3.0", seconds=0.2)

    async def stored() -> bool:
        return (await hub.registry.get_device(device.id)).firmware == "3.3.0"

    await eventually(stored)
    assert (await hub.registry.get_device(device.id)).serial == "LV-0001"


async def test_reset_token_is_auth_failure_and_offline_at_once(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    await eventually(lambda: online(hub, device))
    await board.inject(Fault.WRONG_CREDENTIALS)
    with pytest.raises(AuthFailed):
        await hub.read_status(device.id)
    await eventually(lambda: hub.supervisors[device.id].connectivity is Connectivity.OFFLINE)
    await board.clear(Fault.WRONG_CREDENTIALS)
    await eventually(lambda: online(hub, device))


async def test_hung_board_times_out_without_delaying_another_board(rig):  # type: ignore[no-untyped-def]
    hub, board, device = rig
    other_board = LedVietBoard("LV-0002", token=TOKEN)
    await other_board.start()
    try:
        other = await register(hub, other_board)
        await board.inject(Fault.HANG)
        hung = asyncio.create_task(run(hub, device, type="set_brightness", brightness=5))
        assert (await run(hub, other, type="set_brightness", brightness=6)).ok
        assert not hung.done()
        with pytest.raises(DeviceTimeout):
            await hung
        assert board.display.brightness != 5
    finally:
        await board.clear(Fault.HANG)
        await other_board.stop()
