"""The API over HTTP: tokens and logins, rate limits, problems, pages, headers, the API page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr
from sqlalchemy import update

from tests.api.conftest import OWN, ApiRig, api_settings, make_users, seed
from ttcs.core.config import Rate
from ttcs.core.http import start_http
from ttcs.core.hub import Hub
from ttcs.core.store.tables import ApiTokenRow
from ttcs.schemas.access import Role, UserSpec
from ttcs.testing import make_tls_files

PASSWORD = "correct horse battery staple"


async def test_a_token_stops_working_when_revoked_expired_or_its_user_disabled(
        rig: ApiRig) -> None:
    accounts = rig.hub.accounts
    await accounts.add_user(UserSpec(name="temp", role=Role.AUDITOR, area_code=OWN), "test")
    issued = [await accounts.create_token("temp", "test") for _ in range(3)]
    for token in issued:
        status, _, _ = await rig.call("GET", "/api/v1/me", token=token.token)
        assert status == 200
    await accounts.revoke_token(issued[0].info.id, "test")
    async with rig.hub.store.sessions.begin() as s:
        await s.execute(update(ApiTokenRow).where(ApiTokenRow.id == issued[1].info.id)
                        .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    reasons = []
    for token in issued[:2]:
        status, body, headers = await rig.call("GET", "/api/v1/me", token=token.token)
        assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
        reasons.append(body["detail"])
    assert "revoked" in reasons[0] and "expired" in reasons[1]
    await accounts.set_disabled("temp", True, "test")
    status, body, _ = await rig.call("GET", "/api/v1/me", token=issued[2].token)
    assert status == 401 and "disabled" in body["detail"]
    wrong = issued[2].token[:-4] + "AAAA"
    status, _, _ = await rig.call("GET", "/api/v1/me", token=wrong)
    assert status == 401


async def test_tokens_are_stored_only_as_hashes(rig: ApiRig) -> None:
    issued = await rig.hub.accounts.create_token("operator", "test")
    # ttcs_<id>_<secret>: the secret itself may hold "_" (URL-safe base64)
    secret = issued.token.split("_", 2)[2]
    assert len(secret) == 43
    async with rig.hub.store.engine.connect() as conn:
        rows = (await conn.exec_driver_sql("SELECT * FROM api_tokens")).all()
    assert rows and not any(secret in str(row) for row in rows)
    assert not any(issued.token in str(r.detail) for r in await rig.hub.store.audit.entries())


async def test_login_gives_a_session_token_and_every_failure_is_audited(rig: ApiRig) -> None:
    await rig.hub.accounts.set_password("operator", SecretStr(PASSWORD), "test")
    status, body, _ = await rig.call("POST", "/api/v1/auth/login",
                                     json={"user": "operator", "password": "wrong password!"})
    assert status == 401 and body["detail"] == "wrong user name or password"
    status, body, _ = await rig.call("POST", "/api/v1/auth/login",
                                     json={"user": "nobody", "password": PASSWORD})
    assert status == 401 and body["detail"] == "wrong user name or password"
    status, issued, _ = await rig.call("POST", "/api/v1/auth/login",
                                       json={"user": "operator", "password": PASSWORD})
    assert status == 201 and issued["info"]["kind"] == "session"
    status, me, _ = await rig.call("GET", "/api/v1/me", token=issued["token"])
    assert (status, me["user"]["name"]) == (200, "operator")
    failed = [(r.target, r.outcome) for r in await rig.hub.store.audit.entries(
        action="auth.login")]
    assert ("operator", "denied") in failed and ("nobody", "denied") in failed
    assert not any(PASSWORD in str(r.detail) for r in await rig.hub.store.audit.entries())


async def test_logins_are_rate_limited_per_account_with_retry_after(
        tmp_path: Path, database_url: str) -> None:
    hub = Hub(api_settings(tmp_path, database_url,
                           login_per_account=Rate(count=3, seconds=600)))
    await hub.open()
    await seed(hub)
    await make_users(hub)
    await hub.accounts.set_password("operator", SecretStr(PASSWORD), "test")
    runner, url = await start_http(hub)
    try:
        async with aiohttp.ClientSession() as http:
            statuses = []
            for _ in range(5):
                async with http.post(f"{url}/api/v1/auth/login", json={
                        "user": "operator", "password": "not the password"}) as r:
                    statuses.append(r.status)
                    retry = r.headers.get("Retry-After")
            assert statuses == [401, 401, 401, 429, 429]
            assert retry is not None and int(retry) >= 1
            async with http.post(f"{url}/api/v1/auth/login", json={
                    "user": "operator", "password": PASSWORD}) as r:
                assert r.status == 429  # even the right password waits its turn
        refused = [r.detail.get("reason") for r in await hub.store.audit.entries(
            action="auth.login")]
        assert refused.count("rate limited") == 1  # a run of refusals is recorded once
    finally:
        await runner.cleanup()
        await hub.stop()


async def test_broadcast_creation_is_rate_limited(tmp_path: Path) -> None:
    hub = Hub(api_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'db'}",
                           broadcasts_per_account=Rate(count=2, seconds=600)))
    await hub.open()
    seeded = await seed(hub)
    tokens = await make_users(hub)
    runner, url = await start_http(hub)
    body = {"content_id": seeded.content["own"],
            "targets": {"devices": [seeded.devices["own"]]}}
    try:
        async with aiohttp.ClientSession(headers={
                "Authorization": f"Bearer {tokens['operator']}"}) as http:
            statuses = []
            for _ in range(3):
                async with http.post(f"{url}/api/v1/broadcasts", json=body) as r:
                    statuses.append(r.status)
                    retry = r.headers.get("Retry-After")
        assert statuses == [201, 201, 429]
        assert retry is not None
    finally:
        await runner.cleanup()
        await hub.stop()


async def test_bad_input_gets_a_problem_naming_the_field_never_a_traceback(
        rig: ApiRig) -> None:
    admin = rig.as_("root")
    status, body, headers = await admin.post("/devices", json={"plugin": "native",
                                                               "kind": "toaster"})
    assert status == 422 and headers["Content-Type"].startswith("application/problem+json")
    fields = {e["field"] for e in body["errors"]}
    assert {"kind", "area_code"} <= fields
    status, body, _ = await admin.post("/areas/merge", data=b"{not json")
    assert status == 400 and "not valid JSON" in body["detail"]
    status, body, _ = await admin.get("/devices/no-such-device")
    assert status == 404 and "no-such-device" in body["detail"]
    status, body, _ = await admin.get("/nowhere")
    assert status == 404 and body["status"] == 404
    status, body, _ = await admin.post(f"/devices/{rig.seeded.devices['own']}/commands",
                                       json={"type": "play", "stream_url": "http://x.example/"})
    assert status == 422 and "broadcast" in body["detail"]
    for problem in (body,):
        assert "Traceback" not in str(problem)


async def test_a_policy_breaking_broadcast_is_refused_naming_the_rules(rig: ApiRig) -> None:
    from tests.core.content.conftest import wav_bytes
    from ttcs.core.content import ContentDraft

    item = await rig.hub.content.add(ContentDraft(title="long", issuer="UBND", area_code=OWN,
                                                  level="normal"), "test",
                                     data=wav_bytes(1.0))
    await rig.hub.content.submit(item.id, "test")
    await rig.hub.content.approve(item.id, "chu-tich-thuan-an", "test")
    status, body, _ = await rig.as_("operator").post("/broadcasts", json={
        "content_id": item.id, "targets": {"areas": [OWN]}, "repeat": 100,
        "schedule": {"kind": "at", "at": "2030-01-05T02:00:00+07:00"}})
    assert status == 422, body
    assert body["type"].endswith("/policy-violation") and body["violations"]


async def test_listings_page_with_a_next_link(rig: ApiRig) -> None:
    admin = rig.as_("root")
    status, first, _ = await admin.get("/areas", params={"limit": 2})
    assert status == 200 and len(first["items"]) == 2 and first["next"]
    seen = [a["code"] for a in first["items"]]
    nxt = first["next"]
    while nxt:
        status, page, _ = await rig.call("GET", nxt, token=rig.tokens["root"])
        assert status == 200
        seen += [a["code"] for a in page["items"]]
        nxt = page["next"]
    status, everything, _ = await admin.get("/areas", params={"limit": 500})
    assert seen == [a["code"] for a in everything["items"]]
    assert everything["next"] is None


async def test_plugins_are_listed_in_pages_and_filtered_by_kind_and_state(rig: ApiRig
                                                                          ) -> None:
    admin = rig.as_("root")
    status, everything, _ = await admin.get("/plugins", params={"limit": 500})
    assert status == 200 and everything["next"] is None
    ids = [p["id"] for p in everything["items"]]
    assert ids == sorted(ids) and {"native", "zonetech", "ledviet"} <= set(ids)
    status, first, _ = await admin.get("/plugins", params={"limit": 2})
    assert [p["id"] for p in first["items"]] == ids[:2] and first["next"]
    status, rest, _ = await rig.call("GET", first["next"], token=rig.tokens["root"])
    assert [p["id"] for p in rest["items"]] == ids[2:4]
    status, boards, _ = await admin.get("/plugins", params={"kind": "led_board"})
    assert status == 200 and boards["items"]
    assert all("led_board" in p["kinds"] for p in boards["items"])
    assert "native" not in [p["id"] for p in boards["items"]]
    status, refused, _ = await admin.get("/plugins", params={"state": "refused"})
    assert (status, refused["items"]) == (200, [])  # every built-in plugin loads
    status, problem, _ = await admin.get("/plugins", params={"kind": "toaster"})
    assert status == 422 and "kind" in str(problem)


async def test_answers_carry_secure_headers_and_no_server_banner(rig: ApiRig) -> None:
    for path in ("/api/v1/openapi.json", "/healthz", "/api/v1/docs"):
        status, _, headers = await rig.call("GET", path)
        assert status == 200
        assert "Server" not in headers
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert "Strict-Transport-Security" not in headers  # plain HTTP


async def test_the_api_page_is_served_by_the_hub_with_nothing_from_elsewhere(
        rig: ApiRig) -> None:
    status, page, headers = await rig.call("GET", "/api/v1/docs")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets and all(a.startswith("/api/v1/") for a in assets)
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    for asset in [a for a in assets if a.startswith("/api/v1/docs/")]:
        status, text, _ = await rig.call("GET", asset)
        assert status == 200
        assert not re.search(r"https?://", text), asset
    status, _, _ = await rig.call("GET", "/api/v1/docs/../../secret.key")
    assert status == 404


async def test_the_api_is_served_over_tls_with_hsts(tmp_path: Path) -> None:
    import ssl

    ca, cert, key = make_tls_files(tmp_path)
    settings = api_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'db'}")
    settings = settings.model_copy(update={"tls_cert": str(cert),
                                           "tls_key": key.read_text()})
    hub = Hub(settings)
    await hub.open()
    runner, url = await start_http(hub)
    try:
        assert url.startswith("https://")
        context = ssl.create_default_context(cafile=str(ca))
        async with aiohttp.ClientSession() as http, http.get(
                f"{url}/api/v1/openapi.json", ssl=context) as r:
            assert r.status == 200
            assert r.headers["Strict-Transport-Security"].startswith("max-age=")
        with pytest.raises(aiohttp.ClientError):
            async with aiohttp.ClientSession() as http, http.get(
                    url.replace("https://", "http://") + "/healthz") as r:
                await r.read()
    finally:
        await runner.cleanup()
        await hub.stop()
    assert not list(settings.home.glob(".tls-*"))  # the PEM given as text left no file
