"""The IP audio decoder that feeds a wired or FM station, as a small client plugins compose.

A station's amplifier (wired) or exciter (FM) takes line-level audio from a VietCast VC-D2
decoder: HTTP/JSON, an API key in ``X-API-Key`` (API in ``docs/plugins/zonetech.md``, the
simulator in :mod:`ttcs.simulators.audio_decoder`). It is not a device of its own in the
registry: the station's driver owns one :class:`AudioDecoder` and drives it together with
its relays or transmitter.

To compose it in a plugin::

    class MyStationConfig(DecoderFields, DriverConfig):   # adds decoder_url/_api_key/_timeout
        host: str

    decoder = AudioDecoder.from_fields(context.transports, config, default_timeout=3.0)
    url, duration = await playable_source(context.transports, command, timeout=3.0)
    state = await decoder.play(url, session=command.idempotency_key,
                               label=command.content_id, volume=command.volume,
                               duration=duration)
    await decoder.stop()

Requests to one decoder are serialised and time-limited, and every failure arrives as a hub
error (:mod:`ttcs.adapters.rest`). ``session`` is the idempotency key: playing the same
session twice plays it once.

The decoder knows nothing of bulletin levels: any play cuts what plays. The station's driver
keeps the three levels with :meth:`AudioDecoder.admit` before it plays — an emergency cuts a
normal bulletin, a normal bulletin does not cut an emergency.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ..adapters.errors import map_decode_errors
from ..adapters.pool import Transports
from ..adapters.rest import RestDevice, fetch_verified
from ..core.errors import CommandRejected
from ..schemas import BulletinLevel, PlayCommand

API = "/api/v1"
API_KEY_HEADER = "X-API-Key"

DecoderPhase = Literal["idle", "playing", "error"]


class DecoderFields(BaseModel):
    """Configuration fields of a station whose audio comes from a VietCast decoder; mix into
    a plugin's config model (flat, so ``--config decoder_url=...`` works on the CLI)."""

    decoder_url: str = Field(description="the audio decoder's API base, e.g. "
                             "http://10.0.0.6:8080", pattern=r"^https?://")
    decoder_api_key: SecretStr = Field(description="the decoder's API key (X-API-Key)")
    decoder_timeout: float | None = Field(default=None, gt=0, description="seconds per "
                                          "decoder request (default: the hub's command "
                                          "timeout)")


class DecoderInfo(BaseModel):
    """Who the decoder says it is."""

    model_config = ConfigDict(extra="ignore")

    serial: str = Field(min_length=1)
    vendor: str = "VietCast"
    model: str
    firmware: str = "unknown"
    mac: str | None = None


class LastSession(BaseModel):
    """How the decoder's previous play ended."""

    model_config = ConfigDict(extra="ignore")

    session: str
    label: str | None = None
    outcome: Literal["finished", "stopped", "interrupted", "failed", "power_lost"]
    error: str | None = None
    ended_at: str | None = None


class DecoderState(BaseModel):
    """The decoder's status: what it plays (``session``/``label``/``url``) and how the last
    play ended."""

    model_config = ConfigDict(extra="ignore")

    state: DecoderPhase
    volume: int = Field(ge=0, le=100)
    url: str | None = None
    session: str | None = None
    label: str | None = None
    error: str | None = None
    firmware: str | None = None
    uptime: float | None = None
    bytes_received: int = 0
    last: LastSession | None = None

    @property
    def playing(self) -> bool:
        return self.state == "playing"


class AudioDecoder:
    """One decoder's API. Create one per station driver."""

    def __init__(self, transports: Transports, url: str, api_key: SecretStr, *,
                 timeout: float) -> None:
        self.url = url.rstrip("/")
        self._api = RestDevice(transports, self.url, token=None, timeout=timeout,
                               api_key=(API_KEY_HEADER, api_key))

    @classmethod
    def from_fields(cls, transports: Transports, fields: DecoderFields, *,
                    default_timeout: float) -> AudioDecoder:
        return cls(transports, fields.decoder_url, fields.decoder_api_key,
                   timeout=fields.decoder_timeout or default_timeout)

    async def info(self) -> DecoderInfo:
        data = await self._api.json("GET", f"{API}/info", what="reading decoder identity")
        with map_decode_errors("decoder identity"):
            return DecoderInfo.model_validate(data)

    async def status(self) -> DecoderState:
        return await self._state("GET", "/status", None, "reading decoder status")

    async def play(self, url: str, *, session: str, label: str | None = None,
                   volume: int | None = None, duration: float | None = None) -> DecoderState:
        """Play ``url`` now (cutting what plays, unless it is this same ``session``)."""
        body: dict[str, Any] = {"url": url, "session": session}
        if label is not None:
            body["label"] = label
        if volume is not None:
            body["volume"] = volume
        if duration is not None:
            body["duration"] = duration
        return await self._state("POST", "/play", body, "starting the decoder")

    async def admit(self, session: str, level: BulletinLevel,
                    playing: Mapping[str, BulletinLevel]) -> DecoderState:
        """Refuse (``CommandRejected``, code ``busy``) a play of ``session`` at ``level`` while
        the decoder plays a session of a higher level; ``playing`` holds the levels of the
        sessions the caller started. Returns the decoder's state."""
        state = await self.status()
        current = playing.get(state.session or "") if state.playing else None
        if current is not None and state.session != session and current.rank > level.rank:
            raise CommandRejected(f"a {current.value} bulletin is on air; a {level.value} one "
                                  "does not cut it", code="busy")
        return state

    async def stop(self, session: str | None = None) -> DecoderState:
        """Stop what plays (only if it is ``session``, when given)."""
        return await self._state("POST", "/stop", {"session": session} if session else {},
                                 "stopping the decoder")

    async def set_volume(self, level: int) -> DecoderState:
        return await self._state("PUT", "/volume", {"level": level},
                                 "setting the decoder volume")

    async def _state(self, method: str, path: str, body: Any, what: str) -> DecoderState:
        data = await self._api.json(method, f"{API}{path}", json_body=body, what=what)
        with map_decode_errors("decoder status"):
            return DecoderState.model_validate(data)


async def playable_source(transports: Transports, command: PlayCommand, *,
                          timeout: float) -> tuple[str, float | None]:
    """The URL a decoder should play for ``command`` and for how long (None: until the
    stream or file ends).

    Approved media is fetched and checked against its SHA-256 and size first
    (:func:`~ttcs.adapters.rest.fetch_verified`; :class:`CommandRejected` if it was altered),
    because the decoder fetches the URL itself and cannot check it. A live ``stream_url`` has
    no bytes to check; it is played as given.
    """
    if command.media is not None:
        await fetch_verified(transports, command.media, timeout=timeout)
        duration = command.media.duration * command.repeat if command.media.duration else None
        return str(command.media.url), duration
    assert command.stream_url is not None  # PlayCommand guarantees media or stream_url
    return str(command.stream_url), None


__all__ = ["API_KEY_HEADER", "AudioDecoder", "DecoderFields", "DecoderInfo", "DecoderState",
           "LastSession", "playable_source"]
