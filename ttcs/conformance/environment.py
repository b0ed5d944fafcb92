"""The hub a certification runs in: a real one, as a province runs it, on scratch state.

A run gets its own directory (SQLite store, media, keys), an MQTT broker (a private Mosquitto
with passwords when installed — the reference broker, which checks credentials — else the
embedded broker), the hub with the plugin manager of the run, its HTTP server (devices fetch
media from it by signed URL), two real areas of Huế, and a content library with an approver
and approved bulletins. Nothing here knows any plugin.
"""

from __future__ import annotations

import asyncio
import io
import secrets
import shutil
import struct
import time
import wave
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from pydantic import BaseModel, SecretStr

from ..adapters.mqtt import MqttEndpoint
from ..aio import wait_for
from ..core.config import Settings
from ..core.content import ContentDraft
from ..core.dispatch import DispatchSettings
from ..core.hub import Hub
from ..core.plugins import LoadedPlugin, PluginManager
from ..schemas import (
    Area,
    AreaType,
    BulletinLevel,
    Connectivity,
    Content,
    ContentKind,
    Device,
    DeviceInfo,
    DeviceSpec,
    Event,
    IotClass,
    IssuingLevel,
)
from ..testing.mosquitto import Mosquitto, make_tls_files
from ..testing.net import free_port
from .looplag import LoopWatch

log = structlog.get_logger("ttcs.conformance")

#: who the kit is in the audit log
ACTOR = "conformance-kit"
AREA = "19900"
AREAS = [Area(code="46", name="Thành phố Huế", type=AreaType.MUNICIPALITY),
         Area(code=AREA, name="Phường Thuận An", type=AreaType.WARD, parent_code="46")]
APPROVER = "Chủ tịch UBND phường Thuận An (conformance)"
OPEN_POLICY = "name: conformance (no limits)\nby_type: {}\n"


def wav(seconds: float, rate: int = 8000) -> bytes:
    """A mono 16-bit WAV of ``seconds`` of a quiet square wave (content for the library)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        period = struct.pack("<h", 800) * 10 + struct.pack("<h", -800) * 10
        w.writeframes(period * int(seconds * rate / 20))
    return buf.getvalue()


def png(width: int = 64, height: int = 32) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (0, 140, 60)).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class Bulletins:
    """Approved content in the run's library (created once per run)."""

    short: Content  # ~0.4 s of audio
    long: Content  # ~8 s of audio
    emergency: Content  # ~6 s of audio, emergency level
    text: Content  # a text notice for boards
    picture: Content  # a PNG for boards


@dataclass
class Broker:
    """The run's MQTT broker: URLs for the hub and for devices, and their passwords."""

    hub_url: str
    device_url: str
    checks_passwords: bool
    passwords: list[str] = field(default_factory=list)
    stop: Callable[[], Awaitable[None]] | None = None


async def start_broker(work: Path, external: str | None = None) -> Broker:
    """Mosquitto with a password per role if installed, else the embedded broker."""
    if external:
        return Broker(external, external, checks_passwords=False,
                      passwords=_url_passwords(external))
    if mosquitto_installed():
        hub_pw, dev_pw = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
        mosquitto = Mosquitto(users={"hub": hub_pw, "device": dev_pw},
                              workdir=work / "mosquitto")
        mosquitto.workdir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(mosquitto.start)

        async def stop_mosquitto() -> None:
            await asyncio.to_thread(mosquitto.stop)

        return Broker(mosquitto.url("hub", hub_pw), mosquitto.url("device", dev_pw),
                      checks_passwords=True, passwords=[hub_pw, dev_pw], stop=stop_mosquitto)
    from ..core.broker import EmbeddedBroker

    port = free_port()
    embedded = EmbeddedBroker("127.0.0.1", port)
    await embedded.start()
    url = f"mqtt://127.0.0.1:{port}"
    return Broker(url, url, checks_passwords=False, stop=embedded.stop)


def mosquitto_installed() -> bool:
    return bool(shutil.which("mosquitto")) or Path("/usr/sbin/mosquitto").exists()


def _url_passwords(url: str) -> list[str]:
    endpoint = MqttEndpoint.from_url(url)
    return [endpoint.password.get_secret_value()] if endpoint.password else []


@dataclass
class TlsMaterial:
    """A CA and a server certificate for 127.0.0.1, and another CA that did not sign it."""

    ca: Path
    cert: Path
    key: Path
    other_ca: Path


class Environment:
    """The hub under which a plugin is certified. ``async with Environment(...) as env``."""

    def __init__(self, plugins: PluginManager, plugin: LoadedPlugin, work: Path, *,
                 broker: str | None = None, probe_timeout: float = 3.0,
                 command_timeout: float = 3.0) -> None:
        self.plugins = plugins
        self.plugin = plugin
        self.work = work
        self._external_broker = broker
        self.broker: Broker | None = None
        self.watch = LoopWatch()
        self.events: list[Event] = []
        self.bulletins: Bulletins | None = None
        self.settings: Settings | None = None
        self._hub: Hub | None = None
        self._http: web.AppRunner | None = None
        self._tls: TlsMaterial | None = None
        self._tls_broker: tuple[Mosquitto, str, str, list[str]] | None = None
        self._probe_timeout = probe_timeout
        self._command_timeout = command_timeout
        self.secrets: set[str] = set()  # every secret the run configured (TC-SEC-001)
        self.devices: dict[str, Device] = {}  # role -> registered device
        self.children: dict[str, list[str]] = {}  # role -> roles of the devices reached through it
        self.identity: DeviceInfo | None = None  # what the primary device said it is
        self.plugin_dir: Path | None = None  # the plugin's package (tasks of its code)
        #: the cases wake the planner when they schedule something; devices that keep
        #: their own schedule (schedule.local) are synced within a fraction of a second
        #: rather than every 30 s
        self.dispatch = DispatchSettings(plan_interval=1.0, lookahead=2.0, backoff=(0.2, 2.0),
                                         sync_interval=0.3)

    @property
    def hub(self) -> Hub:
        if self._hub is None:
            raise RuntimeError("the hub is not running")
        return self._hub

    # -- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> Environment:
        self.work.mkdir(parents=True, exist_ok=True)
        self.broker = await start_broker(self.work, self._external_broker)
        self.secrets.update(self.broker.passwords)
        policy = self.work / "policy.yaml"
        policy.write_text(OPEN_POLICY, encoding="utf-8")
        self.settings = Settings(
            home=self.work / "var", mqtt_url=self.broker.hub_url, api_host="127.0.0.1",
            api_port=free_port(), probe_timeout=self._probe_timeout,
            command_timeout=self._command_timeout, policy_file=policy, log_format="json")
        await self.start_hub()
        await self.hub.registry.import_areas(AREAS, ACTOR)
        self.bulletins = await self._bulletins()
        await self.watch.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.watch.stop()
        await self.stop_hub()
        if self._tls_broker is not None:
            await asyncio.to_thread(self._tls_broker[0].stop)
        if self.broker is not None and self.broker.stop is not None:
            await self.broker.stop()

    async def start_hub(self) -> None:
        assert self.settings is not None
        hub = Hub(self.settings, self.plugins, dispatch=self.dispatch)
        hub.bus.subscribe(self.events.append)
        await hub.start()
        from ..core.http import start_http

        self._http, _ = await start_http(hub)
        self._hub = hub

    async def stop_hub(self) -> None:
        if self._http is not None:
            await self._http.cleanup()
            self._http = None
        if self._hub is not None:
            hub, self._hub = self._hub, None
            await hub.stop()

    async def restart_hub(self, while_down: Callable[[], Awaitable[None]] | None = None
                          ) -> float:
        """Stop the hub, run ``while_down``, start it again; returns how long start() took."""
        with self.watch.paused():
            await self.stop_hub()
        if while_down is not None:
            await while_down()
        with self.watch.paused():
            began = time.monotonic()
            await wait_for(self.start_hub(), 60)
            took = time.monotonic() - began
        for role, device in list(self.devices.items()):
            self.devices[role] = await self.hub.registry.get_device(device.id)
        return took

    # -- content ------------------------------------------------------------------------------

    async def _bulletins(self) -> Bulletins:
        library = self.hub.content
        await library.approvers.add(APPROVER, IssuingLevel.COMMUNE, AREA, ACTOR)

        async def approved(title: str, *, data: bytes | None = None, text: str | None = None,
                           kind: ContentKind | None = None,
                           level: BulletinLevel = BulletinLevel.NORMAL) -> Content:
            item = await library.add(ContentDraft(
                title=title, kind=kind, text=text, level=level,
                source_level=IssuingLevel.COMMUNE, issuer="UBND phường Thuận An",
                area_code=AREA), ACTOR, data=data)
            await library.submit(item.id, ACTOR)
            return await library.approve(item.id, APPROVER, ACTOR)

        return Bulletins(
            short=await approved("Thông báo ngắn (kiểm định)", data=wav(0.4)),
            long=await approved("Bản tin dài (kiểm định)", data=wav(8.0)),
            emergency=await approved("Cảnh báo khẩn cấp (kiểm định)", data=wav(6.0),
                                     level=BulletinLevel.EMERGENCY),
            text=await approved("Thông báo (kiểm định)", kind=ContentKind.TEXT,
                                text="Kính thưa bà con: đây là bản tin kiểm định của tỉnh."),
            picture=await approved("Áp phích (kiểm định)", data=png()))

    async def draft(self, title: str, *, data: bytes | None = None, text: str | None = None,
                    submit: bool = True) -> Content:
        """A new item that is not approved (submitted, waiting for an approver)."""
        library = self.hub.content
        item = await library.add(ContentDraft(
            title=title, text=text, kind=ContentKind.TEXT if data is None else None,
            source_level=IssuingLevel.COMMUNE, issuer="UBND phường Thuận An",
            area_code=AREA), ACTOR, data=data)
        return await library.submit(item.id, ACTOR) if submit else item

    async def approve(self, content: Content) -> Content:
        library = self.hub.content
        await library.submit(content.id, ACTOR)
        return await library.approve(content.id, APPROVER, ACTOR)

    # -- devices ------------------------------------------------------------------------------

    def config_secrets(self, registration: dict[str, Any]) -> set[str]:
        """The SecretStr settings among a registration's config (the registry encrypts them)."""
        config = self.validate(registration)
        return {value.get_secret_value() for _, value in config
                if isinstance(value, SecretStr) and value.get_secret_value()}

    def validate(self, registration: dict[str, Any]) -> BaseModel:
        from ..schemas import DeviceKind

        return self.hub.registry.validate_config(registration["plugin"],
                                                 DeviceKind(registration["kind"]),
                                                 registration.get("config", {}))

    async def register(self, role: str, registration: dict[str, Any], *,
                       supervise: bool = True) -> Device:
        """Probe and register a device (as `ttcs devices add` does), then supervise it. A
        child's registration names its parent (``parent_id``)."""
        self.secrets |= self.config_secrets(registration)
        device = await self.hub.registry.add_device(DeviceSpec(
            plugin=registration["plugin"], kind=registration["kind"], area_code=AREA,
            name=f"conformance {role}", config=registration.get("config", {}),
            parent_id=registration.get("parent_id")), ACTOR)
        self.devices[role] = device
        if supervise:
            await self.hub.supervise(device)
        return device

    async def unregister(self, role: str) -> None:
        for child in self.children.pop(role, []):
            await self.unregister(child)
        device = self.devices.pop(role, None)
        if device is not None:
            await self.hub.unsupervise(device.id)
            await self.hub.registry.remove_device(device.id, ACTOR)

    def connectivity(self, device: Device) -> Connectivity:
        sup = self.hub.supervisors.get(device.id)
        return sup.connectivity if sup else Connectivity.UNKNOWN

    def poll_seconds(self, device: Device) -> float:
        """How often the device's status reaches the hub without being asked (0: pushed)."""
        sup = self.hub.supervisors.get(device.id)
        if sup is None or sup.driver is None:
            return 0.0
        if type(sup.driver).iot_class is IotClass.PUSH:
            return 0.0
        return sup.driver.poll_every()

    def patience(self, device: Device) -> float:
        """How long to wait for something the device must do: a command's timeout plus a few
        status rounds (polls, or heartbeats of a device that calls in)."""
        assert self.settings is not None
        return self.settings.command_timeout + 4 * self.poll_seconds(device) + 2.0

    # -- TLS ----------------------------------------------------------------------------------

    def tls(self) -> TlsMaterial:
        if self._tls is None:
            good, other = self.work / "tls", self.work / "tls-other"
            good.mkdir(exist_ok=True)
            other.mkdir(exist_ok=True)
            ca, cert, key = make_tls_files(good)
            other_ca, _, _ = make_tls_files(other)
            self._tls = TlsMaterial(ca, cert, key, other_ca)
        return self._tls

    async def tls_broker(self) -> tuple[str, str]:
        """A Mosquitto with TLS and passwords: (hub URL without CA, device URL with its CA)."""
        if self._tls_broker is None:
            if not mosquitto_installed():
                from .outcome import NotRun

                raise NotRun("an MQTT link over TLS needs Mosquitto installed")
            hub_pw, dev_pw = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
            broker = Mosquitto(users={"hub": hub_pw, "device": dev_pw}, tls=True,
                               workdir=self.work / "mosquitto-tls")
            broker.workdir.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(broker.start)
            plain = broker.url("hub", hub_pw).split("?", 1)[0]
            self._tls_broker = (broker, plain, broker.url("device", dev_pw), [hub_pw, dev_pw])
            self.secrets.update([hub_pw, dev_pw])
        broker, hub_url, device_url, _ = self._tls_broker
        return hub_url, device_url

    def tls_broker_ca(self) -> Path:
        assert self._tls_broker is not None
        ca = self._tls_broker[0].ca_file
        assert ca is not None
        return ca


__all__ = ["ACTOR", "APPROVER", "AREA", "AREAS", "Broker", "Bulletins", "Environment",
           "TlsMaterial", "png", "start_broker", "wav"]
