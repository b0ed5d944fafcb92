"""``ttcs`` — the command line of TTCS Hub.

Scripts rely on this surface: every listing has ``--json``; on error the exit code is non-zero
and stderr holds one line saying what went wrong. Commands work directly on the local store
(``TTCS_DATABASE_URL`` or ``--config``) and talk to devices through the same plugins the hub
uses.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from . import __version__
from .cli_backend import Backend, with_backend
from .core.config import Settings, load_settings
from .core.errors import TTCSError
from .core.hub import Hub
from .core.logging import configure
from .schemas import DeviceKind, DeviceSpec, Group, GroupChanges, parse_command
from .schemas.errors import explain

EXIT_ERROR = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A one-line reason to stop with a non-zero exit code."""


# -- output helpers ------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def emit_json(value: Any) -> None:
    print(json.dumps(_jsonable(value), ensure_ascii=False, indent=2, default=str))


def emit_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    if not rows:
        print("(none)")
        return
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "-"
    return str(value)


def actor() -> str:
    """Who runs this command, for the audit log."""
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return f"cli:{user}"


def _key_values(pairs: Sequence[str] | None, what: str) -> dict[str, str]:
    """``KEY=VALUE`` pairs; ``KEY=@FILE`` reads the value from a file (one trailing newline
    dropped), so a device secret stays out of the shell history and the process list."""
    result: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError(f"{what} must look like KEY=VALUE or KEY=@FILE, got "
                           f"{key.strip() or pair!r}=…")
        if value.startswith("@"):
            path = Path(value[1:]).expanduser()
            try:
                value = path.read_text(encoding="utf-8").removesuffix("\n")
            except (OSError, UnicodeDecodeError) as exc:
                raise CliError(f"{what} {key.strip()}: cannot read {path}: "
                               f"{getattr(exc, 'strerror', None) or exc}") from None
        result[key.strip()] = value
    return result


# -- commands ------------------------------------------------------------------------------------


async def with_hub(settings: Settings, work: Callable[[Hub], Awaitable[int]]) -> int:
    """Open the store (not the whole hub), run ``work``, close everything."""
    hub = Hub(settings)
    try:
        await hub.open()
        return await work(hub)
    finally:
        await hub.stop()


def cmd_plugins_list(args: argparse.Namespace, settings: Settings) -> int:
    from .core.plugins import default_manager

    plugins = [p.summary() for p in default_manager().all()]
    if args.json:
        emit_json(plugins)
    else:
        emit_table(plugins, ["id", "version", "kinds", "protocols", "state", "reason"])
    return 0


def cmd_sim_list(args: argparse.Namespace, settings: Settings) -> int:
    from .core.plugins import default_manager

    sims = [{"name": s.name, "kinds": list(s.kinds), "protocol": s.protocol,
             "description": s.description} for s in default_manager().simulators()]
    if args.json:
        emit_json(sims)
    else:
        emit_table(sims, ["name", "kinds", "protocol", "description"])
    return 0


async def cmd_sim_run(args: argparse.Namespace, settings: Settings) -> int:
    from .core.plugins import default_manager
    from .simulators.base import SimOptions
    from .simulators.control import serve_control

    specs = {s.name: s for s in default_manager().simulators()}
    if args.name not in specs:
        raise CliError(f"no simulator '{args.name}' (available: {', '.join(sorted(specs))})")
    options = SimOptions(count=args.count, host=args.host, port=args.port,
                         broker=args.broker or None, serial_prefix=args.serial_prefix,
                         extra=_key_values(args.option, "--option"))
    fleet = await specs[args.name].build(options)
    await fleet.start()
    runner, control = await serve_control(fleet, args.host, args.control_port)
    print(json.dumps({"simulator": args.name, "control": control, **fleet.info,
                      "devices": [{"serial": d.serial, **d.connection_info()}
                                  for d in fleet.devices.values()]},
                     ensure_ascii=False), flush=True)
    try:
        await _wait_for_signal()
    finally:
        await fleet.stop()
        await runner.cleanup()
    return 0


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def cmd_areas_import(args: argparse.Namespace, settings: Settings) -> int:
    from .core.imports import official_areas, read_area_file

    if bool(args.file) == bool(args.official):
        raise CliError("give either FILE or --official PROVINCE_CODE")
    areas = official_areas(args.official) if args.official else read_area_file(Path(args.file))

    async def work(hub: Hub) -> int:
        created, updated = await hub.registry.import_areas(areas, actor())
        result = {"read": len(areas), "created": created, "updated": updated}
        emit_json(result) if args.json else print(
            f"{len(areas)} areas read: {created} created, {updated} updated")
        return 0

    return await with_hub(settings, work)


def remote(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a command that also works against a running hub (``--url``)."""
    REMOTE.add(handler)
    return handler


#: commands that can run over the API (see :mod:`ttcs.cli_backend`)
REMOTE: set[Callable[..., Any]] = set()


@remote
async def cmd_areas_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(backend: Backend) -> int:
        areas = await backend.list_areas(parent=args.parent, type_=args.type,
                                         under=args.under)
        if args.json:
            emit_json(areas)
        else:
            emit_table([a.model_dump() for a in areas], ["code", "name", "type", "parent_code"])
        return 0

    return await with_backend(settings, args.url, work)


async def cmd_areas_merge(args: argparse.Namespace, settings: Settings) -> int:
    async def work(hub: Hub) -> int:
        moved = await hub.registry.merge_areas(args.codes, args.into, actor())
        emit_json(moved) if args.json else print(
            f"merged {', '.join(args.codes)} into {args.into}: moved {moved['areas']} areas, "
            f"{moved['devices']} devices, {moved['groups']} groups")
        return 0

    return await with_hub(settings, work)


async def cmd_devices_add(args: argparse.Namespace, settings: Settings) -> int:
    try:
        spec = DeviceSpec(plugin=args.plugin, kind=args.kind, area_code=args.area,
                          village_code=args.village, name=args.name, parent_id=args.parent,
                          groups=args.group or [],
                          config=_key_values(args.config, "--config"))
    except ValidationError as exc:
        raise CliError(explain(exc)) from exc

    async def work(hub: Hub) -> int:
        device = await hub.registry.add_device(spec, actor())
        emit_json(device) if args.json else print(
            f"registered {device.id}: {device.vendor} {device.model} serial {device.serial} "
            f"firmware {device.firmware} in area {device.area_code}")
        return 0

    return await with_hub(settings, work)


async def cmd_devices_reconfigure(args: argparse.Namespace, settings: Settings) -> int:
    async def work(hub: Hub) -> int:
        device = await hub.registry.get_device(args.id)
        config = {k: (v.get_secret_value() if hasattr(v, "get_secret_value") else v)
                  for k, v in device.config.items() if v is not None}
        config.update(_key_values(args.config, "--config"))
        updated = await hub.registry.reconfigure(args.id, config, actor())
        emit_json(updated) if args.json else print(
            f"reconfigured {updated.id}: still serial {updated.serial}, firmware "
            f"{updated.firmware}")
        return 0

    return await with_hub(settings, work)


@remote
async def cmd_devices_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(backend: Backend) -> int:
        devices = await backend.list_devices(
            area=args.area, kind=args.kind, plugin=args.plugin, group=args.group,
            connectivity=args.connectivity, search=args.search, limit=args.limit,
            offset=args.offset)
        if args.json:
            emit_json(devices)
            return 0
        states = await backend.connectivity_of([d.id for d in devices])
        emit_table([{**d.model_dump(), "connectivity": states.get(d.id)} for d in devices],
                   ["id", "kind", "plugin", "serial", "firmware", "area_code", "connectivity"])
        return 0

    return await with_backend(settings, args.url, work)


@remote
async def cmd_devices_show(args: argparse.Namespace, settings: Settings) -> int:
    async def work(backend: Backend) -> int:
        device = await backend.get_device(args.id)
        status = await backend.stored_status(args.id)
        emit_json({"device": device, "last_status": status})
        return 0

    return await with_backend(settings, args.url, work)


@remote
async def cmd_devices_remove(args: argparse.Namespace, settings: Settings) -> int:
    async def work(backend: Backend) -> int:
        await backend.remove_device(args.id, actor())
        print(f"removed {args.id}")
        return 0

    return await with_backend(settings, args.url, work)


@remote
async def cmd_devices_status(args: argparse.Namespace, settings: Settings) -> int:
    async def work(backend: Backend) -> int:
        status = (await backend.stored_status(args.id) if args.cached
                  else await backend.live_status(args.id))
        if args.json:
            emit_json(status)
        else:
            data = status.model_dump(mode="json", exclude_none=True)
            for key, value in data.items():
                if value not in ([], {}):
                    print(f"{key:13} {value}")
        return 0

    return await with_backend(settings, args.url, work)


@remote
async def cmd_devices_command(args: argparse.Namespace, settings: Settings) -> int:
    try:
        command = parse_command(args.command)
    except ValidationError as exc:
        raise CliError(f"bad command: {explain(exc)}") from exc

    async def work(backend: Backend) -> int:
        result = await backend.execute(args.id, command, actor())
        if args.json:
            emit_json(result)
        else:
            detail = f" — {result.detail}" if result.detail else ""
            print(f"{command.type}: {result.status.value} ({result.code}){detail}")
        return 0 if result.ok else EXIT_ERROR

    return await with_backend(settings, args.url, work)


async def cmd_devices_import(args: argparse.Namespace, settings: Settings) -> int:
    from .core.imports import read_device_file

    specs = read_device_file(Path(args.file))

    async def work(hub: Hub) -> int:
        report = await hub.registry.import_devices(specs, actor(),
                                                   all_or_nothing=args.all_or_nothing)
        rows = [r.__dict__ for r in report.rows]
        if args.json:
            emit_json({"ok": report.ok, "committed": report.committed, "rows": rows})
        else:
            emit_table(rows, ["row", "ok", "id", "error"])
            good = sum(r.ok for r in report.rows)
            print(f"{good} of {len(report.rows)} rows registered"
                  + ("" if report.committed else " (nothing kept: --all-or-nothing)"))
        return 0 if report.ok else EXIT_ERROR

    return await with_hub(settings, work)


async def cmd_devices_discovered(args: argparse.Namespace, settings: Settings) -> int:
    async def work(hub: Hub) -> int:
        found = await hub.registry.list_discovered()
        if args.json:
            emit_json(found)
        else:
            emit_table([{"plugin": d.plugin, "serial": d.info.serial, "kind": d.info.kind,
                         "model": d.info.model, "firmware": d.info.firmware,
                         "last_seen": d.last_seen.isoformat(timespec="seconds")}
                        for d in found],
                       ["plugin", "serial", "kind", "model", "firmware", "last_seen"])
        return 0

    return await with_hub(settings, work)


async def cmd_devices_adopt(args: argparse.Namespace, settings: Settings) -> int:
    async def work(hub: Hub) -> int:
        device = await hub.registry.adopt(args.serial, args.area, actor(), name=args.name,
                                          village_code=args.village)
        emit_json(device) if args.json else print(f"adopted {device.id} into {args.area}")
        return 0

    return await with_hub(settings, work)


async def cmd_groups_add(args: argparse.Namespace, settings: Settings) -> int:
    async def work(hub: Hub) -> int:
        group = Group(id=args.id, name=args.name or args.id, area_code=args.area,
                      description=args.description)
        await hub.registry.create_group(group, actor())
        print(f"group {group.id} created")
        return 0

    return await with_hub(settings, work)


async def cmd_groups_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(hub: Hub) -> int:
        groups = [{**g.model_dump(), "devices": n} for g, n in await hub.registry.list_groups()]
        emit_json(groups) if args.json else emit_table(groups, ["id", "name", "area_code",
                                                                "devices"])
        return 0

    return await with_hub(settings, work)


async def cmd_groups_update(args: argparse.Namespace, settings: Settings) -> int:
    async def work(hub: Hub) -> int:
        given = {k: v for k, v in (("name", args.name), ("description", args.description))
                 if v is not None}
        group = await hub.registry.update_group(args.id, GroupChanges(**given), actor())
        emit_json(group.model_dump()) if args.json else print(
            f"group {group.id}: {group.name}")
        return 0

    return await with_hub(settings, work)


async def cmd_groups_remove(args: argparse.Namespace, settings: Settings) -> int:
    async def work(hub: Hub) -> int:
        members = await hub.registry.delete_group(args.id, actor())
        print(f"group {args.id} deleted ({members} devices were in it; they stay registered)")
        return 0

    return await with_hub(settings, work)


async def cmd_groups_members(args: argparse.Namespace, settings: Settings) -> int:
    async def work(hub: Hub) -> int:
        if args.add:
            await hub.registry.set_membership(args.id, args.add, actor(), member=True)
        if args.remove:
            await hub.registry.set_membership(args.id, args.remove, actor(), member=False)
        members = await hub.registry.list_devices(group=args.id)
        emit_json([d.id for d in members]) if args.json else print(
            f"{args.id}: {', '.join(d.id for d in members) or '(empty)'}")
        return 0

    return await with_hub(settings, work)


@remote
async def cmd_audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    async def work(backend: Backend) -> int:
        result = await backend.verify_audit()
        if args.json:
            emit_json(result)
        elif result["ok"]:
            print(f"audit log intact: {result['entries']} entries, hash chain verified")
        else:
            print(f"audit log TAMPERED at entry {result['first_bad_seq']}: "
                  f"{result['reason']}")
        return 0 if result["ok"] else EXIT_ERROR

    return await with_backend(settings, args.url, work)


async def cmd_audit_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(hub: Hub) -> int:
        rows = [{"seq": r.seq, "at": r.at.isoformat(timespec="seconds"), "actor": r.actor,
                 "action": r.action, "target": r.target, "outcome": r.outcome,
                 "detail": r.detail}
                for r in await hub.store.audit.entries(limit=args.limit, actor=args.actor,
                                                       action=args.action)]
        emit_json(rows) if args.json else emit_table(rows, ["seq", "at", "actor", "action",
                                                            "target", "outcome"])
        return 0

    return await with_hub(settings, work)


async def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from .core.serve import serve

    return await serve(settings, demo=args.demo, demo_devices=args.demo_devices)


async def cmd_workers_list(args: argparse.Namespace, settings: Settings) -> int:
    from .core.workers import list_workers

    async def work(hub: Hub) -> int:
        rows = await list_workers(hub.store, settings.worker_timeout)
        if args.json:
            emit_json(rows)
        else:
            emit_table(rows, ["id", "role", "alive", "heartbeat_age_s", "host", "pid",
                              "statuses", "devices", "polled", "api"])
        return 0

    return await with_hub(settings, work)


def cmd_spec(args: argparse.Namespace, settings: Settings) -> int:
    from .core.api.openapi import render
    from .schemas.export import write

    for path in write(Path(args.dir)):
        print(path)
    openapi = Path(args.dir) / "openapi.json"
    openapi.write_text(render(), encoding="utf-8")
    print(openapi)
    return 0


# -- parser --------------------------------------------------------------------------------------


def add(parent: Any, name: str, handler: Callable[..., Any], help_: str,
        *, json_flag: bool = True) -> argparse.ArgumentParser:
    """Add a subcommand whose ``handler(args, settings)`` returns an exit code (or a coroutine
    of one). Modules that add command groups use this too."""
    p: argparse.ArgumentParser = parent.add_parser(name, help=help_, description=help_)
    p.set_defaults(handler=handler)
    if json_flag:
        p.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def group(sub: Any, name: str, help_: str) -> Any:
    """A command group (``ttcs NAME ACTION``)."""
    return sub.add_parser(name, help=help_).add_subparsers(dest="cmd", metavar="ACTION",
                                                           required=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ttcs", description="TTCS Hub: run the loudspeakers and bulletin boards of every "
        "vendor from one place.")
    parser.add_argument("--version", action="version", version=f"ttcs-hub {__version__}")
    parser.add_argument("--settings", dest="settings_file", metavar="FILE",
                        help="settings file (YAML); env TTCS_* overrides it (or TTCS_CONFIG)")
    parser.add_argument("--url", default=os.environ.get("TTCS_URL") or None,
                        help="talk to the hub running at URL (its API) instead of the local "
                        "store; token from TTCS_TOKEN_FILE or TTCS_TOKEN (env TTCS_URL)")
    sub = parser.add_subparsers(dest="group", metavar="COMMAND")

    plugins = group(sub, "plugins", "installed plugins")
    add(plugins, "list", cmd_plugins_list, "list plugins, loaded or refused with the reason")

    sims = group(sub, "sim", "device simulators")
    add(sims, "list", cmd_sim_list, "list the simulators the installed plugins provide")
    p = add(sims, "run", cmd_sim_run, "run simulated devices in the foreground", json_flag=False)
    p.add_argument("name")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="device port (0 = free port)")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--broker", help="MQTT broker URL, for MQTT devices")
    p.add_argument("--serial-prefix")
    p.add_argument("--control-port", type=int, default=0, help="control-plane HTTP port")
    p.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="simulator-specific option (repeatable)")

    areas = group(sub, "areas", "administrative areas")
    p = add(areas, "import", cmd_areas_import, "import areas from YAML/CSV or the official list")
    p.add_argument("file", nargs="?")
    p.add_argument("--official", metavar="PROVINCE_CODE",
                   help="seed a province's communes and wards from the official list")
    p = add(areas, "list", cmd_areas_list, "list areas")
    p.add_argument("--parent")
    p.add_argument("--type")
    p.add_argument("--under", help="only this area and everything below it")
    p = add(areas, "merge", cmd_areas_merge, "merge areas into one (moves devices and groups)")
    p.add_argument("codes", nargs="+")
    p.add_argument("--into", required=True)

    devices = group(sub, "devices", "devices")
    p = add(devices, "add", cmd_devices_add, "probe and register a device")
    p.add_argument("--plugin", required=True)
    p.add_argument("--kind", required=True, choices=[k.value for k in DeviceKind])
    p.add_argument("--area", required=True)
    p.add_argument("--village")
    p.add_argument("--name")
    p.add_argument("--parent", help="parent device id (via_device)")
    p.add_argument("--group", action="append")
    p.add_argument("--config", action="append", metavar="KEY=VALUE",
                   help="a plugin setting; KEY=@FILE reads the value from FILE (secrets)")
    p = add(devices, "reconfigure", cmd_devices_reconfigure,
            "change a device's settings (new address, new token); probed, identity kept")
    p.add_argument("id")
    p.add_argument("--config", action="append", metavar="KEY=VALUE", required=True,
                   help="a plugin setting; KEY=@FILE reads the value from FILE (secrets)")
    p = add(devices, "list", cmd_devices_list, "list devices")
    for flag in ("--area", "--kind", "--plugin", "--group", "--connectivity", "--search"):
        p.add_argument(flag)
    p.add_argument("--limit", type=int)
    p.add_argument("--offset", type=int, default=0)
    p = add(devices, "show", cmd_devices_show, "one device and its last known status",
            json_flag=False)
    p.add_argument("id")
    p = add(devices, "remove", cmd_devices_remove, "remove a device", json_flag=False)
    p.add_argument("id")
    p = add(devices, "status", cmd_devices_status, "read a device's status (live)")
    p.add_argument("id")
    p.add_argument("--cached", action="store_true", help="last status the hub stored")
    p = add(devices, "command", cmd_devices_command, "send a command (JSON) to a device")
    p.add_argument("id")
    p.add_argument("command", help='e.g. \'{"type": "set_volume", "volume": 40}\'')
    p = add(devices, "import", cmd_devices_import, "register devices from CSV or YAML")
    p.add_argument("file")
    p.add_argument("--all-or-nothing", action="store_true")
    add(devices, "discovered", cmd_devices_discovered, "devices that announced themselves")
    p = add(devices, "adopt", cmd_devices_adopt, "register a discovered device into an area")
    p.add_argument("serial")
    p.add_argument("--area", required=True)
    p.add_argument("--village")
    p.add_argument("--name")

    groups = group(sub, "groups", "device groups")
    p = add(groups, "add", cmd_groups_add, "create a group", json_flag=False)
    p.add_argument("id")
    p.add_argument("--name")
    p.add_argument("--area")
    p.add_argument("--description")
    add(groups, "list", cmd_groups_list, "list groups")
    p = add(groups, "update", cmd_groups_update, "rename a group or change its description")
    p.add_argument("id")
    p.add_argument("--name")
    p.add_argument("--description")
    p = add(groups, "remove", cmd_groups_remove, "delete a group (its devices stay)",
            json_flag=False)
    p.add_argument("id")
    p = add(groups, "members", cmd_groups_members, "show or change a group's devices")
    p.add_argument("id")
    p.add_argument("--add", nargs="+", metavar="DEVICE")
    p.add_argument("--remove", nargs="+", metavar="DEVICE")

    from .core.content.cli import register as register_content

    register_content(sub)

    audit = group(sub, "audit", "the audit trail")
    add(audit, "verify", cmd_audit_verify, "check the audit log's hash chain")
    p = add(audit, "list", cmd_audit_list, "recent audit entries")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--actor")
    p.add_argument("--action")

    from .core.access.cli import register as register_access

    register_access(sub)  # users, tokens

    from .core.schedule.cli import register as register_schedule

    register_schedule(sub)
    from .cli_monitor import register as register_monitor

    register_monitor(sub)  # playlog, alarms
    from .conformance.cli import register as register_conformance

    register_conformance(sub)  # certify, plugin new

    p = add(sub, "serve", cmd_serve, "run the hub", json_flag=False)
    p.add_argument("--config", dest="settings_file", metavar="FILE", help="settings file")
    p.add_argument("--host", help="API host")
    p.add_argument("--port", type=int, help="API port")
    p.add_argument("--embedded-broker", action="store_true", default=None,
                   help="start the in-process MQTT broker on TTCS_MQTT_URL's port")
    p.add_argument("--demo", action="store_true",
                   help="embedded broker, the Huế areas and a simulated fleet")
    p.add_argument("--demo-devices", type=int, default=12)
    p.add_argument("--worker", action="store_true", default=None,
                   help="run as one of several worker processes sharing the devices "
                   "(PostgreSQL and an external MQTT 5 broker; env TTCS_WORKER)")

    workers = group(sub, "workers", "hub worker processes (ttcs serve --worker)")
    add(workers, "list", cmd_workers_list, "the workers, their role and their heartbeat")

    p = add(sub, "spec", cmd_spec, "write the JSON Schema, AsyncAPI and OpenAPI files",
            json_flag=False)
    p.add_argument("dir", nargs="?", default="docs/spec")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        if args.url and args.handler not in REMOTE:
            raise CliError(f"ttcs {args.group} {getattr(args, 'cmd', '')} works on the hub's "
                           "machine only (without --url / TTCS_URL)")
        overrides: dict[str, Any] = {}
        if args.handler is cmd_serve:
            overrides = {"api_host": args.host, "api_port": args.port,
                         "embedded_broker": True if args.demo else args.embedded_broker,
                         "worker": args.worker}
        settings = load_settings(args.settings_file, **overrides)
        configure(settings.log_format, "info" if args.handler is cmd_serve
                  else ("debug" if settings.log_level == "debug" else "warning"))
        result = args.handler(args, settings)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        return int(result)
    except KeyboardInterrupt:
        return 130
    except (CliError, TTCSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except ValidationError as exc:
        print(f"error: {explain(exc)}", file=sys.stderr)
        return EXIT_ERROR


__all__ = ["main"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
