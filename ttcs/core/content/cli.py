"""``ttcs content ...`` and ``ttcs approvers ...``: the content library from the command line."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from ...cli import CliError, actor, add, emit_json, emit_table, group, with_hub
from ...schemas import ApprovalState, BulletinLevel, Content, ContentKind, IssuingLevel
from ..config import Settings
from ..errors import ContentNotDispatchable
from ..hub import Hub
from .library import EDITABLE, ContentDraft


def _row(c: Content) -> dict[str, Any]:
    return {"id": c.id, "state": c.state.value, "level": c.level.value,
            "source": c.source_level.value, "kind": c.kind.value, "area": c.area_code,
            "title": c.title if len(c.title) <= 48 else c.title[:47] + "…"}


def _file(path: str | None) -> Path | None:
    if path is None:
        return None
    file = Path(path)
    if not file.is_file():
        raise CliError(f"no such file: {path}")
    return file


async def cmd_content_add(args: argparse.Namespace, settings: Settings) -> int:
    if bool(args.file) == bool(args.text):
        raise CliError("give the body as --file FILE (audio, image, video) or --text TEXT")
    draft = ContentDraft(title=args.title, kind=args.kind, text=args.text,
                         language=args.language, level=args.level,
                         source_level=args.source_level, issuer=args.issuer,
                         area_code=args.area)

    async def work(hub: Hub) -> int:
        item = await hub.content.add(draft, actor(), file=_file(args.file))
        emit_json(item) if args.json else print(
            f"added {item.id} ({item.kind.value}, {item.state.value}): {item.title}")
        return 0

    return await with_hub(settings, work)


async def cmd_content_edit(args: argparse.Namespace, settings: Settings) -> int:
    changes = {k: getattr(args, k) for k in EDITABLE if getattr(args, k, None) is not None}
    if not changes and not args.file:
        raise CliError("nothing to change (give --title, --text, --file, --level, ...)")

    async def work(hub: Hub) -> int:
        item = await hub.content.edit(args.id, changes, actor(), file=_file(args.file))
        emit_json(item) if args.json else print(f"{item.id} is now {item.state.value}")
        return 0

    return await with_hub(settings, work)


async def cmd_content_submit(args: argparse.Namespace, settings: Settings) -> int:
    async def work(hub: Hub) -> int:
        item = await hub.content.submit(args.id, actor())
        emit_json(item) if args.json else print(f"{item.id} submitted for approval")
        return 0

    return await with_hub(settings, work)


async def cmd_content_approve(args: argparse.Namespace, settings: Settings) -> int:
    async def work(hub: Hub) -> int:
        item = await hub.content.approve(args.id, args.approver, actor())
        assert item.approval is not None
        emit_json(item) if args.json else print(
            f"{item.id} approved by {item.approval.approved_by} "
            f"(key {item.approval.key_id}, signed)")
        return 0

    return await with_hub(settings, work)


async def cmd_content_reject(args: argparse.Namespace, settings: Settings) -> int:
    async def work(hub: Hub) -> int:
        item = await hub.content.reject(args.id, args.approver, args.reason, actor())
        emit_json(item) if args.json else print(f"{item.id} rejected: {args.reason}")
        return 0

    return await with_hub(settings, work)


async def cmd_content_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(hub: Hub) -> int:
        items = await hub.content.list_content(state=args.state, area=args.area,
                                               limit=args.limit)
        if args.json:
            emit_json(items)
        else:
            emit_table([_row(c) for c in items],
                       ["id", "state", "level", "source", "kind", "area", "title"])
        return 0

    return await with_hub(settings, work)


async def cmd_content_show(args: argparse.Namespace, settings: Settings) -> int:
    async def work(hub: Hub) -> int:
        item = await hub.content.get(args.id)
        try:
            await hub.content.verify_approval(item)
            check: dict[str, Any] = {"dispatchable": True}
        except ContentNotDispatchable as exc:
            check = {"dispatchable": False, "reason": str(exc),
                     "error": type(exc).__name__}
        history = [{**d.__dict__, "at": d.at.isoformat(timespec="seconds")}
                   for d in await hub.content.history(args.id)]
        media_url = (hub.content.signed_url(item.media.sha256) if item.media else None)
        emit_json({"content": item, **check, "history": history, "media_url": media_url})
        return 0

    return await with_hub(settings, work)


async def cmd_content_verify(args: argparse.Namespace, settings: Settings) -> int:
    async def work(hub: Hub) -> int:
        await hub.content.verify_approval(args.id)  # raises: exit 1 with the reason
        print(f"{args.id}: approved, signature and media verified")
        return 0

    return await with_hub(settings, work)


async def cmd_content_speak(args: argparse.Namespace, settings: Settings) -> int:
    async def work(hub: Hub) -> int:
        item = await hub.content.get(args.id)
        rendered, choice = await hub.content.speak(item, args.area)
        data = await hub.content.media.read(rendered.sha256)
        await asyncio.to_thread(Path(args.out).write_bytes, data)
        result = {"out": args.out, "engine": choice.engine, "voice": choice.voice,
                  "because": choice.reason, "seconds": round(rendered.duration, 2),
                  "bytes": rendered.size, "sha256": rendered.sha256, "cached": rendered.cached}
        emit_json(result) if args.json else print(
            f"wrote {args.out}: {result['seconds']} s in voice {choice.voice} "
            f"({choice.reason}){', from cache' if rendered.cached else ''}")
        return 0

    return await with_hub(settings, work)


async def cmd_approvers_add(args: argparse.Namespace, settings: Settings) -> int:
    async def work(hub: Hub) -> int:
        approver = await hub.content.approvers.add(args.name, IssuingLevel(args.level),
                                                   args.area, actor())
        emit_json(approver) if args.json else print(
            f"approver {approver.name}: {approver.level.value} level, area "
            f"{approver.area_code or 'all'}, key {approver.key_id}")
        return 0

    return await with_hub(settings, work)


async def cmd_approvers_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(hub: Hub) -> int:
        approvers = await hub.content.approvers.list_approvers()
        if args.json:
            emit_json(approvers)
        else:
            emit_table([a.model_dump(mode="json") for a in approvers],
                       ["name", "level", "area_code", "key_id"])
        return 0

    return await with_hub(settings, work)


def _levels(p: argparse.ArgumentParser, *, required: bool) -> None:
    default = None if not required else BulletinLevel.NORMAL.value
    p.add_argument("--level", choices=[v.value for v in BulletinLevel], default=default,
                   help="bulletin level (default normal)" if required else "bulletin level")
    default = None if not required else IssuingLevel.COMMUNE.value
    p.add_argument("--source-level", dest="source_level",
                   choices=[v.value for v in IssuingLevel], default=default,
                   help="level of government that issues it (and must approve it)")


def register(sub: Any) -> None:
    """Add the ``content`` and ``approvers`` command groups to the ``ttcs`` parser."""
    content = group(sub, "content", "content library and approval")
    p = add(content, "add", cmd_content_add, "add a draft item: a file (audio, image, video) "
            "or a text bulletin")
    p.add_argument("--title", required=True)
    p.add_argument("--kind", choices=[k.value for k in ContentKind],
                   help="default: from the file's type, or text")
    p.add_argument("--file", help="audio (WAV, MP3, ...), image or video file")
    p.add_argument("--text", help="text of the bulletin (spoken by TTS on speakers)")
    _levels(p, required=True)
    p.add_argument("--issuer", required=True, help='issuing agency, e.g. "UBND xã Phú Vinh"')
    p.add_argument("--area", help="owning area code (required unless central level)")
    p.add_argument("--language", default="vi", help="BCP 47 tag (default vi)")

    p = add(content, "edit", cmd_content_edit, "change an item (it becomes a draft again)")
    p.add_argument("id")
    p.add_argument("--title")
    p.add_argument("--text")
    p.add_argument("--file")
    _levels(p, required=False)
    p.add_argument("--issuer")
    p.add_argument("--area", dest="area_code")
    p.add_argument("--language")

    p = add(content, "submit", cmd_content_submit, "submit a draft for approval")
    p.add_argument("id")
    p = add(content, "approve", cmd_content_approve, "approve and sign a submitted item")
    p.add_argument("id")
    p.add_argument("--as", dest="approver", required=True, metavar="APPROVER")
    p = add(content, "reject", cmd_content_reject, "reject a submitted item")
    p.add_argument("id")
    p.add_argument("--as", dest="approver", required=True, metavar="APPROVER")
    p.add_argument("--reason", required=True)
    p = add(content, "list", cmd_content_list, "list items, newest first")
    p.add_argument("--state", choices=[s.value for s in ApprovalState])
    p.add_argument("--area", help="owned by this area or below")
    p.add_argument("--limit", type=int)
    p = add(content, "show", cmd_content_show, "one item, its approval history and whether "
            "it may be dispatched", json_flag=False)
    p.add_argument("id")
    p = add(content, "verify", cmd_content_verify, "check an item as the dispatcher does "
            "(exit 1 if it must not be played)", json_flag=False)
    p.add_argument("id")
    p = add(content, "speak", cmd_content_speak, "render an item's text in an area's voice")
    p.add_argument("id")
    p.add_argument("--area", required=True)
    p.add_argument("--out", required=True, help="WAV file to write")

    approvers = group(sub, "approvers", "people who approve content")
    p = add(approvers, "add", cmd_approvers_add, "add an approver (makes their signing key)")
    p.add_argument("name")
    p.add_argument("--level", required=True, choices=[v.value for v in IssuingLevel])
    p.add_argument("--area", help="area code (required unless central level)")
    add(approvers, "list", cmd_approvers_list, "list approvers and their key ids")
