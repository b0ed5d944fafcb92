"""The issue's "done when": an operator of commune A commands A's speaker (200) and is refused
B's (403); the audit log holds both attempts; an edited entry is found by `ttcs audit verify`
and by the API."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import update

from tests.support.rig import SpeakerRig
from ttcs.cli import main
from ttcs.core.config import Settings
from ttcs.core.http import start_http
from ttcs.core.logging import configure
from ttcs.core.store.tables import AuditRow
from ttcs.schemas.access import Role, UserSpec

COMMUNE_A, COMMUNE_B = "19900", "20101"


@pytest.fixture
async def speakers(settings: Settings, amqtt_url: str) -> AsyncIterator[SpeakerRig]:
    rig = await SpeakerRig.start(settings.model_copy(update={"api_port": 0}), amqtt_url)
    yield rig
    await rig.stop()


async def test_an_operator_commands_its_own_commune_and_is_refused_another_and_both_are_audited(
        speakers: SpeakerRig, settings: Settings, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    hub = speakers.hub
    sim_a, speaker_a = await speakers.add("SCOPE-A", area=COMMUNE_A)
    _, speaker_b = await speakers.add("SCOPE-B", area=COMMUNE_B)
    await hub.accounts.add_user(UserSpec(name="op-a", role=Role.OPERATOR,
                                         area_code=COMMUNE_A), "test")
    token = (await hub.accounts.create_token("op-a", "test")).token
    runner, url = await start_http(hub)
    headers = {"Authorization": f"Bearer {token}"}
    command = {"type": "set_volume", "volume": 35}
    try:
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.post(f"{url}/api/v1/devices/{speaker_a.id}/commands",
                                 json=command) as own:
                assert own.status == 200, await own.text()
                assert (await own.json())["status"] == "done"
            async with http.post(f"{url}/api/v1/devices/{speaker_b.id}/commands",
                                 json=command) as foreign:
                assert foreign.status == 403
                assert foreign.content_type == "application/problem+json"
                problem = await foreign.json()
                assert COMMUNE_B in problem["detail"] and COMMUNE_A in problem["detail"]
        assert sim_a.volume == 35

        entries = [(r.actor, r.action, r.target, r.outcome)
                   for r in await hub.store.audit.entries(actor="user:op-a")]
        assert ("user:op-a", "device.command", speaker_a.id, "ok") in entries
        assert ("user:op-a", "device.command", f"/api/v1/devices/{speaker_b.id}/commands",
                "denied") in entries

        # someone with database access rewrites the refusal as a success
        async with hub.store.sessions.begin() as s:
            await s.execute(update(AuditRow).where(AuditRow.actor == "user:op-a",
                                                   AuditRow.outcome == "denied")
                            .values(outcome="ok"))
        await hub.accounts.add_user(UserSpec(name="auditor", role=Role.AUDITOR), "test")
        auditor = (await hub.accounts.create_token("auditor", "test")).token
        async with aiohttp.ClientSession() as http, http.get(
                f"{url}/api/v1/audit/verify",
                headers={"Authorization": f"Bearer {auditor}"}) as verify:
            result = await verify.json()
        assert verify.status == 200
        assert result["ok"] is False and "altered" in result["reason"]
    finally:
        await runner.cleanup()

    monkeypatch.setenv("TTCS_HOME", str(hub.settings.home))
    monkeypatch.delenv("TTCS_DATABASE_URL", raising=False)
    try:
        code = await asyncio.to_thread(main, ["audit", "verify"])
        out = capsys.readouterr().out
    finally:
        configure(level="warning", stream=sys.__stderr__)
    assert code == 1
    assert "TAMPERED" in out


async def test_the_refusal_names_what_to_do_and_changes_nothing(
        speakers: SpeakerRig, tmp_path: Path) -> None:
    hub = speakers.hub
    sim_b, speaker_b = await speakers.add("SCOPE-B2", area=COMMUNE_B)
    await hub.accounts.add_user(UserSpec(name="op-a2", role=Role.OPERATOR,
                                         area_code=COMMUNE_A), "test")
    token = (await hub.accounts.create_token("op-a2", "test")).token
    before = sim_b.volume
    runner, url = await start_http(hub)
    try:
        async with aiohttp.ClientSession() as http, http.post(
                f"{url}/api/v1/devices/{speaker_b.id}/commands",
                json={"type": "set_volume", "volume": 5},
                headers={"Authorization": f"Bearer {token}"}) as refused:
            assert refused.status == 403
    finally:
        await runner.cleanup()
    assert sim_b.volume == before
