"""Text-to-speech: espeak-ng's three Vietnamese voices, chosen by the area's region, rendered
once and cached; other engines plug in through the ``ttcs_register_tts`` hook."""

from __future__ import annotations

import stat
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.core.content.conftest import AREAS, draft, wav_bytes
from ttcs.core import hookimpl
from ttcs.core.config import Settings
from ttcs.core.content import ContentLibrary, EspeakEngine, Region, Voice, parse_wav
from ttcs.core.content.tts import PROVINCE_REGIONS, fix_wav_sizes
from ttcs.core.errors import TtsError
from ttcs.core.hub import Hub
from ttcs.core.plugins import PluginManager, PluginState
from ttcs.schemas import Capability, DeviceKind, IotClass, PluginManifest, Protocol

TEXT = "Kính thưa bà con, sáng mai trạm y tế xã tổ chức tiêm chủng cho trẻ em."


def test_espeak_ng_ships_the_three_vietnamese_voices_we_name() -> None:
    out = subprocess.run(["espeak-ng", "--voices=vi"], check=True, capture_output=True,
                         text=True).stdout
    listed = {line.split()[1] for line in out.splitlines()[1:]}
    assert {v.name for v in EspeakEngine.voices} <= listed


@pytest.mark.parametrize("voice", ["vi", "vi-vn-x-central", "vi-vn-x-south"])
async def test_each_vietnamese_voice_speaks_a_wav_whose_length_is_in_its_header(
        voice: str) -> None:
    wav = await EspeakEngine().synthesize(TEXT, voice)
    info = parse_wav(wav)
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"
    assert (info.channels, info.sample_rate, info.bits_per_sample) == (1, 22050, 16)
    assert info.data_size == len(wav) - 44  # the streamed placeholders were replaced
    assert 2.0 < info.duration < 15.0


def test_a_wav_written_by_the_standard_library_keeps_its_exact_duration() -> None:
    wav = wav_bytes(seconds=1.5, rate=8000)
    assert fix_wav_sizes(wav) == wav
    assert parse_wav(wav).duration == pytest.approx(1.5)


def test_bytes_that_are_not_wav_are_a_tts_error() -> None:
    with pytest.raises(TtsError, match="not a WAV file"):
        parse_wav(b"<html>quota exceeded</html>")


async def test_a_missing_espeak_binary_says_how_to_install_it() -> None:
    with pytest.raises(TtsError, match="apt-get install espeak-ng"):
        await EspeakEngine(binary="espeak-ng-not-here").synthesize(TEXT, "vi")


def test_every_one_of_the_34_provinces_has_a_region() -> None:
    import vietnam_provinces as vp

    codes = {str(int(p.code)) for p in vp.Province.iter_all()}
    assert set(PROVINCE_REGIONS) == codes
    assert PROVINCE_REGIONS["1"] is Region.NORTH
    assert PROVINCE_REGIONS["46"] is Region.CENTRAL
    assert PROVINCE_REGIONS["79"] is Region.SOUTH


@pytest.mark.parametrize(("area", "voice"), [
    ("20101-01", "vi-vn-x-central"),  # a village of a commune of Huế
    ("46", "vi-vn-x-central"),
    ("91", "vi"),  # a ward of Hà Nội whose code is also An Giang's province code
    ("26734", "vi-vn-x-south"),  # a ward of Hồ Chí Minh City
    ("VN", "vi"),  # above every province: the default voice
])
async def test_the_voice_follows_the_region_of_the_province_above_the_area(
        sqlite_hub: Hub, area: str, voice: str) -> None:
    assert (await sqlite_hub.content.speech.voice_for(area)).voice == voice


async def test_a_voice_set_for_an_area_is_inherited_below_it(settings: Settings) -> None:
    hub = Hub(settings.model_copy(update={"tts_voices": {"20101": "vi-vn-x-south"}}))
    await hub.open()
    try:
        await hub.registry.import_areas(AREAS, "test")
        choice = await hub.content.speech.voice_for("20101-01")
        assert (choice.voice, choice.reason) == ("vi-vn-x-south",
                                                 "tts_voices setting for area 20101")
        assert (await hub.content.speech.voice_for("19900")).voice == "vi-vn-x-central"
    finally:
        await hub.stop()


def _counting_espeak(tmp_path: Path) -> tuple[str, Path]:
    """A wrapper that records every run of the real espeak-ng."""
    calls = tmp_path / "espeak-calls"
    script = tmp_path / "espeak-ng-counted"
    script.write_text(f'#!/bin/sh\necho run >> "{calls}"\nexec espeak-ng "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script), calls


def _runs(calls: Path) -> int:
    return len(calls.read_text().splitlines()) if calls.exists() else 0


async def test_a_rendering_is_cached_so_espeak_runs_once_per_text_and_voice(
        content_hub: Hub, tmp_path: Path) -> None:
    binary, calls = _counting_espeak(tmp_path)
    lib = content_hub.content
    speech = ContentLibrary(lib.store, lib.registry, lib.settings,
                            engines={"espeak-ng": EspeakEngine(binary)}).speech
    first = await speech.render(TEXT, "espeak-ng", "vi-vn-x-central")
    again = await speech.render(TEXT, "espeak-ng", "vi-vn-x-central")
    assert (first.cached, again.cached) == (False, True)
    assert again.sha256 == first.sha256 and again.duration == first.duration
    assert _runs(calls) == 1
    await speech.render(TEXT, "espeak-ng", "vi-vn-x-south")  # another voice: another file
    assert _runs(calls) == 2
    # a restarted hub (a new library on the same store) still finds it
    restarted = ContentLibrary(lib.store, lib.registry, lib.settings,
                               engines={"espeak-ng": EspeakEngine(binary)}).speech
    assert (await restarted.render(TEXT, "espeak-ng", "vi-vn-x-central")).cached
    assert _runs(calls) == 2


async def test_a_cached_rendering_whose_file_was_lost_is_rendered_again(
        sqlite_hub: Hub) -> None:
    speech = sqlite_hub.content.speech
    first = await speech.render(TEXT, "espeak-ng", "vi")
    path = sqlite_hub.content.media.path(first.sha256)
    assert path is not None
    path.unlink()
    again = await speech.render(TEXT, "espeak-ng", "vi")
    assert not again.cached and path.exists()


# -- another engine through the plugin hook --------------------------------------------------


class ToneEngine:
    """A stand-in for a vendor's cloud TTS: a tone as long as the text."""

    name = "acme-cloud"
    voices: Sequence[Voice] = (Voice("hue-female", "vi", Region.CENTRAL),
                               Voice("saigon-male", "vi", Region.SOUTH))

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def synthesize(self, text: str, voice: str) -> bytes:
        self.calls.append((text, voice))
        return wav_bytes(seconds=len(text) / 100)


class AcmeSpeakersPlugin:
    """A vendor plugin whose speakers come with the vendor's cloud TTS."""

    def __init__(self) -> None:
        self.engine = ToneEngine()

    @hookimpl
    def ttcs_plugin_manifest(self) -> PluginManifest:
        return PluginManifest(id="acme-speakers", name="Acme", vendor="Acme", version="1",
                              sdk=">=1,<2", device_kinds=[DeviceKind.IP_SPEAKER],
                              capabilities=[Capability.AUDIO_PLAY], protocols=[Protocol.MQTT],
                              iot_class=IotClass.PUSH)

    @hookimpl
    def ttcs_register_drivers(self, registrar: object) -> None:
        from ttcs.plugins.native.driver import NativeSpeakerDriver

        class Driver(NativeSpeakerDriver):
            capabilities = frozenset({Capability.AUDIO_PLAY})

        registrar.add_driver(Driver)  # type: ignore[attr-defined]

    @hookimpl
    def ttcs_register_tts(self, registrar: object) -> None:
        registrar.add_engine(self.engine)  # type: ignore[attr-defined]


async def test_an_engine_registered_by_a_plugin_speaks_where_the_settings_choose_it(
        settings: Settings) -> None:
    manager = PluginManager()
    plugin = AcmeSpeakersPlugin()
    assert manager.load_object("acme", plugin).state is PluginState.LOADED
    hub = Hub(settings.model_copy(update={"tts_voices": {"20101": "acme-cloud:hue-female"}}),
              plugins=manager)
    await hub.open()
    try:
        await hub.registry.import_areas(AREAS, "test")
        item = await hub.content.add(draft(), "test")
        rendered, choice = await hub.content.speak(item, "20101-01")
        assert (choice.engine, choice.voice) == ("acme-cloud", "hue-female")
        assert plugin.engine.calls == [(item.text, "hue-female")]
        assert rendered.duration == pytest.approx(len(item.text or "") / 100)
        # elsewhere the default engine still speaks
        _, elsewhere = await hub.content.speak(item, "19900")
        assert elsewhere.engine == "espeak-ng"
    finally:
        await hub.stop()


@pytest.mark.parametrize(("engine", "reason"), [
    (type("Nameless", (), {"voices": (Voice("v", "vi"),),
                           "synthesize": lambda self, t, v: b""})(), "has no name"),
    (type("Blocking", (), {"name": "blocking", "voices": (Voice("v", "vi"),),
                           "synthesize": lambda self, t, v: b""})(), "async synthesize"),
])
def test_a_plugin_registering_a_broken_engine_is_refused(engine: object, reason: str) -> None:
    plugin = AcmeSpeakersPlugin()
    plugin.engine = engine  # type: ignore[assignment]
    entry = PluginManager().load_object("acme", plugin)
    assert entry.state is PluginState.REFUSED
    assert reason in (entry.reason or "")

