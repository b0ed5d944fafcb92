"""Third-party HTTP clients against the board protocols: `curl` talks to the LEDViet simulator
as an integrator would, and to the hub's device endpoint as pull-board firmware would."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.support.net import free_port
from tests.support.wait import eventually
from ttcs.core.hub import Hub
from ttcs.schemas import DeviceInfo, DeviceSpec, parse_command
from ttcs.simulators.ledviet_board import LedVietBoard

pytestmark = pytest.mark.skipif(shutil.which("curl") is None,
                                reason="curl is not installed (make test installs it)")

TOKEN = "curl-token"


async def curl(*args: str) -> tuple[int, bytes]:
    """Run curl; returns (HTTP status, body). ``-w`` appends the status on its own line."""
    proc = await asyncio.create_subprocess_exec(
        "curl", "-sS", "--max-time", "10", "-w", "\n%{http_code}", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    body, _, code = out.rpartition(b"\n")
    return int(code), body


@pytest.fixture
async def board() -> AsyncIterator[LedVietBoard]:
    b = LedVietBoard("LV-CURL", token=TOKEN)
    await b.start()
    yield b
    await b.stop()


async def test_curl_reads_status_with_the_token_and_is_refused_without(board: LedVietBoard
                                                                        ) -> None:
    status, body = await curl("-H", f"Authorization: Bearer {TOKEN}",
                              f"{board.url}/api/v2/status")
    assert status == 200 and json.loads(body)["serial"] == "LV-CURL"
    status, body = await curl(f"{board.url}/api/v2/status")
    assert status == 401 and json.loads(body)["error"] == "invalid_token"


async def test_curl_uploads_an_asset_builds_a_playlist_and_fetches_the_screenshot(
        board: LedVietBoard, tmp_path: Path) -> None:
    auth = ["-H", f"Authorization: Bearer {TOKEN}"]
    text = "Chào mừng ngày Nhà giáo Việt Nam 20/11".encode()
    sha = hashlib.sha256(text).hexdigest()
    (tmp_path / "text.txt").write_bytes(text)
    status, _ = await curl(*auth, "-X", "PUT", "-H", "Content-Type: text/plain; charset=utf-8",
                           "--data-binary", f"@{tmp_path / 'text.txt'}",
                           f"{board.url}/api/v2/assets/{sha}")
    assert status == 201
    status, _ = await curl(*auth, "-X", "PUT", "--data-binary", "tampered",
                           f"{board.url}/api/v2/assets/{sha}")
    assert status == 422
    playlist = {"items": [{"id": "curl-1", "text_asset": sha, "duration": 30}]}
    status, body = await curl(*auth, "-X", "PUT", "-H", "Content-Type: application/json",
                              "-d", json.dumps(playlist), f"{board.url}/api/v2/playlist")
    assert status == 200 and json.loads(body)["version"] == 1
    status, _ = await curl(*auth, "-o", str(tmp_path / "screen.png"),
                           f"{board.url}/api/v2/screenshot")
    image = Image.open(io.BytesIO((tmp_path / "screen.png").read_bytes()))
    assert status == 200 and image.format == "PNG"
    assert image.text["ttcs:item"] == "curl-1"  # type: ignore[attr-defined]
    assert image.text["ttcs:text"] == text.decode()  # type: ignore[attr-defined]


@pytest.fixture
async def pull(hub: Hub) -> tuple[Hub, Any, str]:
    """A registered pull board (identity given, as after an earlier probe) and its poll URL."""
    port = free_port()
    info = DeviceInfo(serial="HLS-CURL", vendor="HaLong Signage", model="HLS-4G-LCD43",
                      firmware="2.4.0", kind="lcd_board")
    device = await hub.registry.add_device(DeviceSpec(
        plugin="pullboard", kind="lcd_board", area_code="19900",
        config={"serial": "HLS-CURL", "token": TOKEN, "listen_host": "127.0.0.1",
                "listen_port": port, "poll_interval": 1}), "test", info=info)
    await hub.supervise(device)
    url = f"http://127.0.0.1:{port}/pullboard/v1/boards/HLS-CURL/poll"
    await eventually(lambda: hub.supervisors[device.id].driver._session is not None)  # type: ignore[union-attr]
    return hub, device, url


def heartbeat(**extra: Any) -> str:
    return json.dumps({"serial": "HLS-CURL", "model": "HLS-4G-LCD43", "firmware": "2.4.0",
                       "kind": "lcd_board", "boot_id": "b1", "brightness": 70, **extra})


async def test_curl_as_a_board_polls_gets_a_queued_command_and_reports_its_result(pull):  # type: ignore[no-untyped-def]
    hub, device, url = pull
    post = ["-X", "POST", "-H", "Content-Type: application/json"]
    auth = ["-H", f"Authorization: Bearer {TOKEN}"]
    status, body = await curl(*post, *auth, "-d", heartbeat(), url)
    reply = json.loads(body)
    assert status == 200 and reply["send_playlist"] is True and reply["commands"] == []
    command = parse_command({"type": "set_brightness", "brightness": 35})
    waiting = asyncio.create_task(hub.execute(device.id, command))
    await eventually(lambda: hub.supervisors[device.id].driver.session.pending)  # type: ignore[union-attr]
    status, body = await curl(*post, *auth, "-d", heartbeat(), url)
    [sent] = json.loads(body)["commands"]
    assert sent == {"id": command.id, "idempotency_key": command.idempotency_key,
                    "type": "set_brightness", "brightness": 35, "on": None}
    result = {"command_id": command.id, "idempotency_key": command.idempotency_key,
              "status": "done", "data": {"brightness": 35}}
    status, body = await curl(*post, *auth, "-d", heartbeat(brightness=35, results=[result]),
                              url)
    assert status == 200 and json.loads(body)["commands"] == []
    assert (await waiting).data == {"brightness": 35}


async def test_curl_with_a_wrong_token_garbage_or_unknown_serial_is_refused(pull):  # type: ignore[no-untyped-def]
    hub, device, url = pull
    post = ["-X", "POST", "-H", "Content-Type: application/json"]
    status, body = await curl(*post, "-H", "Authorization: Bearer nope", "-d", heartbeat(), url)
    assert status == 401 and json.loads(body)["error"] == "invalid_token"
    status, body = await curl(*post, "-H", f"Authorization: Bearer {TOKEN}", "-d", "{oops", url)
    assert status == 400 and json.loads(body)["error"] == "bad_heartbeat"
    status, _ = await curl(*post, "-H", f"Authorization: Bearer {TOKEN}", "-d", heartbeat(),
                           url.replace("HLS-CURL", "HLS-NOPE"))
    assert status == 404
