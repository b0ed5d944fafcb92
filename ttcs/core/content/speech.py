"""Speech for an area: which engine and voice, and a render cache keyed by what was said how.

The voice of an area is, first, the nearest ``tts_voices`` entry on the way from the area up
to the root; otherwise the default engine's voice for the region of the province above the
area. Renders are stored in the media store and indexed by sha256(engine, voice, text), so a
bulletin rendered once is never synthesised again, on this hub or any worker sharing the store.
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import structlog
from sqlalchemy.exc import IntegrityError

from ...schemas import AreaType
from ..config import Settings
from ..errors import TtsError
from ..registry import Registry
from ..store import Store
from ..store.tables import TtsRenderRow
from .media import MediaStore
from .tts import Region, TtsEngine, Voice, fix_wav_sizes, parse_wav, province_region

log = structlog.get_logger("ttcs.content.speech")


@dataclass(frozen=True)
class VoiceChoice:
    engine: str
    voice: str
    region: Region | None
    reason: str  # why this voice, for `ttcs content speak` and logs


@dataclass(frozen=True)
class Rendered:
    """One text rendered in one voice, stored in the media store."""

    sha256: str
    size: int
    duration: float
    engine: str
    voice: str
    cached: bool
    mime: str = "audio/wav"


_PROVINCE_TYPES = frozenset({AreaType.PROVINCE, AreaType.MUNICIPALITY})


def render_key(engine: str, voice: str, text: str) -> str:
    return hashlib.sha256(f"{engine}\0{voice}\0{text}".encode()).hexdigest()


def _primary(language: str) -> str:
    return language.split("-", 1)[0].lower()


class Speech:
    """Voice choice per area and the cached rendering of text."""

    def __init__(self, store: Store, registry: Registry, settings: Settings, media: MediaStore,
                 engines: Mapping[str, TtsEngine]) -> None:
        self.store = store
        self.registry = registry
        self.settings = settings
        self.media = media
        self.engines = dict(engines)
        self.syntheses = 0  # engine calls made by this process (cache misses)
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary())

    def engine(self, name: str) -> TtsEngine:
        try:
            return self.engines[name]
        except KeyError:
            raise TtsError(f"no text-to-speech engine '{name}' (installed: "
                           f"{', '.join(sorted(self.engines)) or 'none'})") from None

    async def voice_for(self, area_code: str, language: str = "vi") -> VoiceChoice:
        """The engine and voice that speak ``language`` to the people of ``area_code``."""
        await self.registry.get_area(area_code)  # NotFound for an unknown area
        chain = [area_code, *await self.registry.ancestors(area_code)]
        lang = _primary(language)
        for code in chain:
            wanted = self.settings.tts_voices.get(code)
            if wanted is None:
                continue
            engine_name, _, voice = wanted.rpartition(":")
            engine = self.engine(engine_name or self.settings.tts_engine)
            known = {v.name: v for v in engine.voices}
            if voice not in known:
                raise TtsError(f"tts_voices[{code}] names voice '{voice}', which engine "
                               f"'{engine.name}' does not have")
            if _primary(known[voice].language) == lang:
                return VoiceChoice(engine.name, voice, known[voice].region,
                                   f"tts_voices setting for area {code}")
        engine = self.engine(self.settings.tts_engine)
        region, source = None, None
        for code in chain:
            # only a province-level area: official ward codes such as "91" (a ward of Hà Nội)
            # are also province codes (An Giang)
            area = await self.registry.get_area(code)
            if area.type in _PROVINCE_TYPES and (found := province_region(code)):
                region, source = found, code
                break
        voice_ = _pick(engine.voices, lang, region)
        if voice_ is None:
            raise TtsError(f"engine '{engine.name}' has no voice for language '{language}'")
        if region is None:
            why = f"area {area_code} lies under no known province; default voice"
        else:
            why = f"{region.value} region (province {source})"
        return VoiceChoice(engine.name, voice_.name, voice_.region, why)

    async def render(self, text: str, engine_name: str, voice: str) -> Rendered:
        """``text`` spoken in ``voice``, from the cache or synthesised once and cached."""
        key = render_key(engine_name, voice, text)
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        async with lock:
            async with self.store.sessions() as s:
                row = await s.get(TtsRenderRow, key)
            if row is not None and await self.media.exists(row.media_sha256):
                return Rendered(row.media_sha256, row.size, row.duration, engine_name, voice,
                                cached=True)
            engine = self.engine(engine_name)
            self.syntheses += 1
            try:
                wav = fix_wav_sizes(await engine.synthesize(text, voice))
                info = parse_wav(wav)
            except TtsError:
                raise
            except Exception as exc:  # a plugin's engine may fail in any way
                raise TtsError(f"engine '{engine_name}' failed: {exc!r}") from exc
            stored = await self.media.put(wav)
            log.info("tts.rendered", engine=engine_name, voice=voice, chars=len(text),
                     seconds=round(info.duration, 1), sha256=stored.sha256[:12])
            await self._index(TtsRenderRow(key=key, engine=engine_name, voice=voice,
                                           media_sha256=stored.sha256, size=stored.size,
                                           duration=info.duration))
            return Rendered(stored.sha256, stored.size, info.duration, engine_name, voice,
                            cached=False)

    async def _index(self, row: TtsRenderRow) -> None:
        try:
            async with self.store.sessions.begin() as s:
                await s.merge(row)
        except IntegrityError:
            pass  # another worker indexed the same render first: same key, same meaning


def _pick(voices: Sequence[Voice], language: str, region: Region | None) -> Voice | None:
    candidates = [v for v in voices if _primary(v.language) == language]
    for v in candidates:
        if region is not None and v.region is region:
            return v
    return candidates[0] if candidates else None
