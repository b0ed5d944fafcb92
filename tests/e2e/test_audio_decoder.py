"""The audio decoder client against the VietCast decoder simulator, over real HTTP sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from tests.support.media import MediaServer
from tests.support.wait import eventually
from ttcs.adapters.pool import Transports
from ttcs.core.config import Settings
from ttcs.core.errors import (
    AuthFailed,
    CommandRejected,
    DeviceTimeout,
    DeviceUnreachable,
    ProtocolError,
)
from ttcs.plugins.audio_decoder import AudioDecoder, playable_source
from ttcs.schemas import PlayCommand
from ttcs.simulators.audio_decoder import AudioDecoder as SimDecoder
from ttcs.simulators.base import Fault

KEY = "vc-test-key"


@pytest.fixture
async def sim() -> AsyncIterator[SimDecoder]:
    decoder = SimDecoder("VC-0001", api_key=KEY, mac="02:56:43:00:00:01")
    await decoder.start()
    yield decoder
    await decoder.stop()


@pytest.fixture
async def transports(settings: Settings) -> AsyncIterator[Transports]:
    t = Transports(settings)
    yield t
    await t.close()


@pytest.fixture
def client(sim: SimDecoder, transports: Transports) -> AudioDecoder:
    return AudioDecoder(transports, sim.url, SecretStr(KEY), timeout=0.5)


async def test_info_reports_identity(client: AudioDecoder) -> None:
    info = await client.info()
    assert (info.serial, info.vendor, info.model, info.firmware, info.mac) == (
        "VC-0001", "VietCast", "VC-D2", "1.8.2", "02:56:43:00:00:01")


async def test_play_streams_the_url_until_stopped(client: AudioDecoder, sim: SimDecoder,
                                                  media: MediaServer) -> None:
    url = media.live("vov1")
    state = await client.play(url, session="s-1", label="ct-news", volume=55)
    assert state.playing and (state.session, state.label, state.volume) == ("s-1", "ct-news", 55)
    await eventually(lambda: sim.current is not None and sim.current.bytes_received > 4096)
    assert media.listeners == 1
    stopped = await client.stop()
    assert stopped.state == "idle" and stopped.last is not None
    assert (stopped.last.session, stopped.last.outcome) == ("s-1", "stopped")
    [play] = sim.truth.plays
    assert (play.source, play.volume, play.content_id, play.outcome) == (url, 55, "ct-news",
                                                                         "stopped")
    await eventually(lambda: media.listeners == 0)


async def test_the_same_session_twice_plays_once(client: AudioDecoder, sim: SimDecoder,
                                                 media: MediaServer) -> None:
    await client.play(media.live(), session="s-1")
    await client.play(media.live(), session="s-1")
    assert len(sim.truth.plays) == 1
    await client.play(media.live("other"), session="s-2")
    assert [p.outcome for p in sim.truth.plays] == ["interrupted", "playing"]


async def test_a_file_plays_for_its_duration_and_finishes(client: AudioDecoder,
                                                          sim: SimDecoder,
                                                          media: MediaServer) -> None:
    ref = media.ref("bulletin.mp3", b"\xff\xfb" + bytes(30000), "audio/mpeg")
    await client.play(ref["url"], session="s-file", duration=0.3)
    await eventually(lambda: sim.current is None)
    state = await client.status()
    assert state.state == "idle" and state.last is not None
    assert state.last.outcome == "finished"
    [play] = sim.truth.plays
    assert play.seconds is not None and play.seconds >= 0.3


async def test_a_stream_that_does_not_answer_fails_the_play(client: AudioDecoder,
                                                            sim: SimDecoder,
                                                            media: MediaServer) -> None:
    await client.play(f"{media.base}/missing.mp3", session="s-404")
    await eventually(lambda: sim.current is None)
    state = await client.status()
    assert state.state == "error" and state.error is not None and "404" in state.error
    assert state.last is not None and state.last.outcome == "failed"


async def test_volume_is_set_and_recorded(client: AudioDecoder, sim: SimDecoder) -> None:
    state = await client.set_volume(33)
    assert state.volume == 33 == sim.volume
    assert [level for _, level in sim.truth.volume_changes] == [33]
    with pytest.raises(CommandRejected):
        await client.set_volume(150)


async def test_bad_url_is_refused(client: AudioDecoder, sim: SimDecoder) -> None:
    with pytest.raises(CommandRejected, match="bad_url"):
        await client.play("ftp://example/x", session="s-bad")
    assert sim.truth.rejections[0].code == "bad_url"


async def test_altered_media_is_refused_before_the_decoder_sees_it(
        transports: Transports, media: MediaServer, sim: SimDecoder) -> None:
    ref = media.ref("swapped.mp3", b"other bytes", "audio/mpeg", claimed=b"approved bytes")
    with pytest.raises(CommandRejected, match="not what was approved"):
        await playable_source(transports, PlayCommand(media=ref), timeout=1)
    ok = media.ref("ok.mp3", b"approved", "audio/mpeg")
    ok["duration"] = 2.0
    url, duration = await playable_source(transports, PlayCommand(media=ok, repeat=2),
                                          timeout=1)
    assert (url, duration) == (ok["url"], 4.0)
    assert sim.truth.plays == []


# -- faults ----------------------------------------------------------------------------------


async def test_offline_is_unreachable_until_cleared(client: AudioDecoder,
                                                    sim: SimDecoder) -> None:
    await sim.inject(Fault.OFFLINE)
    with pytest.raises(DeviceUnreachable):
        await client.status()
    await sim.clear(Fault.OFFLINE)
    assert (await client.status()).state == "idle"


async def test_slow_and_hang_time_out(client: AudioDecoder, sim: SimDecoder) -> None:
    await sim.inject(Fault.SLOW, delay=2.0)
    with pytest.raises(DeviceTimeout):
        await client.status()
    await sim.clear()
    await sim.inject(Fault.HANG)
    with pytest.raises(DeviceTimeout):
        await client.status()
    await sim.clear()
    assert (await client.status()).state == "idle"


async def test_garbage_is_a_protocol_error(client: AudioDecoder, sim: SimDecoder) -> None:
    await sim.inject(Fault.GARBAGE)
    with pytest.raises(ProtocolError):
        await client.status()


async def test_dropped_connection_is_unreachable_once(client: AudioDecoder,
                                                      sim: SimDecoder) -> None:
    # (aiohttp silently retries a GET on a dropped keep-alive connection; a POST it does not)
    await client.status()
    await sim.inject(Fault.DROP_CONNECTION)
    with pytest.raises(DeviceUnreachable):
        await client.stop()
    assert (await client.stop()).state == "idle"


async def test_wrong_key_is_auth_failed(client: AudioDecoder, sim: SimDecoder) -> None:
    await sim.inject(Fault.WRONG_CREDENTIALS)
    with pytest.raises(AuthFailed):
        await client.status()


async def test_playback_error_fails_a_play_part_way(client: AudioDecoder, sim: SimDecoder,
                                                    media: MediaServer) -> None:
    await sim.inject(Fault.PLAYBACK_ERROR, after=0.1)
    await client.play(media.live(), session="s-broken")
    await eventually(lambda: sim.current is None)
    state = await client.status()
    assert state.state == "error" and "decoding error" in (state.error or "")
    assert state.last is not None and state.last.outcome == "failed"
    assert sim.truth.plays[0].outcome == "failed"


async def test_power_loss_cuts_the_audio_and_reboot_brings_new_firmware(
        client: AudioDecoder, sim: SimDecoder, media: MediaServer) -> None:
    await client.play(media.live(), session="s-1")
    await sim.inject(Fault.POWER_LOSS)
    with pytest.raises(DeviceUnreachable):
        await client.status()
    assert sim.truth.plays[0].outcome == "power_lost"
    await sim.clear(Fault.POWER_LOSS)
    assert (await client.status()).state == "idle"
    await client.play(media.live(), session="s-2")
    await sim.inject(Fault.REBOOT, firmware="1.9.0")
    info = await client.info()
    assert info.firmware == "1.9.0"
    assert sim.truth.plays[1].outcome == "interrupted"
