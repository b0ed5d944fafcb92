"""Devices fetch media over HTTP with expiring signed URLs, and verify what they got against
the public keys the hub publishes — over a real socket."""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from tests.core.content.conftest import APPROVERS, AREAS, approved, draft, wav_bytes
from tests.support.net import free_port
from ttcs.core.config import Settings
from ttcs.core.content import MediaUrlSigner
from ttcs.core.content.signing import keys_from_jwks, verify_token
from ttcs.core.errors import ContentAltered
from ttcs.core.http import start_http
from ttcs.core.hub import Hub


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[Hub]:
    """An opened hub whose HTTP server listens on a free port."""
    hub = Hub(settings.model_copy(update={"api_port": free_port()}))
    await hub.open()
    await hub.registry.import_areas(AREAS, "test")
    for name, (level, area) in APPROVERS.items():
        await hub.content.approvers.add(name, level, area, "test")
    runner, _ = await start_http(hub)
    yield hub
    await runner.cleanup()
    await hub.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def _with(url: str, **query: str) -> str:
    parts = urlsplit(url)
    q = {k: v[0] for k, v in parse_qs(parts.query).items()} | query
    return parts._replace(query="&".join(f"{k}={v}" for k, v in q.items())).geturl()


async def test_a_signed_url_serves_the_file_with_its_type_and_length(
        served: Hub, http: aiohttp.ClientSession) -> None:
    data = wav_bytes()
    stored = await served.content.media.put(data)
    url = served.content.signed_url(stored.sha256, ttl=60)
    assert url.startswith(f"http://127.0.0.1:{served.settings.api_port}/media/{stored.sha256}?")
    async with http.get(url) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "audio/wav"
        assert int(resp.headers["Content-Length"]) == len(data)
        assert await resp.read() == data


async def test_a_range_request_gets_the_requested_bytes(served: Hub,
                                                        http: aiohttp.ClientSession) -> None:
    data = os.urandom(4096)
    stored = await served.content.media.put(data)
    async with http.get(served.content.signed_url(stored.sha256, 60),
                        headers={"Range": "bytes=1000-1099"}) as resp:
        assert resp.status == 206
        assert resp.headers["Content-Range"] == "bytes 1000-1099/4096"
        assert await resp.read() == data[1000:1100]


async def test_an_expired_url_is_refused(served: Hub, http: aiohttp.ClientSession) -> None:
    stored = await served.content.media.put(b"bulletin")
    url = served.content.urls.sign(stored.sha256, ttl=30, now=time.time() - 60)
    async with http.get(url) as resp:
        assert resp.status == 403
        assert (await resp.json())["error"] == "the URL has expired"


@pytest.mark.parametrize("tamper", ["extend_expiry", "other_file", "flip_signature",
                                    "no_signature"])
async def test_a_tampered_url_is_refused(served: Hub, http: aiohttp.ClientSession,
                                         tamper: str) -> None:
    stored = await served.content.media.put(b"approved bulletin")
    other = await served.content.media.put(b"something else")
    url = served.content.signed_url(stored.sha256, ttl=60)
    sig = parse_qs(urlsplit(url).query)["sig"][0]
    bad = {
        "extend_expiry": _with(url, exp=str(int(time.time()) + 10 ** 6)),
        "other_file": url.replace(stored.sha256, other.sha256),
        "flip_signature": _with(url, sig=("0" if sig[0] != "0" else "1") + sig[1:]),
        "no_signature": url.split("?")[0],
    }[tamper]
    async with http.get(bad) as resp:
        assert resp.status == 403


async def test_a_signed_url_of_a_file_not_in_the_store_is_not_found(
        served: Hub, http: aiohttp.ClientSession) -> None:
    async with http.get(served.content.signed_url("ab" * 32, 60)) as resp:
        assert resp.status == 404


def test_the_media_key_is_made_once_in_home_readable_by_the_owner_only(tmp_path: Path) -> None:
    first = MediaUrlSigner.for_home(tmp_path, "http://hub", env={})
    key = tmp_path / "media.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    url = first.sign("ab" * 32, 60)
    exp, sig = (parse_qs(urlsplit(url).query)[k][0] for k in ("exp", "sig"))
    assert MediaUrlSigner.for_home(tmp_path, "http://hub", env={}).check("ab" * 32, exp, sig)


def test_workers_sharing_the_key_from_the_environment_accept_each_others_urls(
        tmp_path: Path) -> None:
    env = {"TTCS_MEDIA_KEY": "a-long-shared-secret-for-every-worker"}
    url = MediaUrlSigner.for_home(tmp_path / "a", "http://a", env=env).sign("cd" * 32, 60)
    exp, sig = (parse_qs(urlsplit(url).query)[k][0] for k in ("exp", "sig"))
    assert MediaUrlSigner.for_home(tmp_path / "b", "http://b", env=env).check("cd" * 32, exp,
                                                                              sig)
    assert not (tmp_path / "a" / "media.key").exists()


async def test_a_device_verifies_a_spoken_bulletin_with_the_published_keys(
        served: Hub, http: aiohttp.ClientSession) -> None:
    item = await approved(served, await served.content.add(draft(), "test"))
    playable = await served.content.playable(item, "20101-01")
    # what a device does: fetch the keys and the file, check the token against both
    async with http.get(f"http://127.0.0.1:{served.settings.api_port}/keys") as resp:
        jwks = await resp.json()
    async with http.get(str(playable.media.url)) as resp:
        audio = await resp.read()
    assert resp.headers["Content-Type"] == "audio/wav"
    statement = verify_token(playable.signature, keys_from_jwks(jwks, "approver"),
                             keys_from_jwks(jwks, "render"),
                             sha256=hashlib.sha256(audio).hexdigest(), size=len(audio))
    assert statement["content_id"] == item.id
    assert statement["approved_by"] == "chu-tich-phu-vinh"
    with pytest.raises(ContentAltered, match="not the one that was approved"):
        verify_token(playable.signature, keys_from_jwks(jwks, "approver"),
                     keys_from_jwks(jwks, "render"), sha256=hashlib.sha256(b"x").hexdigest())


async def test_a_device_refuses_a_token_signed_by_a_key_the_hub_does_not_publish(
        served: Hub, http: aiohttp.ClientSession) -> None:
    item = await approved(served, await served.content.add(draft(), "test"))
    token = served.content.approval_token(item)
    async with http.get(f"http://127.0.0.1:{served.settings.api_port}/keys") as resp:
        jwks = await resp.json()
    roles = {k["ttcs_role"] for k in jwks["keys"]}
    assert roles == {"approver", "render"}
    assert verify_token(token, keys_from_jwks(jwks, "approver"), text=item.text)
    with pytest.raises(ContentAltered, match="unknown key"):
        verify_token(token, keys_from_jwks(jwks, "render"))
    with pytest.raises(ContentAltered, match="text is not the one"):
        verify_token(token, keys_from_jwks(jwks, "approver"), text="Một thông báo khác")
