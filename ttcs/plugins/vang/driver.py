"""Driver for VangTech speakers: the hub calls their REST/JSON API, every request HMAC-signed,
and polls their status through the shared poller.

How hub commands map to the vendor API (see ``docs/plugins/vang.md``):

- ``play``: ``POST /play`` with the media URL, its SHA-256 and size (the speaker fetches and
  checks the file before it answers) or the stream URL, ``repeat``, the level as a priority
  (:data:`~ttcs.plugins.vang.protocol.PRIORITY`), the volume for this job, the content id as
  ``tag`` and the hub's ids in ``client_data``, which the speaker echoes in its status and play
  log. ``409 busy`` (a higher priority plays) is a ``rejected`` result.
- ``stop``: ``POST /stop`` (with ``tag`` when the command names a content id).
- ``set_volume``: ``PUT /volume``. ``test_tone``: ``POST /test-tone``. ``reboot``: ``POST
  /reboot``.

The speaker has no idempotency keys, so the driver makes repeats harmless: it keeps the first
result of the last keys (:class:`~ttcs.core.idempotency.RecentResults`), and when an earlier
attempt with the same key ended without an answer (timeout, connection lost) it first looks
for the job on the speaker (status and play log carry a digest of the key) before playing it
again.

Every request names the serial it is meant for (``X-Vang-Device``, inside the signature), and
every identity and status answer is checked against the registered serial: after an address
change the driver refuses, with a permanent error, to drive a different speaker.

Each poll reads ``/status`` and, when the play-log cursor moved, the new ``/playlog`` entries,
reported as proof of play; alarms the speaker lists are raised and cleared once each.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from datetime import datetime
from typing import Any, ClassVar

from pydantic import Field, SecretStr

from ...adapters.errors import map_decode_errors
from ...adapters.rest import RestDevice
from ...adapters.signing import HmacSigner
from ...core.driver import DeviceDriver, DriverConfig, NullLink
from ...core.errors import (
    AuthFailed,
    CommandRejected,
    DeviceError,
    DeviceNotReady,
    DeviceTimeout,
    DeviceUnreachable,
    PermanentDeviceError,
    ProtocolError,
)
from ...core.idempotency import RecentResults
from ...schemas import (
    Activity,
    AlarmEvent,
    AlarmSeverity,
    Capability,
    Command,
    CommandResult,
    CommandStatus,
    DeviceInfo,
    DeviceKind,
    DeviceStatus,
    IotClass,
    PlayCommand,
    PlayEvent,
    PlayPhase,
    PowerSource,
    RebootCommand,
    SetVolumeCommand,
    StopCommand,
    TestToneCommand,
)
from ...schemas.base import utcnow
from .protocol import API, PHASES, PRIORITY, SCHEME, VENDOR

RESULTS_KEPT = 500
UNCERTAIN_KEPT = 200
LOG_PAGE = 100
#: on start (or a reset play log) the driver reports entries this recent again; the hub's
#: proof-of-play store ignores the ones it already has (event ids are stable)
CATCH_UP_ENTRIES = 20
CATCH_UP_SECONDS = 600.0


class VangConfig(DriverConfig):
    url: str = Field(description="speaker API base, e.g. http://10.0.0.7:8080 (https for TLS)",
                     pattern=r"^https?://")
    key_id: str = Field(default="hub", min_length=1, max_length=64,
                        description="id of the hub's key on the speaker")
    secret: SecretStr = Field(description="the shared secret requests are signed with")
    poll_interval: float | None = Field(default=None, ge=0.1, le=3600,
                                        description="seconds between status polls "
                                        "(default 15)")
    timeout: float | None = Field(default=None, gt=0, description="seconds per request; a play "
                                  "answers after the speaker fetched the file (default: the "
                                  "hub's command timeout)")
    ca_file: str | None = Field(default=None, description="CA file for an https speaker")
    verify_tls: bool = Field(default=True, description="false: accept a self-signed "
                             "certificate (only on a closed network)")


class VangSpeakerDriver(DeviceDriver):
    """A VangTech IP/4G speaker. Poll: the hub's shared poller reads its status."""

    kinds: ClassVar[frozenset[DeviceKind]] = frozenset({DeviceKind.IP_SPEAKER})
    capabilities: ClassVar[frozenset[Capability]] = frozenset({
        Capability.AUDIO_PLAY, Capability.AUDIO_STREAM, Capability.AUDIO_VOLUME,
        Capability.AUDIO_TEST_TONE, Capability.REBOOT})
    config_model = VangConfig
    iot_class = IotClass.POLL
    poll_interval = 15.0

    _api: RestDevice | None = None

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self._results = RecentResults(RESULTS_KEPT)
        self._uncertain: OrderedDict[str, None] = OrderedDict()  # keys sent, answer unknown
        self._log_epoch: str | None = None
        self._log_cursor = 0
        self._catching_up = False
        self._alarms: set[str] | None = None

    @property
    def config(self) -> VangConfig:
        return self.context.config  # type: ignore[no-any-return]

    @property
    def serial(self) -> str | None:
        """The registered serial (``None`` while probing a speaker not yet registered)."""
        device = self.context.device
        return device.serial if device is not None else None

    @property
    def api(self) -> RestDevice:
        if self._api is None:
            cfg = self.config
            signer = HmacSigner(SCHEME, cfg.key_id, cfg.secret, target=self.serial)
            self._api = RestDevice(self.context.transports, cfg.url, signer=signer,
                                   timeout=cfg.timeout or self.context.settings.command_timeout,
                                   ca_file=cfg.ca_file, verify_tls=cfg.verify_tls)
        return self._api

    # -- one signed call ----------------------------------------------------------------------

    async def _call(self, method: str, path: str, what: str, *, body: Any = None,
                    query: dict[str, str] | None = None, refusals: tuple[int, ...] = ()
                    ) -> tuple[int, dict[str, Any]]:
        """(status, JSON object) of one call; 401/421 and bodies that are not a JSON object
        raise, ``refusals`` are returned for the caller to map."""
        response = await self.api.request(method, f"{API}{path}", what=what, json_body=body,
                                          query=query, ok_statuses=(401, 421, *refusals))
        try:
            data = response.json(what)
        except ProtocolError:
            if response.status != 401:
                raise
            data = {"message": response.body[:200].decode("utf-8", errors="replace")}
        if not isinstance(data, dict):
            raise ProtocolError(f"{what}: expected a JSON object, got {str(data)[:80]!r}")
        if response.status == 401:  # refused, whatever the body (a proxy may answer too)
            raise self._refused(what, data)
        if response.status == 421:
            raise self._another_device(what, data.get("serial"))
        return response.status, data

    def _refused(self, what: str, data: dict[str, Any]) -> DeviceError:
        code, message = data.get("error"), str(data.get("message", ""))[:200]
        if code == "stale_request":
            # The clocks disagree; retrying helps once NTP fixes it. The driver does not adopt
            # the speaker's clock: anyone on the path could then make it sign requests for later.
            device_time = data.get("device_time")
            skew = (f"{float(device_time) - time.time():+.0f} s"
                    if isinstance(device_time, int | float) else "an unknown amount")
            return DeviceNotReady(f"{what}: the speaker refused the request as stale: its clock "
                                  f"is {skew} off the hub's (it accepts ±30 s); check NTP on "
                                  "the speaker and on the hub")
        return AuthFailed(f"{what}: the speaker refused our signature ({code or 'no code'}: "
                          f"{message}); check key_id and secret")

    def _another_device(self, what: str, found: Any) -> PermanentDeviceError:
        return PermanentDeviceError(
            f"{what}: the device at {self.config.url} is speaker {found or '(unknown)'}, not "
            f"{self.serial} as registered; refusing to drive another device — correct the "
            "address, or register that speaker as a device of its own")

    def _check_serial(self, reported: str, what: str) -> None:
        if self.serial is not None and reported != self.serial:
            raise self._another_device(what, reported)

    # -- identity and status ------------------------------------------------------------------

    async def probe(self) -> DeviceInfo:
        what = "reading speaker identity"
        _, data = await self._call("GET", "/device", what)
        with map_decode_errors("speaker identity"):
            info = DeviceInfo(
                serial=data["serial"], mac=data.get("mac"), vendor=data.get("vendor") or VENDOR,
                model=data["model"], firmware=data.get("firmware") or "unknown",
                kind=DeviceKind.IP_SPEAKER, capabilities=sorted(self.capabilities),
                address=self.config.url,
                extra={k: data[k] for k in ("hardware", "amplifier_watts", "codecs", "network")
                       if k in data})
        self._check_serial(info.serial, what)
        return info

    async def read_status(self) -> DeviceStatus:
        what = "reading speaker status"
        _, data = await self._call("GET", "/status", what)
        with map_decode_errors("speaker status"):
            self._check_serial(str(data["serial"]), what)
            status = _status(data)
            epoch, seq = str(data["log"]["epoch"]), int(data["log"]["seq"])
            clock = float(data["clock"])
        if not isinstance(self.context.link, NullLink):  # supervised: report what happened
            self._report_alarms({f for f in status.faults if f != "on_battery"})
            await self._sync_play_log(epoch, seq, clock)
        return status

    def _report_alarms(self, alarms: set[str]) -> None:
        before = self._alarms or set()
        for code in sorted(alarms - before):
            self.context.link.report_event(AlarmEvent(
                code=code, raised=True, severity=AlarmSeverity.MAJOR,
                detail=f"the speaker reports {code}"))
        for code in sorted(before - alarms):
            self.context.link.report_event(AlarmEvent(
                code=code, raised=False, severity=AlarmSeverity.MAJOR,
                detail=f"the speaker no longer reports {code}"))
        self._alarms = alarms

    # -- proof of play from the speaker's play log ----------------------------------------------

    async def _sync_play_log(self, epoch: str, seq: int, clock: float) -> None:
        if epoch != self._log_epoch or seq < self._log_cursor:  # first poll, or a reset log
            self._log_epoch, self._log_cursor = epoch, max(0, seq - CATCH_UP_ENTRIES)
            self._catching_up = True
        if seq <= self._log_cursor:
            return
        what = "reading the play log"
        _, page = await self._call("GET", "/playlog", what, query={
            "after": str(self._log_cursor), "limit": str(LOG_PAGE)})
        with map_decode_errors("play log"):
            entries = list(page["entries"])
            last = int(entries[-1]["seq"]) if entries else int(page["last_seq"])
        if entries and int(entries[0].get("seq", 0)) > self._log_cursor + 1:
            self.context.log.warning("vang.play_log_gap", after=self._log_cursor,
                                     missed=int(entries[0]["seq"]) - self._log_cursor - 1)
        since = clock - CATCH_UP_SECONDS if self._catching_up else None
        bad = 0
        for entry in entries:
            try:
                event = self._play_event(epoch, entry, since)
            except (ValueError, KeyError, TypeError):
                bad += 1
                continue
            if event is not None:
                self.context.link.report_event(event)
        if bad:
            self.context.log.warning("vang.play_log_unreadable", entries=bad)
        self._log_cursor, self._catching_up = last, False

    def _play_event(self, epoch: str, entry: dict[str, Any], since: float | None
                    ) -> PlayEvent | None:
        at = datetime.fromisoformat(entry["at"])
        if entry.get("kind") == "tone" or (since is not None and at.timestamp() < since):
            return None  # a test tone is no content; old entries were reported before
        raw = entry.get("client_data")
        client: dict[str, Any] = raw if isinstance(raw, dict) else {}
        phase = PlayPhase.STARTED if entry["event"] == "start" else PHASES[entry["result"]]
        detail = entry.get("result") or "started"
        if not client:
            detail = f"{detail}; not sent by the hub (tag {str(entry.get('tag'))[:64]!r})"
        return PlayEvent(id=f"evt-vang-{self.serial}-{epoch}-{int(entry['seq'])}", phase=phase,
                         content_id=client.get("content_id"),
                         command_id=client.get("command_id"),
                         broadcast_id=client.get("broadcast_id"), device_time=at,
                         detail=detail)

    # -- commands -----------------------------------------------------------------------------

    async def execute(self, command: Command) -> CommandResult:
        return await self._results.run(command, lambda: self._carry_out(command))

    async def _carry_out(self, command: Command) -> CommandResult:
        try:
            if command.expires_at is not None and command.expires_at < utcnow():
                raise CommandRejected(f"the command expired at {command.expires_at}",
                                      code="expired")
            return await self._execute(command)
        except CommandRejected as exc:
            return CommandResult(command_id=command.id, status=CommandStatus.REJECTED,
                                 code=exc.code, detail=str(exc)[:2000])

    async def _execute(self, command: Command) -> CommandResult:
        if isinstance(command, PlayCommand | TestToneCommand):
            return await self._start_job(command)
        if isinstance(command, StopCommand):
            body = {"tag": command.content_id[:64]} if command.content_id else {}
            _, data = await self._call("POST", "/stop", "stopping", body=body)
            stopped = data.get("stopped")
            return _result(command, CommandStatus.DONE, "ok" if stopped else "not_playing",
                           stopped=stopped)
        if isinstance(command, SetVolumeCommand):
            status, data = await self._call("PUT", "/volume", "setting the volume",
                                            body={"level": command.volume}, refusals=(422,))
            if status == 422:
                raise CommandRejected(str(data.get("message")), code="invalid_request")
            return _result(command, CommandStatus.DONE, volume=data.get("level"))
        if isinstance(command, RebootCommand):
            await self._call("POST", "/reboot", "rebooting", body={})
            return _result(command, CommandStatus.ACCEPTED, "rebooting")
        raise CommandRejected(f"a VangTech speaker does not do '{command.type}'",
                              code="unsupported")

    async def _start_job(self, command: PlayCommand | TestToneCommand) -> CommandResult:
        key = _key_digest(command.idempotency_key)
        if command.idempotency_key in self._uncertain:
            job_id = await self._find_job(key)
            if job_id is not None:  # the first attempt did reach the speaker
                self._uncertain.pop(command.idempotency_key, None)
                return _result(command, CommandStatus.ACCEPTED, "playing", job_id=job_id,
                               found_on_device=True)
        client = {"key": key, "command_id": command.id}
        if isinstance(command, PlayCommand):
            path, what, body = "/play", "starting a play", _play_body(command, client)
        else:
            path, what = "/test-tone", "starting a test tone"
            body = {"frequency": command.frequency, "seconds": command.seconds,
                    "client_data": client}
        try:
            status, data = await self._call("POST", path, what, body=body,
                                            refusals=(409, 422, 424))
        except (DeviceTimeout, DeviceUnreachable):
            self._uncertain[command.idempotency_key] = None  # it may have started anyway
            while len(self._uncertain) > UNCERTAIN_KEPT:
                self._uncertain.popitem(last=False)
            raise
        self._uncertain.pop(command.idempotency_key, None)
        code, detail = str(data.get("error", "playing")), data.get("message")
        if status == 409:
            return _result(command, CommandStatus.REJECTED, "busy", detail)
        if status == 422:
            return _result(command, CommandStatus.REJECTED, code, detail)
        if status == 424:  # the media server may come back: the hub may retry
            return _result(command, CommandStatus.FAILED, code, detail)
        return _result(command, CommandStatus.ACCEPTED, "playing", job_id=data.get("job_id"),
                       seconds=data.get("seconds"))

    async def _find_job(self, key: str) -> str | None:
        """The id of a job started with this key digest, now playing or in the recent log."""
        _, status = await self._call("GET", "/status", "looking for an earlier attempt")
        with map_decode_errors("speaker status"):
            job = status.get("job") or {}
            if (job.get("client_data") or {}).get("key") == key:
                return str(job["job_id"])
            seq = int(status["log"]["seq"])
        _, page = await self._call("GET", "/playlog", "looking for an earlier attempt", query={
            "after": str(max(0, seq - 50)), "limit": "50"})
        with map_decode_errors("play log"):
            for entry in page["entries"]:
                if entry["event"] == "start" and (entry.get("client_data") or {}).get(
                        "key") == key:
                    return str(entry["job_id"])
        return None


def _play_body(command: PlayCommand, client: dict[str, Any]) -> dict[str, Any]:
    client = {**client, "content_id": command.content_id, "broadcast_id": command.broadcast_id}
    body: dict[str, Any] = {"repeat": command.repeat, "priority": PRIORITY[command.level],
                            "tag": command.content_id[:64] if command.content_id else None,
                            "client_data": {k: v for k, v in client.items() if v is not None}}
    if command.media is not None:
        body.update(url=str(command.media.url), sha256=command.media.sha256,
                    size=command.media.size)
        if command.media.duration is not None:
            body["duration"] = command.media.duration
    else:
        body["url"] = str(command.stream_url)
    if command.volume is not None:
        body["volume"] = command.volume
    return body


def _key_digest(key: str) -> str:
    """What the speaker keeps of an idempotency key (``client_data`` holds 512 bytes)."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _result(command: Command, status: CommandStatus, code: str = "ok",
            detail: Any = None, **data: Any) -> CommandResult:
    return CommandResult(command_id=command.id, status=status, code=code[:100],
                         detail=str(detail)[:2000] if detail else None, data=data)


def _status(data: dict[str, Any]) -> DeviceStatus:
    power, network = data["power"], data.get("network") or {}
    job = data.get("job") if isinstance(data.get("job"), dict) else None
    on_battery = power.get("source") == "battery"
    state = str(data["state"])
    telemetry: dict[str, float | int | str | bool] = {
        "uptime_s": float(data.get("uptime", 0)), "log_seq": int(data["log"]["seq"]),
        "state": state, "network": str(network.get("iface", "unknown"))}
    if job is not None:
        telemetry.update(job_id=str(job["job_id"]), job_priority=int(job["priority"]),
                         job_volume=int(job["volume"]))
    faults = (["on_battery"] if on_battery else []) + sorted(str(a) for a in
                                                             data.get("alarms") or [])
    return DeviceStatus(
        activity=Activity.PLAYING if state in ("playing", "tone") else Activity.IDLE,
        volume=int(data["volume"]),
        power_source=PowerSource.BATTERY if on_battery else PowerSource.MAINS,
        battery=power.get("battery"), signal=network.get("rssi_dbm"),
        temperature=data.get("temperature"), firmware=data.get("firmware"), faults=faults,
        current_item=job.get("tag") if job is not None and state == "playing" else None,
        telemetry=telemetry)
