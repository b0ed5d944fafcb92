"""`curl` talks to the simulated VangTech speaker as an integrator would, each request signed in
the shell with `openssl` from the recipe in docs/plugins/vang.md — a third implementation of
the signature, beside the hub's adapter and the simulator's check."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import AsyncIterator

import pytest

from ttcs.simulators.vang_speaker import VangSpeaker

pytestmark = pytest.mark.skipif(not (shutil.which("curl") and shutil.which("openssl")),
                                reason="needs curl and openssl (make test installs them)")

SECRET = "curl-secret"

# METHOD, PATH_ (URL path), QUERY (already canonical: sorted, encoded), BODY, TARGET, URL;
# TS / NONCE override the timestamp and nonce, SIGN_BODY signs other bytes than those sent.
SIGN_AND_SEND = r"""
set -euo pipefail
ts=${TS:-$(date +%s)}
nonce=${NONCE:-$(openssl rand -hex 12)}
body_sha=$(printf '%s' "${SIGN_BODY-$BODY}" | openssl dgst -sha256 -r | cut -d' ' -f1)
canonical=$(printf 'VANG1-HMAC-SHA256\n%s\n%s\n%s\n%s\n%s\n%s\n%s' \
    "$METHOD" "$PATH_" "$QUERY" "$TARGET" "$ts" "$nonce" "$body_sha")
sig=$(printf '%s' "$canonical" | openssl dgst -sha256 -hmac "$SECRET" -r | cut -d' ' -f1)
args=(-sS --max-time 10 -w '\n%{http_code}' -X "$METHOD"
      -H "X-Vang-Key: hub" -H "X-Vang-Timestamp: $ts" -H "X-Vang-Nonce: $nonce"
      -H "X-Vang-Signature: $sig" -H 'Content-Type: application/json')
if [ -n "$TARGET" ]; then args+=(-H "X-Vang-Device: $TARGET"); fi
if [ -n "$BODY" ]; then args+=(--data-binary "$BODY"); fi
curl "${args[@]}" "$URL$PATH_${QUERY:+?$QUERY}"
"""


async def curl(speaker: VangSpeaker, method: str, path: str, body: str = "", *,
               query: str = "", target: str = "", **env: str) -> tuple[int, dict[str, object]]:
    """Sign in bash and send with curl; returns (HTTP status, JSON body)."""
    proc = await asyncio.create_subprocess_exec(
        "bash", "-c", SIGN_AND_SEND, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "METHOD": method, "PATH_": path, "QUERY": query, "BODY": body,
             "TARGET": target, "URL": speaker.url, "SECRET": SECRET, **env})
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    text, _, code = out.rpartition(b"\n")
    return int(code), json.loads(text)


@pytest.fixture
async def speaker() -> AsyncIterator[VangSpeaker]:
    sim = VangSpeaker("VT-CURL", secret=SECRET, stream_seconds=30)
    await sim.start()
    sim.boot_clock = time.time() - 3600  # up for an hour: only the 30 s window counts
    yield sim
    await sim.stop()


async def test_curl_signed_in_the_shell_reads_status_and_sets_the_volume(
        speaker: VangSpeaker) -> None:
    status, body = await curl(speaker, "GET", "/api/v1/status")
    assert status == 200 and body["serial"] == "VT-CURL" and body["volume"] == 60
    status, body = await curl(speaker, "PUT", "/api/v1/volume", '{"level": 45}',
                              target="VT-CURL")
    assert (status, body) == (200, {"level": 45})
    assert [level for _, level in speaker.truth.volume_changes] == [45]


async def test_curl_plays_a_stream_reads_the_play_log_and_stops_it(speaker: VangSpeaker) -> None:
    play = {"url": "http://127.0.0.1:9/live.mp3", "priority": 3, "tag": "ct-curl"}
    status, body = await curl(speaker, "POST", "/api/v1/play", json.dumps(play))
    assert status == 202 and body["state"] == "playing"
    status, log = await curl(speaker, "GET", "/api/v1/playlog", query="after=0&limit=10")
    assert status == 200
    assert [(e["event"], e["tag"]) for e in log["entries"]] == [  # type: ignore[attr-defined]
        ("start", "ct-curl")]
    status, body = await curl(speaker, "POST", "/api/v1/stop", '{"tag": "ct-curl"}')
    assert (status, body["stopped"]) == (200, log["entries"][0]["job_id"])  # type: ignore[index]
    assert speaker.truth.plays[0].outcome == "stopped"


async def test_curl_replaying_a_nonce_is_refused(speaker: VangSpeaker) -> None:
    nonce = {"NONCE": "curl-nonce-0000000001"}
    assert (await curl(speaker, "PUT", "/api/v1/volume", '{"level": 20}', **nonce))[0] == 200
    status, body = await curl(speaker, "PUT", "/api/v1/volume", '{"level": 20}', **nonce)
    assert (status, body["error"]) == (401, "replayed_nonce")
    assert len(speaker.truth.volume_changes) == 1


async def test_curl_with_a_timestamp_31_seconds_old_is_refused(speaker: VangSpeaker) -> None:
    status, body = await curl(speaker, "GET", "/api/v1/status", TS=str(int(time.time()) - 31))
    assert (status, body["error"]) == (401, "stale_request")


async def test_curl_with_a_body_other_than_the_signed_one_is_refused(
        speaker: VangSpeaker) -> None:
    status, body = await curl(speaker, "PUT", "/api/v1/volume", '{"level": 100}',
                              SIGN_BODY='{"level": 10}')
    assert (status, body["error"]) == (401, "bad_signature")
    assert speaker.volume == 60
