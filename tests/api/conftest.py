"""A hub (store opened, no devices supervised) serving the API on a free port, seeded with one
of everything in three places: an "own" ward (19900), a "child" residential group below it
(19900-01) and a "foreign" commune (20101) — and one user per role scoped to the ward."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.conftest import SAMPLE_AREAS
from tests.core.content.conftest import wav_bytes
from ttcs.core.config import ApiSettings, Rate, Settings
from ttcs.core.content import ContentDraft
from ttcs.core.http import start_http
from ttcs.core.hub import Hub
from ttcs.schemas import (
    Area,
    AreaType,
    Broadcast,
    DeviceInfo,
    DeviceSpec,
    Group,
    IssuingLevel,
    Targets,
    new_id,
)
from ttcs.schemas.access import Role, UserSpec

OWN, CHILD, FOREIGN = "19900", "19900-01", "20101"
PLACES = {"own": OWN, "child": CHILD, "foreign": FOREIGN}
#: spare villages per place, for the cases that merge areas
MERGE_AREAS = [Area(code=f"{code}-m{n}", name=f"merge {code} {n}", type=AreaType.VILLAGE,
                    parent_code=code) for code in PLACES.values() for n in (1, 2)]
APPROVER = "chu-tich-thuan-an"


@dataclass
class Seeded:
    """Ids of what was made in each place (by place name)."""

    devices: dict[str, str] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)
    content: dict[str, str] = field(default_factory=dict)
    broadcasts: dict[str, str] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # token ids of those users
    webhooks: dict[str, str] = field(default_factory=dict)


@dataclass
class ApiRig:
    hub: Hub
    url: str
    runner: web.AppRunner
    session: aiohttp.ClientSession
    tokens: dict[str, str]  # account name -> bearer token
    seeded: Seeded

    async def call(self, method: str, path: str, *, token: str | None = None,
                   json: Any = None, data: bytes | None = None,
                   params: dict[str, Any] | None = None) -> tuple[int, Any, dict[str, str]]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.session.request(method, self.url + path, json=json, data=data,
                                        params=params, headers=headers) as response:
            text = await response.text()
            try:
                import json as json_module

                body: Any = json_module.loads(text) if text else None
            except ValueError:
                body = text
            return response.status, body, dict(response.headers)

    def as_(self, account: str) -> Any:
        """``await rig.as_("operator").get("/devices")``-style helpers."""
        return _As(self, self.tokens[account])


@dataclass
class _As:
    rig: ApiRig
    token: str

    async def get(self, path: str, **kw: Any) -> tuple[int, Any, dict[str, str]]:
        return await self.rig.call("GET", "/api/v1" + path, token=self.token, **kw)

    async def post(self, path: str, **kw: Any) -> tuple[int, Any, dict[str, str]]:
        return await self.rig.call("POST", "/api/v1" + path, token=self.token, **kw)

    async def patch(self, path: str, **kw: Any) -> tuple[int, Any, dict[str, str]]:
        return await self.rig.call("PATCH", "/api/v1" + path, token=self.token, **kw)

    async def delete(self, path: str, **kw: Any) -> tuple[int, Any, dict[str, str]]:
        return await self.rig.call("DELETE", "/api/v1" + path, token=self.token, **kw)


def api_settings(tmp_path: Path, database_url: str, **api: Any) -> Settings:
    limits = {"login_per_account": Rate(count=1000, seconds=60),
              "login_per_address": Rate(count=1000, seconds=60),
              "broadcasts_per_account": Rate(count=1000, seconds=60),
              "broadcasts_per_address": Rate(count=1000, seconds=60)} | api
    return Settings(home=tmp_path / "var", database_url=database_url, api_port=0,
                    api_host="127.0.0.1", probe_timeout=0.5, command_timeout=0.5,
                    mqtt_url="mqtt://127.0.0.1:9", api=ApiSettings(**limits))


async def seed(hub: Hub) -> Seeded:
    registry, content, accounts = hub.registry, hub.content, hub.accounts
    await registry.import_areas([*SAMPLE_AREAS, *MERGE_AREAS], "test")
    await content.approvers.add(APPROVER, IssuingLevel.COMMUNE, OWN, "test")
    await content.approvers.add("chu-tich-phu-vinh", IssuingLevel.COMMUNE, FOREIGN, "test")
    out = Seeded()
    for place, code in PLACES.items():
        serial = f"SPK-{place}"
        device = await registry.add_device(
            DeviceSpec(plugin="native", kind="ip_speaker", area_code=code,
                       config={"serial": serial}), "test",
            info=DeviceInfo(serial=serial, vendor="TTCS", model="sim", kind="ip_speaker",
                            capabilities=["audio.play", "audio.volume"]))
        out.devices[place] = device.id
        group = await registry.create_group(Group(id=f"g-{place}", name=place, area_code=code),
                                            "test")
        out.groups[place] = group.id
        user = await accounts.add_user(UserSpec(name=f"user-{place}", role=Role.OPERATOR,
                                                area_code=code), "test")
        out.users[place] = user.name
        out.tokens[place] = (await accounts.create_token(user.name, "test")).info.id
    for place, code in (("own", OWN), ("foreign", FOREIGN)):  # content lives at communes only
        item = await content.add(ContentDraft(title=f"bulletin {place}", issuer="UBND",
                                              area_code=code, source_level="commune",
                                              level="emergency"), "test", data=wav_bytes())
        await content.submit(item.id, "test")
        approver = APPROVER if place == "own" else "chu-tich-phu-vinh"
        await content.approve(item.id, approver, "test")
        out.content[place] = item.id
    assert hub.broadcasts is not None
    for place, code in PLACES.items():
        item = out.content["own" if place != "foreign" else "foreign"]
        broadcast = Broadcast(id=new_id("bc"), content_id=item,
                              targets=Targets(devices=[out.devices[place]]))
        await hub.broadcasts.create(broadcast, "test", owner_area=code)
        out.broadcasts[place] = broadcast.id
    return out


async def make_users(hub: Hub) -> dict[str, str]:
    """One account per role scoped to the own ward, and a hub-wide administrator."""
    tokens: dict[str, str] = {}
    for role in Role:
        spec = UserSpec(name=role.value, role=role, area_code=OWN,
                        plugins=["native"] if role is Role.VENDOR else [],
                        approver=APPROVER if role is Role.APPROVER else None)
        await hub.accounts.add_user(spec, "test")
        tokens[role.value] = (await hub.accounts.create_token(role.value, "test")).token
    await hub.accounts.add_user(UserSpec(name="root", role=Role.ADMINISTRATOR), "test")
    tokens["root"] = (await hub.accounts.create_token("root", "test")).token
    await hub.accounts.add_user(UserSpec(name="root-auditor", role=Role.AUDITOR), "test")
    tokens["root-auditor"] = (await hub.accounts.create_token("root-auditor", "test")).token
    return tokens


@pytest.fixture
async def rig(tmp_path: Path, database_url: str) -> AsyncIterator[ApiRig]:
    hub = Hub(api_settings(tmp_path, database_url))
    await hub.open()
    seeded = await seed(hub)
    tokens = await make_users(hub)
    runner, url = await start_http(hub)
    async with aiohttp.ClientSession() as session:
        rig = ApiRig(hub, url, runner, session, tokens, seeded)
        for place, code in PLACES.items():
            status, made, _ = await rig.as_("root").post("/webhooks", json={
                "url": "http://127.0.0.1:9/hook", "area_code": code})
            assert status == 201, made
            seeded.webhooks[place] = made["webhook"]["id"]
        yield rig
    await runner.cleanup()
    await hub.stop()
