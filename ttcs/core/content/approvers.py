"""Approvers: who may approve content of which issuing level, for which part of the area tree.

Each approver holds an Ed25519 key pair made when they are added; the private half is stored
sealed with the store's secret box and is used only to sign approvals, the public half is
published (``GET /keys``) so devices can check what they are told to play. Until the API brings
users and roles, an approver is named on the command line (``--as``).

Rights: an approver approves items issued *at their own level* (a commune approver does not
approve a province's bulletin, and a province approver does not put its name under a
commune's) whose owning area lies in the subtree of the approver's area.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ...schemas import COMMUNE_LEVEL, AreaType, Content, IssuingLevel, Model
from ...schemas.base import Identifier
from ..errors import ApprovalDenied, Conflict, InvalidInput, NotFound
from ..registry import Registry
from ..store import Store
from ..store.tables import ApproverRow
from .signing import b64u, b64u_decode, jwk, key_id, new_keypair

#: Area types an issuing level belongs to (an approver's area, and an item's owning area).
LEVEL_AREA_TYPES: dict[IssuingLevel, frozenset[AreaType]] = {
    IssuingLevel.CENTRAL: frozenset({AreaType.COUNTRY}),
    IssuingLevel.PROVINCE: frozenset({AreaType.PROVINCE, AreaType.MUNICIPALITY}),
    IssuingLevel.DISTRICT: frozenset({AreaType.DISTRICT}),
    IssuingLevel.COMMUNE: COMMUNE_LEVEL,
}


class Approver(Model):
    """An approver as shown to people and devices (never the private key)."""

    name: str = Field(min_length=1, max_length=200)
    level: IssuingLevel
    area_code: Identifier | None = Field(default=None, description="None: every area "
                                         "(central level only)")
    key_id: str
    public_key: str = Field(description="Ed25519 public key, base64url (32 bytes)")
    created_at: datetime | None = None


def _approver(row: ApproverRow) -> Approver:
    return Approver(name=row.name, level=IssuingLevel(row.level), area_code=row.area_code,
                    key_id=row.key_id, public_key=row.public_key, created_at=row.created_at)


async def check_area_fits_level(registry: Registry, level: IssuingLevel, area_code: str | None,
                                what: str) -> None:
    """Refuse an area whose type does not belong to ``level`` (e.g. a commune item owned by a
    province), which could never be approved by anyone."""
    if area_code is None:
        if level is not IssuingLevel.CENTRAL:
            raise InvalidInput(f"{what} of {level.value} level needs an area (--area CODE)")
        return
    area = await registry.get_area(area_code)
    allowed = LEVEL_AREA_TYPES[level]
    if area.type not in allowed:
        raise InvalidInput(
            f"{what} of {level.value} level cannot belong to area {area.code} ({area.name}), "
            f"which is a {area.type.value}; {level.value} level goes with "
            f"{', '.join(sorted(t.value for t in allowed))}")


class ApproverBook:
    """The ``approvers`` table: add, list, look up, check rights."""

    def __init__(self, store: Store, registry: Registry) -> None:
        self.store = store
        self.registry = registry

    async def add(self, name: str, level: IssuingLevel, area_code: str | None,
                  actor: str) -> Approver:
        """Create an approver with a fresh key pair (audited)."""
        name, level = name.strip(), IssuingLevel(level)
        if not name:
            raise InvalidInput("an approver needs a name")
        await check_area_fits_level(self.registry, level, area_code, "an approver")
        private, public = new_keypair()
        row = ApproverRow(name=name, level=level.value, area_code=area_code,
                          key_id=key_id(public), public_key=b64u(public),
                          private_key=self.store.secrets.seal({"ed25519": b64u(private)}),
                          created_by=actor)
        try:
            async with self.store.sessions.begin() as s:
                if await s.get(ApproverRow, name) is not None:
                    raise Conflict(f"an approver named '{name}' exists already")
                s.add(row)
                await s.flush()
                await self.store.audit.record(actor, "approver.add", name, session=s, detail={
                    "level": level.value, "area_code": area_code, "key_id": row.key_id})
        except IntegrityError as exc:
            raise Conflict(f"an approver named '{name}' exists already") from exc
        return _approver(row)

    async def list_approvers(self) -> list[Approver]:
        async with self.store.sessions() as s:
            rows = (await s.execute(select(ApproverRow).order_by(ApproverRow.name))).scalars()
            return [_approver(r) for r in rows]

    async def get(self, name: str, session: AsyncSession | None = None) -> Approver:
        if session is not None:
            row = await session.get(ApproverRow, name)
        else:
            async with self.store.sessions() as s:
                row = await s.get(ApproverRow, name)
        if row is None:
            raise NotFound(f"no approver named '{name}' (see `ttcs approvers list`)")
        return _approver(row)

    async def by_key(self, kid: str) -> Approver | None:
        async with self.store.sessions() as s:
            row = (await s.execute(select(ApproverRow).where(ApproverRow.key_id == kid))
                   ).scalar_one_or_none()
        return _approver(row) if row else None

    async def private_key(self, name: str, session: AsyncSession) -> bytes:
        row = await session.get(ApproverRow, name)
        if row is None:
            raise NotFound(f"no approver named '{name}'")
        return b64u_decode(self.store.secrets.open(row.private_key)["ed25519"])

    async def refusal(self, approver: Approver, content: Content,
                      session: AsyncSession | None = None) -> str | None:
        """Why ``approver`` may not decide on ``content``, or None if they may."""
        if approver.level is not content.source_level:
            return (f"{approver.name} approves {approver.level.value}-level items; "
                    f"'{content.title}' was issued at {content.source_level.value} level")
        if approver.area_code is None:
            return None
        if content.area_code is None:
            return (f"{approver.name} approves only for area {approver.area_code} and below; "
                    f"'{content.title}' belongs to no area")
        if content.area_code not in await self.registry.subtree(approver.area_code, session):
            return (f"{approver.name} approves only for area {approver.area_code} and below; "
                    f"'{content.title}' belongs to area {content.area_code}")
        return None

    async def check_rights(self, approver: Approver, content: Content,
                           session: AsyncSession | None = None) -> None:
        if reason := await self.refusal(approver, content, session):
            raise ApprovalDenied(reason)

    async def jwks(self) -> list[dict[str, object]]:
        """Every approver's public key as a JWK with the approver's name, level and area."""
        return [jwk(b64u_decode(a.public_key), a.key_id, ttcs_role="approver",
                    ttcs_name=a.name, ttcs_level=a.level.value, ttcs_area=a.area_code)
                for a in await self.list_approvers()]
