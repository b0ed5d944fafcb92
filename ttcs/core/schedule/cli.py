"""CLI: ``ttcs broadcast ...``, ``ttcs schedule ...`` and ``ttcs policy ...``."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ...schemas import Broadcast, Schedule, Targets
from ...schemas.errors import explain
from ..config import Settings
from ..errors import InvalidInput
from ..hub import Hub
from .policy import TZ, Policy, describe
from .service import BroadcastService, new_broadcast_id


def register(sub: Any) -> None:
    from ...cli import REMOTE, add, group

    REMOTE.update({cmd_create, cmd_list, cmd_cancel})

    broadcast = group(sub, "broadcast", "broadcasts: create, list, cancel, decide")
    p = add(broadcast, "create", cmd_create, "create a broadcast (refused if it breaks policy)")
    p.add_argument("--content", required=True)
    p.add_argument("--area", action="append", default=[], help="target area (and below)")
    p.add_argument("--group", action="append", default=[])
    p.add_argument("--device", action="append", default=[])
    p.add_argument("--kind", action="append", default=[], help="only these device kinds")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--at", help="start, ISO 8601 (local time if no offset)")
    when.add_argument("--rrule", help="RFC 5545 rule in Asia/Ho_Chi_Minh, e.g. "
                      "'FREQ=WEEKLY;BYDAY=MO,WE,FR;BYHOUR=6;BYMINUTE=30'")
    p.add_argument("--start", help="first occurrence for --rrule (ISO 8601)")
    p.add_argument("--level", choices=["normal", "priority", "emergency"])
    p.add_argument("--volume", type=int)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--valid-from")
    p.add_argument("--valid-until")
    p.add_argument("--owner", help="area of the issuing office (a commune's own items need "
                   "no decision from it)")
    p = add(broadcast, "list", cmd_list, "list broadcasts")
    p.add_argument("--state")
    p.add_argument("--limit", type=int, default=100)
    p = add(broadcast, "show", cmd_show, "one broadcast with its delivery counts")
    p.add_argument("id")
    p = add(broadcast, "cancel", cmd_cancel, "cancel a broadcast", json_flag=False)
    p.add_argument("id")
    for name, accept in (("accept", True), ("decline", False)):
        p = add(broadcast, name, cmd_decide, f"{name} a normal item offered to a commune",
                json_flag=False)
        p.add_argument("id")
        p.add_argument("--commune", required=True)
        p.set_defaults(accept=accept)

    schedule = group(sub, "schedule", "device timelines")
    p = add(schedule, "explain", cmd_explain, "a device's day: what plays when, and why")
    p.add_argument("device")
    p.add_argument("--date", help="YYYY-MM-DD (local); default today")
    p = add(schedule, "order", cmd_order, "set a commune's order of its priority items",
            json_flag=False)
    p.add_argument("commune")
    p.add_argument("broadcasts", nargs="+")

    policy = group(sub, "policy", "broadcast policy per area")
    p = add(policy, "show", cmd_policy_show, "the effective policy of an area")
    p.add_argument("area")
    p = add(policy, "set", cmd_policy_set, "set an area's own rules (YAML file)",
            json_flag=False)
    p.add_argument("area")
    p.add_argument("file")


def _service(hub: Hub) -> BroadcastService:
    if hub.broadcasts is None:
        raise InvalidInput("the content library is not available in this hub")
    return hub.broadcasts


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput(f"{text!r} is not an ISO 8601 time (e.g. 2026-12-01T06:30)") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=TZ)


def cmd_create(args: argparse.Namespace, settings: Settings) -> Any:
    from ...cli import actor, emit_json
    from ...cli_backend import Backend, with_backend

    try:
        if args.rrule:
            schedule = Schedule(kind="recurring", rrule=args.rrule, at=_when(args.start))
        elif args.at:
            schedule = Schedule(kind="at", at=_when(args.at))
        else:
            schedule = Schedule()
        broadcast = Broadcast(
            id=new_broadcast_id(), content_id=args.content, schedule=schedule,
            targets=Targets(areas=args.area, groups=args.group, devices=args.device,
                            kinds=args.kind),
            level=args.level, volume=args.volume, repeat=args.repeat,
            valid_from=_when(args.valid_from), valid_until=_when(args.valid_until))
    except ValidationError as exc:
        raise InvalidInput(explain(exc)) from exc

    async def work(backend: Backend) -> int:
        summary = await backend.create_broadcast(broadcast, actor(), args.owner)
        if args.json:
            emit_json(summary)
        else:
            offers = summary["offers"]
            waiting = [c for c, st in offers.items() if st == "offered"]
            print(f"broadcast {summary['id']}: {summary['level']} to {summary['devices']} "
                  f"device(s) in {len(offers)} commune(s)"
                  + (f"; waiting for {len(waiting)} commune(s) to accept" if waiting else ""))
        return 0

    return with_backend(settings, args.url, work)


def cmd_list(args: argparse.Namespace, settings: Settings) -> Any:
    from ...cli import emit_json, emit_table
    from ...cli_backend import Backend, with_backend

    async def work(backend: Backend) -> int:
        items = await backend.list_broadcasts(state=args.state, limit=args.limit)
        if args.json:
            emit_json(items)
        else:
            emit_table([{"id": b.id, "content": b.content_id, "level": b.level,
                         "schedule": b.schedule.rrule or (b.schedule.at.isoformat()
                                                          if b.schedule.at else "now"),
                         "state": b.state} for b in items],
                       ["id", "content", "level", "schedule", "state"])
        return 0

    return with_backend(settings, args.url, work)


def cmd_show(args: argparse.Namespace, settings: Settings) -> Any:
    from ...cli import emit_json, with_hub

    async def work(hub: Hub) -> int:
        from sqlalchemy import func, select

        from ..store.tables import OutboxRow

        service = _service(hub)
        broadcast = await service.get(args.id)
        async with hub.store.sessions() as s:
            counts = dict((await s.execute(select(OutboxRow.state, func.count()).where(
                OutboxRow.broadcast_id == args.id).group_by(OutboxRow.state))).all())
        emit_json({"broadcast": broadcast, "devices": len(await service.targeted_devices(
            args.id)), "deliveries": counts})
        return 0

    return with_hub(settings, work)


def cmd_cancel(args: argparse.Namespace, settings: Settings) -> Any:
    from ...cli import actor
    from ...cli_backend import Backend, with_backend

    async def work(backend: Backend) -> int:
        await backend.cancel_broadcast(args.id, actor())
        print(f"cancelled {args.id}")
        return 0

    return with_backend(settings, args.url, work)


def cmd_decide(args: argparse.Namespace, settings: Settings) -> Any:
    from ...cli import actor, with_hub

    async def work(hub: Hub) -> int:
        await _service(hub).decide(args.id, args.commune, args.accept, actor())
        print(f"{'accepted' if args.accept else 'declined'} {args.id} for {args.commune}")
        return 0

    return with_hub(settings, work)


def cmd_order(args: argparse.Namespace, settings: Settings) -> Any:
    from ...cli import actor, with_hub

    async def work(hub: Hub) -> int:
        await _service(hub).order_priority(args.commune, args.broadcasts, actor())
        print(f"{args.commune}: priority order {' > '.join(args.broadcasts)}")
        return 0

    return with_hub(settings, work)


def cmd_explain(args: argparse.Namespace, settings: Settings) -> Any:
    from ...cli import emit_json, emit_table, with_hub

    day = _when(f"{args.date}T00:00") if args.date else datetime.now(UTC)
    assert day is not None

    async def work(hub: Hub) -> int:
        items = await _service(hub).explain(args.device, day)
        rows = [i.as_dict() for i in items]
        if args.json:
            emit_json(rows)
        else:
            for row in rows:
                row["start"] = (row["start"] or "")[11:19] or "-"
                row["requested"] = row["requested"][11:19]
            emit_table(rows, ["start", "requested", "level", "broadcast_id", "content_id",
                              "reason"])
        return 0

    return with_hub(settings, work)


def cmd_policy_show(args: argparse.Namespace, settings: Settings) -> Any:
    from ...cli import emit_json, with_hub

    async def work(hub: Hub) -> int:
        service = _service(hub)
        policy = await service.policies.effective(args.area)
        data = {"area": args.area, "policy_file": service.policies.file.name,
                "effective": describe(policy)}
        if args.json:
            emit_json(data)
        else:
            print(yaml.safe_dump(data, allow_unicode=True, sort_keys=False).rstrip())
        return 0

    return with_hub(settings, work)


def cmd_policy_set(args: argparse.Namespace, settings: Settings) -> Any:
    from ...cli import actor, with_hub

    try:
        policy = Policy.model_validate(yaml.safe_load(Path(args.file).read_text("utf-8")))
    except ValidationError as exc:
        raise InvalidInput(f"{args.file}: {explain(exc)}") from exc
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidInput(f"cannot read {args.file}: {exc}") from exc

    async def work(hub: Hub) -> int:
        await _service(hub).policies.set(args.area, policy, actor())
        print(f"policy of {args.area} set")
        return 0

    return with_hub(settings, work)
