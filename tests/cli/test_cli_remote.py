"""The CLI against a running hub (``--url``, token from a file) gives the same output and exit
codes as against the local store."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.core.content.conftest import wav_bytes
from tests.support.rig import SpeakerRig
from tests.support.wait import eventually
from ttcs.cli import main
from ttcs.core.config import Settings
from ttcs.core.content import ContentDraft
from ttcs.core.http import start_http
from ttcs.core.logging import configure
from ttcs.schemas import Connectivity, IssuingLevel
from ttcs.schemas.access import Role, UserSpec


@pytest.fixture
async def running(settings: Settings, amqtt_url: str, tmp_path: Path
                  ) -> AsyncIterator[tuple[SpeakerRig, str, Path]]:
    rig = await SpeakerRig.start(settings.model_copy(update={"api_port": 0}), amqtt_url)
    await rig.hub.accounts.add_user(UserSpec(name="ops", role=Role.OPERATOR, area_code="46"),
                                    "test")
    token_file = tmp_path / "token"
    token_file.write_text((await rig.hub.accounts.create_token("ops", "test")).token)
    runner, url = await start_http(rig.hub)
    yield rig, url, token_file
    await runner.cleanup()
    await rig.stop()


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        settings: Settings) -> Iterator[object]:
    monkeypatch.setenv("TTCS_HOME", str(settings.home))
    monkeypatch.setenv("TTCS_MQTT_URL", "")
    monkeypatch.delenv("TTCS_DATABASE_URL", raising=False)
    monkeypatch.delenv("TTCS_URL", raising=False)
    yield capsys
    configure(level="warning", stream=sys.__stderr__)


async def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(args))
    out, err = capsys.readouterr()
    return code, out, err


async def test_devices_list_and_command_over_the_api_match_the_local_store(
        running: tuple[SpeakerRig, str, Path], cli: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    rig, url, token_file = running
    sim, device = await rig.add("REMOTE-1", area="19900")
    # the hub writes statuses to the store in batches (once a second): the local CLI reads
    # the store, so wait until the online status is there
    async def stored_online() -> bool:
        status = await rig.hub.registry.get_status(device.id)
        return status.connectivity is Connectivity.ONLINE and status.volume is not None

    await eventually(stored_online)
    monkeypatch.setenv("TTCS_MQTT_URL", rig.broker_url)
    local = [await run(cli, "devices", "list"), await run(cli, "devices", "list", "--json"),
             await run(cli, "devices", "show", device.id),
             await run(cli, "devices", "command", "nope", '{"type": "stop"}')]
    monkeypatch.setenv("TTCS_TOKEN_FILE", str(token_file))
    remote = [await run(cli, "--url", url, "devices", "list"),
              await run(cli, "--url", url, "devices", "list", "--json"),
              await run(cli, "--url", url, "devices", "show", device.id),
              await run(cli, "--url", url, "devices", "command", "nope", '{"type": "stop"}')]
    assert remote == local
    assert device.id in local[0][1] and local[3][0] == 1
    assert local[3][2] == "error: no device 'nope' (see `ttcs devices list`)\n"

    code, out, err = await run(cli, "--url", url, "devices", "command", device.id,
                               '{"type": "set_volume", "volume": 33}')
    assert (code, out, err) == (0, "set_volume: done (ok)\n", "")
    assert sim.volume == 33
    entries = await rig.hub.store.audit.entries(action="device.command")
    assert entries[0].actor == "user:ops"


async def test_audit_verify_over_the_api_finds_an_edited_entry_like_the_local_one(
        running: tuple[SpeakerRig, str, Path], cli: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from sqlalchemy import update

    from ttcs.core.store.tables import AuditRow

    rig, url, _ = running
    await rig.hub.accounts.add_user(UserSpec(name="root-auditor", role=Role.AUDITOR), "test")
    token_file = tmp_path / "auditor-token"
    token_file.write_text((await rig.hub.accounts.create_token("root-auditor", "test")).token)
    monkeypatch.setenv("TTCS_TOKEN_FILE", str(token_file))
    results = []
    for _ in range(2):
        results.append((await run(cli, "audit", "verify"),
                        await run(cli, "--url", url, "audit", "verify")))
        async with rig.hub.store.sessions.begin() as s:
            await s.execute(update(AuditRow).where(AuditRow.seq == 2).values(actor="mallory"))
    (intact_local, intact_remote), (edited_local, edited_remote) = results
    assert intact_local == intact_remote and intact_local[0] == 0
    assert "hash chain verified" in intact_local[1]
    assert edited_local == edited_remote == (1, edited_local[1], "")
    assert "TAMPERED at entry 2" in edited_local[1]


async def test_broadcast_create_over_the_api_matches_the_local_store(
        running: tuple[SpeakerRig, str, Path], cli: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    rig, url, token_file = running
    _, device = await rig.add("REMOTE-2", area="19900")
    content = rig.hub.content
    await content.approvers.add("ubnd-hue", IssuingLevel.PROVINCE, "46", "test")
    item = await content.add(ContentDraft(title="Bão", issuer="UBND Huế", area_code="46",
                                          source_level="province", level="emergency"),
                             "test", data=wav_bytes(0.2))
    await content.submit(item.id, "test")
    await content.approve(item.id, "ubnd-hue", "test")
    args = ("broadcast", "create", "--content", item.id, "--device", device.id)
    local = await run(cli, *args)
    monkeypatch.setenv("TTCS_TOKEN_FILE", str(token_file))
    remote = await run(cli, "--url", url, *args)

    def anonymous(result: tuple[int, str, str]) -> tuple[int, str, str]:
        return result[0], re.sub(r"bc-[0-9a-f]+", "bc-ID", result[1]), result[2]

    assert anonymous(remote) == anonymous(local)
    assert local[1].startswith("broadcast bc-") and "emergency to 1 device(s)" in local[1]
    listed = await run(cli, "--url", url, "broadcast", "list", "--json")
    assert listed[0] == 0 and listed[1].count('"content_id"') == 2


async def test_the_api_says_no_in_the_same_one_line_way(
        running: tuple[SpeakerRig, str, Path], cli: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rig, url, _ = running
    _, device = await rig.add("REMOTE-3", area="20101")
    await rig.hub.accounts.add_user(UserSpec(name="ward-op", role=Role.OPERATOR,
                                             area_code="19900"), "test")
    token_file = tmp_path / "ward-token"
    token_file.write_text((await rig.hub.accounts.create_token("ward-op", "test")).token)
    monkeypatch.setenv("TTCS_TOKEN_FILE", str(token_file))
    code, out, err = await run(cli, "--url", url, "devices", "command", device.id,
                               '{"type": "set_volume", "volume": 1}')
    assert (code, out) == (1, "")
    assert err.startswith("error: 20101 is outside this account's area") and \
        err.count("\n") == 1
    code, _, err = await run(cli, "--url", url, "areas", "merge", "20101", "--into", "19900")
    assert code == 1 and "hub's machine only" in err
    monkeypatch.delenv("TTCS_TOKEN_FILE")
    code, _, err = await run(cli, "--url", url, "devices", "list")
    assert code == 1 and "TTCS_TOKEN_FILE" in err
