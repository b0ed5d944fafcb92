"""``ttcs playlog …`` and ``ttcs alarms …``: proof of play and alarms from the command line.

Both read the store directly (no running hub needed). Dates on the command line are local
dates in Asia/Ho_Chi_Minh, the calendar the reports are made in; ``--to`` is inclusive.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from .cli import CliError, add, emit_json, emit_table, group, with_hub
from .core.config import Settings
from .core.health import AlarmLog
from .core.hub import Hub
from .core.playlog import PlayFilter, PlayLog, export_csv, export_json

LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")


def local_bound(text: str | None, *, end: bool) -> datetime | None:
    """A period bound from a local date (``--to`` date means the end of that day) or an ISO
    date-time (local when it has no offset)."""
    if not text:
        return None
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime.combine(day + timedelta(days=1 if end else 0),
                                    datetime.min.time(), LOCAL)
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise CliError(f"not a date (YYYY-MM-DD) or date-time (ISO 8601): {text!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=LOCAL)


async def cmd_playlog_export(args: argparse.Namespace, settings: Settings) -> int:
    since, until = local_bound(args.since, end=False), local_bound(args.until, end=True)
    if since and until and until <= since:
        raise CliError("--to must not be before --from")
    where = PlayFilter(area=args.area, since=since, until=until, broadcast_id=args.broadcast,
                       content_id=args.content, device_id=args.device)

    async def work(hub: Hub) -> int:
        if args.area:
            await hub.registry.get_area(args.area)  # a typo gets a clear error, not 0 rows
        playlog = PlayLog(hub.store, skew_tolerance=settings.clock_skew_tolerance)
        # a one-shot command: a blocking open blocks nothing else
        out: TextIO = (open(args.output, "w", encoding="utf-8", newline="")  # noqa: SIM115, ASYNC230
                       if args.output else sys.stdout)
        try:
            writer = export_csv if args.format == "csv" else export_json
            count = await writer(playlog.stream(where), out)
        finally:
            if args.output:
                out.close()
        if args.output:
            print(f"{count} play events written to {Path(args.output)}")
        return 0

    return await with_hub(settings, work)


async def cmd_alarms_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(hub: Hub) -> int:
        alarms = await AlarmLog(hub.store).list(active=args.active, area=args.area,
                                                device_id=args.device, code=args.code,
                                                limit=args.limit)
        if args.json:
            emit_json(alarms)
            return 0
        rows: list[dict[str, Any]] = [{
            "raised": a.raised_at.astimezone(LOCAL).strftime("%Y-%m-%d %H:%M:%S"),
            "cleared": a.cleared_at.astimezone(LOCAL).strftime("%Y-%m-%d %H:%M:%S")
            if a.cleared_at else "ACTIVE",
            "device": a.device_id, "area": a.area_code, "code": a.code,
            "severity": a.severity.value, "source": a.source, "detail": a.detail}
            for a in alarms]
        emit_table(rows, ["raised", "cleared", "device", "area", "code", "severity", "source",
                          "detail"])
        return 0

    return await with_hub(settings, work)


def register(sub: Any) -> None:
    """Add the ``playlog`` and ``alarms`` command groups to the ``ttcs`` parser."""
    playlog = group(sub, "playlog", "proof of play: what played where and when")
    p = add(playlog, "export", cmd_playlog_export,
            "export play events (started/finished/failed/interrupted) as CSV or JSON",
            json_flag=False)
    p.add_argument("--area", help="this area, everything below it and areas merged into it")
    p.add_argument("--from", dest="since", metavar="DATE",
                   help="first local day (YYYY-MM-DD) or an ISO date-time")
    p.add_argument("--to", dest="until", metavar="DATE",
                   help="last local day, inclusive (or an ISO date-time, exclusive)")
    p.add_argument("--format", choices=["csv", "json"], default="csv")
    p.add_argument("--broadcast", metavar="ID")
    p.add_argument("--content", metavar="ID")
    p.add_argument("--device", metavar="ID")
    p.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")

    alarms = group(sub, "alarms", "device alarms (raised and cleared by the hub)")
    p = add(alarms, "list", cmd_alarms_list, "alarms, newest first")
    p.add_argument("--active", action="store_true", help="only alarms not cleared")
    p.add_argument("--area", help="this area and everything below it")
    p.add_argument("--device", metavar="ID")
    p.add_argument("--code", help="e.g. offline_too_long, on_battery, high_vswr")
    p.add_argument("--limit", type=int, default=200)
