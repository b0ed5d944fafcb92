"""The board simulators on their own: screen rules, and the pull board as firmware."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from PIL import Image

from tests.support.wait import eventually
from ttcs.simulators.board_display import (
    LOCAL_TZ,
    BoardDisplay,
    BoardItem,
    BoardTruth,
    PowerSchedule,
)
from ttcs.simulators.pull_board import PullBoard


def display() -> BoardDisplay:
    return BoardDisplay(BoardTruth(), width=64, height=32, led=True, assets=lambda _: None)


async def test_items_rotate_in_playlist_order_each_for_its_duration() -> None:
    screen = display()
    screen.start()
    try:
        screen.set_playlist([BoardItem("a", text="A", duration=0.15),
                             BoardItem("b", text="B", duration=0.15)], 1)
        await eventually(lambda: [e["item_id"] for e in screen.truth.shown][:4] == [
            "a", "b", "a", "b"])
        first = screen.truth.shown[0]
        assert first["outcome"] == "rotated"
        assert 0.1 < (first["until"] - first["at"]).total_seconds() < 0.5
    finally:
        await screen.stop()


async def test_emergency_items_alone_are_shown_while_valid() -> None:
    screen = display()
    screen.start()
    try:
        until = datetime.now(UTC) + timedelta(seconds=0.3)
        screen.set_playlist([BoardItem("n", text="normal", duration=0.1),
                             BoardItem("e", text="khẩn", duration=0.1, priority=2,
                                       valid_until=until)], 1)
        assert screen.current is not None and screen.current.id == "e"
        await eventually(lambda: screen.current is not None and screen.current.id == "n")
        assert {e["item_id"] for e in screen.truth.shown if e["at"] < until} == {"e"}
    finally:
        await screen.stop()


@pytest.mark.parametrize(("on", "off", "hour", "lit"), [
    ("05:30", "22:00", 12, True), ("05:30", "22:00", 23, False), ("05:30", "22:00", 5, False),
    ("18:00", "06:00", 23, True), ("18:00", "06:00", 3, True), ("18:00", "06:00", 12, False),
])
def test_power_schedule_in_local_time_including_over_midnight(on: str, off: str, hour: int,
                                                               lit: bool) -> None:
    moment = datetime(2026, 3, 2, hour, 0, tzinfo=LOCAL_TZ)
    assert PowerSchedule.parse(on, off).lit_at(moment.astimezone(UTC)) is lit


def test_a_dark_screen_renders_black_and_says_why() -> None:
    screen = display()
    screen.set_playlist([BoardItem("x", text="X")], 1)
    screen.switch(False)
    image = Image.open(io.BytesIO(screen.render_png()))
    assert image.getextrema() == ((0, 0), (0, 0), (0, 0))
    assert image.text["ttcs:state"] == "switched_off"  # type: ignore[attr-defined]


# -- the pull board as firmware, against a hub played by the test -----------------------------


class FakeHub:
    """Answers every poll with the same command until it has seen its result twice."""

    def __init__(self) -> None:
        self.polls: list[dict[str, Any]] = []
        self.command = {"id": "cmd-1", "idempotency_key": "k-1", "type": "set_brightness",
                        "brightness": 20}

    async def poll(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.polls.append(body)
        results = [r for p in self.polls for r in p["results"]]
        commands = [self.command] if len(results) < 2 else []
        return web.json_response({"server_time": datetime.now(UTC).isoformat(),
                                  "poll_interval": 0.05, "commands": commands})


@pytest.fixture
async def fake_hub() -> AsyncIterator[tuple[FakeHub, str]]:
    fake = FakeHub()
    app = web.Application()
    app.router.add_post("/pullboard/v1/boards/{serial}/poll", fake.poll)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield fake, f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_pull_board_acts_once_on_a_command_sent_again_and_repeats_its_result(fake_hub):  # type: ignore[no-untyped-def]
    fake, url = fake_hub
    board = PullBoard("HLS-FW", url, token="t", poll_interval=0.05)
    await board.start()
    try:
        await eventually(lambda: len([r for p in fake.polls for r in p["results"]]) >= 2)
    finally:
        await board.stop()
    assert [c["level"] for c in board.truth.brightness_changes] == [20]
    assert [c["repeat"] for c in board.truth.commands][:2] == [False, True]
    results = [r for p in fake.polls for r in p["results"]]
    assert results[0] == results[1] and results[0]["status"] == "done"
    assert json.loads(json.dumps(fake.polls[0]))["serial"] == "HLS-FW"


async def test_each_simulator_says_how_to_register_it_in_a_way_its_plugin_accepts() -> None:
    from ttcs.core.plugins import default_manager
    from ttcs.schemas import DeviceKind
    from ttcs.simulators.ledviet_board import LedVietBoard
    from ttcs.simulators.native_speaker import NativeSpeaker
    from ttcs.simulators.pull_board import PullBoard

    manager = default_manager()
    sims = [NativeSpeaker("REG-1", "mqtt://127.0.0.1:1"),
            LedVietBoard("REG-2", token="t0ken"),
            PullBoard("REG-3", "http://127.0.0.1:18081", token="t0ken")]
    for sim in sims:
        registration = sim.registration()
        driver = manager.driver_class(registration["plugin"], DeviceKind(registration["kind"]))
        driver.config_model.model_validate(registration["config"])  # raises if not accepted
