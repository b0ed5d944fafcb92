"""Security profile: secrets, credentials, approval on the dispatch path, altered media, TLS."""

from __future__ import annotations

import asyncio
import json
import re
import typing
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from pydantic import SecretStr
from sqlalchemy import select, update

from ...aio import wait_for
from ...core.errors import DeviceError
from ...core.store.tables import ContentRow, DeviceRow
from ...schemas import (
    Capability,
    Connectivity,
    Content,
    DeviceKind,
    MediaRef,
    PlayCommand,
    Protocol,
    ShowCommand,
)
from ...simulators.base import Fault
from ...testing.net import free_port
from ..context import CaseContext, describe, ok
from ..effects import effect_for
from ..environment import ACTOR, AREA, png, wav
from ..logcapture import leaks
from ..outcome import NotRun
from ..targets import SimulatorTarget
from . import implements
from .delivery import on_schedule, played, received, schedule, schedule_lead

#: setting names that say "I am a secret" (as the hub's log mask reads keys)
SECRET_NAME = re.compile(r"(pass(word)?|secret|token|api_?key|credential|private)", re.I)


@implements("TC-SEC-001", whole_run=True)
async def no_secrets_in_logs(ctx: CaseContext) -> None:
    secrets = {s for s in ctx.env.secrets if len(s) >= 4}
    if not secrets:
        raise NotRun("no secret was configured in this run, so none could be looked for")
    lines = ctx.run_log_lines
    found = leaks(lines, secrets)
    ctx.note(f"searched {len(lines)} log lines for {len(secrets)} secret(s)")
    ctx.check("no log line contains a configured secret", not found,
              "; ".join(f"line {n} holds the secret beginning {s}" for n, s in found[:5]))


def _is_secret_type(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    return any(_is_secret_type(a) for a in typing.get_args(annotation))


@implements("TC-SEC-002")
async def secrets_declared(ctx: CaseContext) -> None:
    device = await ctx.device()
    driver = ctx.plugin.drivers[DeviceKind(device.kind)]
    fields = driver.config_model.model_fields
    untyped = sorted(name for name, f in fields.items()
                     if SECRET_NAME.search(name) and not _is_secret_type(f.annotation))
    ctx.check("every setting named like a secret is typed SecretStr", not untyped,
              f"plain settings: {untyped}")
    values = {v.get_secret_value() for v in device.config.values() if isinstance(v, SecretStr)}
    values |= {str(device.config[n]) for n in untyped if device.config.get(n)}
    async with ctx.env.hub.store.sessions() as s:
        stored = (await s.execute(select(DeviceRow.config)
                                  .where(DeviceRow.id == device.id))).scalar()
    text = json.dumps(stored, ensure_ascii=False)
    exposed = [v[:2] + "…" for v in values if len(v) >= 4 and v in text]
    ctx.check("the stored plain settings hold no secret value", not exposed,
              f"stored in clear: {exposed}")


@implements("TC-SEC-003")
async def wrong_credentials(ctx: CaseContext) -> None:
    manifest = ctx.plugin.manifest
    assert manifest is not None
    broker = ctx.env.broker
    if Protocol.MQTT in manifest.protocols and broker and not broker.checks_passwords:
        raise NotRun("the run's MQTT broker does not check passwords (install Mosquitto, or "
                     "certify with --broker pointing at a broker with passwords)")
    device, dut = await ctx.device(), await ctx.dut()
    await ctx.inject(dut, Fault.WRONG_CREDENTIALS)
    lost = await ctx.wait(lambda: ctx.env.connectivity(device) is not Connectivity.ONLINE,
                          ctx.env.patience(device) + 3)
    ctx.check("the hub stops seeing the device online", lost,
              f"connectivity {ctx.env.connectivity(device).value}")
    ctx.check("the hub keeps running", ctx.env.hub.started)
    sup = ctx.env.hub.supervisors.get(device.id)
    if sup is not None and sup.last_error:
        ctx.note(f"the hub's reason: {sup.last_error}")
    await ctx.clear(dut, Fault.WRONG_CREDENTIALS)
    ctx.check("with the credentials right again the device is online (no hub restart)",
              await ctx.online(device, ctx.env.patience(device) + 5),
              f"connectivity {ctx.env.connectivity(device).value}")


async def _item(ctx: CaseContext, device_caps: set[Capability], title: str,
                approve: bool) -> Content:
    """Content the device carries: audio for a speaker, a picture (or, for a text-only
    board, a text) for a board."""
    data, text = None, None
    if Capability.AUDIO_PLAY in device_caps:
        data = wav(0.4)
    elif Capability.DISPLAY_MEDIA in device_caps:
        data = png()
    else:
        text = f"{title}: thông báo kiểm định."
    item = await ctx.env.draft(title, data=data, text=text, submit=False)
    return await ctx.env.approve(item) if approve else await ctx.env.hub.content.submit(
        item.id, ACTOR)


@implements("TC-SEC-004")
async def approval_enforced(ctx: CaseContext) -> None:
    device, dut = await ctx.device(), await ctx.dut()
    dispatcher = ctx.env.hub.dispatcher
    assert dispatcher is not None
    caps = set(device.capabilities)
    patience = ctx.env.patience(device)
    lead = schedule_lead(ctx, device)
    local = Capability.SCHEDULE_LOCAL in caps
    control = await _item(ctx, caps, "Bản tin được duyệt (kiểm định)", approve=True)
    control_id, refusal = await schedule(ctx, control, device.id, lead)
    ctx.require("the approved item can be scheduled", refusal is None, refusal)
    await ctx.observe("the approved item reaches the device", dut,
                      lambda t: received(t, control.id, ctx),
                      f"Did the device play or show '{control.title}'?", timeout=patience + 3)
    assert ctx.env.hub.broadcasts is not None
    await ctx.env.hub.broadcasts.cancel(control_id, ACTOR)  # free the device's timeline
    unapproved = await _item(ctx, caps, "Bản tin chưa duyệt (kiểm định)", approve=False)
    first_id, first_refusal = await schedule(ctx, unapproved, device.id, lead)
    altered = await _item(ctx, caps, "Bản tin bị sửa (kiểm định)", approve=True)
    altered_at = datetime.now(UTC) + timedelta(seconds=lead + 0.9)
    second_id, second_refusal = await schedule(ctx, altered, device.id, lead + 0.9)
    if second_refusal is None:  # edited in the database behind the library's back
        async with ctx.env.hub.store.sessions.begin() as s:
            await s.execute(update(ContentRow).where(ContentRow.id == altered.id)
                            .values(title=altered.title + " — đã bị sửa"))
    for name, bid, refusal in (("unapproved", first_id, first_refusal),
                               ("altered", second_id, second_refusal)):
        if refusal is not None:
            ctx.check(f"the {name} item is refused", True, f"refused when scheduled: {refusal}")
            continue

        async def refused(bid: str = bid) -> bool:
            counts = await dispatcher.counts(bid)
            return counts.get("refused", 0) > 0 and not (counts.get("pending", 0)
                                                        or counts.get("retry", 0))

        ctx.check(f"the dispatcher refuses the {name} item", await ctx.wait(refused, patience + 5),
                  f"outbox {await dispatcher.counts(bid)}")
    await ctx.observe("the device never receives the unapproved item", dut,
                      lambda t: not received(t, unapproved.id, ctx),
                      f"Did the device stay silent about '{unapproved.title}'?", timeout=0.2)
    if not local:
        await ctx.observe("the device never receives the altered item", dut,
                          lambda t: not received(t, altered.id, ctx),
                          f"Did the device stay silent about '{altered.title}'?", timeout=0.2)
        return
    # a device that keeps its own schedule may have been sent the item while it was still
    # intact; once altered, the next sync takes it off the device's table before its slot
    await ctx.observe("the altered item is off the device's schedule and never played", dut,
                      lambda t: not on_schedule(t, altered.id, ctx, latest=True)
                      and not played(t, altered.id, ctx),
                      f"Is '{altered.title}' off the device's schedule, and was it never "
                      "played?", timeout=patience)
    # a play that did not happen can only be seen once its time has passed
    await asyncio.sleep(max(0.0, (altered_at - datetime.now(UTC)).total_seconds() + 0.5))
    await ctx.observe("the altered item did not play at its slot", dut,
                      lambda t: not played(t, altered.id, ctx),
                      f"Did '{altered.title}' stay silent at its time?", timeout=0.2)


class TamperedMirror:
    """A media server that serves other bytes than the ones approved (a hijacked mirror)."""

    def __init__(self, body: bytes, mime: str) -> None:
        self.body, self.mime = body, mime
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> TamperedMirror:
        app = web.Application()

        async def serve(request: web.Request) -> web.Response:
            return web.Response(body=self.body, content_type=self.mime)

        app.router.add_get("/media/{name}", serve)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}/media/altered"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@implements("TC-SEC-005")
async def altered_media(ctx: CaseContext) -> None:
    device, dut = await ctx.device(), await ctx.dut()
    audio = Capability.AUDIO_PLAY in device.capabilities
    # a new item, so the device cannot answer from a cache of the genuine bytes
    original = wav(0.45) if audio else png(72, 36)
    item = await ctx.env.approve(await ctx.env.draft("Tệp bị tráo (kiểm định)", data=original,
                                                     submit=False))
    playable = await ctx.env.hub.content.playable(item, AREA)
    altered = bytes(b ^ 0x5A if i % 97 == 50 else b for i, b in enumerate(original))
    assert len(altered) == len(original)
    if not audio:
        from ...schemas import ClearCommand

        await ctx.execute(device, ClearCommand())
    async with TamperedMirror(altered, playable.media.mime) as mirror:
        media = MediaRef(url=mirror.url, sha256=playable.media.sha256, size=playable.media.size,
                         duration=playable.media.duration, mime=playable.media.mime)
        command: PlayCommand | ShowCommand
        if audio:
            command = PlayCommand(content_id=item.id, media=media, signature=playable.signature)
        else:
            command = ShowCommand(content_id=item.id, media=media, signature=playable.signature)
        outcome = await ctx.execute(device, command)
    ctx.check("the command with altered media is refused or fails", not ok(outcome),
              describe(outcome))
    await ctx.observe("the device does not play or show the altered media", dut,
                      lambda t: not received(t, item.id, ctx),
                      "Did the device refuse the altered file (nothing played or shown)?",
                      timeout=0.2)


def _without_login(url: str) -> str:
    """``url`` without ``user:password@`` (for plugins that take the login apart)."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rsplit('@', 1)[-1]}"


def _fill(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format_map(values)
    if isinstance(value, dict):
        return {k: _fill(v, values) for k, v in value.items()}
    return value


@implements("TC-SEC-006")
async def tls(ctx: CaseContext) -> None:
    use = ctx.declaration.tls
    if use is None:
        ctx.require("the declaration says how to secure the plugin's link", False,
                    "add a tls: block to conformance.yaml, or exempt TC-SEC-006 with a reason")
        return
    if not isinstance(ctx.target, SimulatorTarget):
        raise NotRun("TLS is checked against the simulator (give the device's TLS settings in "
                     "the device file and run TC-SEC-006 on the simulator)")
    material = ctx.env.tls()
    broker_url = hub_url = None
    if use.broker:
        hub_url, broker_url = await ctx.env.tls_broker()
    await ctx.device()  # the primary is registered; the TLS devices come beside it
    # refused: keys the device does not share (refused_config), or else a CA that did not
    # sign the device's certificate
    by_keys = use.refused_config is not None
    for variant in ("right", "refused"):
        trusted = variant == "right" or by_keys
        ca = (ctx.env.tls_broker_ca() if use.broker else material.ca) if trusted \
            else material.other_ca
        port = free_port()
        values = {"tls_ca": str(material.ca if trusted else material.other_ca),
                  "tls_cert": str(material.cert), "tls_key": str(material.key),
                  "port": str(port), "host": "127.0.0.1",
                  "mqtt_tls_hub_url": f"{hub_url}?ca={ca}" if hub_url else "",
                  "mqtt_tls_url": f"{_without_login(hub_url)}?ca={ca}" if hub_url else ""}
        options = _fill(use.simulator_options, values)
        config = _fill(use.config, values)
        if variant == "refused" and use.refused_config is not None:
            config = {**config, **_fill(use.refused_config, values)}
        prefix = "CERTTLS" if variant == "right" else "CERTTLSX"
        dut = await ctx.target.build(prefix, options=options, config=config, broker=broker_url,
                                     port=port)
        try:
            registration = dut.registration()
            ctx.env.secrets |= ctx.env.config_secrets(registration)
            if variant == "right":
                await _secured(ctx, registration, use.link)
            else:
                await _refused(ctx, registration,
                               f"with keys the device does not share, {use.link} refuses the "
                               "link" if by_keys else "with a CA that did not sign the "
                               "certificate the device is not reached")
        finally:
            await dut.stop()


async def _secured(ctx: CaseContext, registration: dict[str, Any], link: str) -> None:
    what = f"over {link} the device is probed and registered"
    try:
        device = await ctx.env.register("tls", registration)
    except DeviceError as exc:
        ctx.check(what, False, describe(exc))
        return
    try:
        ctx.check(what, True, f"{device.serial} over {registration.get('config')}")
        online = await ctx.online(device)
        effect = effect_for(set(device.capabilities))
        if online and effect is not None:
            outcome = await ctx.execute(device, effect.command(effect.values[1], None))
            ctx.check(f"over {link} a command succeeds", ok(outcome), describe(outcome))
        else:
            ctx.check(f"over {link} the device comes online", online,
                      f"connectivity {ctx.env.connectivity(device).value}")
    finally:
        await ctx.env.unregister("tls")


async def _refused(ctx: CaseContext, registration: dict[str, Any], what: str) -> None:
    config = ctx.env.validate(registration)
    limit = ctx.env.hub.settings.probe_timeout * 4 + 2
    try:
        info = await wait_for(ctx.env.hub.probe(
            registration["plugin"], DeviceKind(registration["kind"]), config), limit)
        ctx.check(what, False, f"the probe answered {info.serial}")
    except DeviceError as exc:
        ctx.check(what, True, describe(exc))
    except TimeoutError:
        ctx.check(what, False, f"the probe hung for {limit:g} s instead of failing")
