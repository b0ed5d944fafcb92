"""One bulletin, two kinds of device: speakers get audio, boards get text — over real sockets,
with the real content library (approval, text-to-speech) and both simulators."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import SAMPLE_AREAS
from tests.support.net import free_port
from tests.support.wait import eventually
from ttcs.core.config import Settings
from ttcs.core.content import ContentDraft
from ttcs.core.dispatch import DispatchSettings
from ttcs.core.http import start_http
from ttcs.core.hub import Hub
from ttcs.schemas import Broadcast, DeviceSpec, Targets, new_id
from ttcs.simulators.ledviet_board import LedVietBoard
from ttcs.simulators.native_speaker import NativeSpeaker

TEXT = "Thông báo: chiều nay 14 giờ họp dân tại nhà văn hoá thôn."


async def test_a_text_bulletin_is_spoken_by_speakers_and_shown_by_boards_of_its_commune(
        settings: Settings, amqtt_url: str, tmp_path: Path) -> None:
    policy = tmp_path / "open.yaml"
    policy.write_text("name: open\nby_type: {}\n")
    speaker = NativeSpeaker("MIX-SPK-1", amqtt_url)
    board = LedVietBoard("MIX-LED-1", token="mix-token")
    elsewhere = LedVietBoard("MIX-LED-2", token="mix-token")
    for sim in (speaker, board, elsewhere):
        await sim.start()
    hub = Hub(settings.model_copy(update={"mqtt_url": amqtt_url, "policy_file": policy,
                                          "api_port": free_port()}),
              dispatch=DispatchSettings(plan_interval=0.2))
    await hub.start()
    runner, _ = await start_http(hub)  # devices fetch the spoken bulletin from /media
    try:
        await hub.registry.import_areas(SAMPLE_AREAS, "test")
        for spec in (
                DeviceSpec(plugin="native", kind="ip_speaker", area_code="20101",
                           config={"serial": "MIX-SPK-1"}),
                DeviceSpec(plugin="ledviet", kind="led_board", area_code="20101",
                           config={"url": board.url, "token": "mix-token"}),
                DeviceSpec(plugin="ledviet", kind="led_board", area_code="19900",
                           config={"url": elsewhere.url, "token": "mix-token"})):
            await hub.supervise(await hub.registry.add_device(spec, "test"))
        library = hub.content
        await library.approvers.add("Chủ tịch UBND xã Phú Vinh", "commune", "20101", "test")
        item = await library.add(ContentDraft(
            title="Họp dân", kind="text", level="normal", source_level="commune",
            issuer="UBND xã Phú Vinh", area_code="20101", text=TEXT), "clerk")
        await library.submit(item.id, "clerk")
        await library.approve(item.id, "Chủ tịch UBND xã Phú Vinh", "chairman")
        assert hub.broadcasts is not None
        await hub.broadcasts.create(Broadcast(
            id=new_id("bc"), content_id=item.id, targets=Targets(areas=["20101"])),
            "clerk", owner_area="20101")

        play = await eventually(lambda: next((p for p in speaker.truth.plays
                                              if p.content_id == item.id), None), timeout=20)
        assert play.source is not None and "/media/" in play.source  # speech, as audio
        shown = await eventually(lambda: next((s for s in board.truth.shown
                                               if s["text"] == TEXT), None), timeout=20)
        assert shown["kind"] == "text"
        assert not any(s["text"] == TEXT for s in elsewhere.truth.shown)  # not its commune
    finally:
        await runner.cleanup()
        await hub.stop()
        for sim in (speaker, board, elsewhere):
            await sim.stop()
