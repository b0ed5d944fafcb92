"""The device registry: areas (a tree of any depth), devices, groups, discovered devices.

Every change made on behalf of a person goes through here and is audited in the same
transaction. Registering a device validates its plugin configuration, *probes* it (test before
configure) and keys it by the serial (or MAC) the device reports, never by its address.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog
from pydantic import BaseModel, SecretStr, ValidationError
from sqlalchemy import Select, delete, func, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ..schemas import (
    VILLAGE_LEVEL,
    Area,
    Connectivity,
    Device,
    DeviceChanges,
    DeviceInfo,
    DeviceKind,
    DeviceSpec,
    DeviceStatus,
    DiscoveredDevice,
    Group,
    GroupChanges,
    Location,
)
from ..schemas.errors import explain
from .areascope import covered_areas
from .errors import Conflict, InvalidInput, NotFound, UnknownPlugin
from .plugins import PluginManager
from .store import Store
from .store.tables import (
    AreaRow,
    DeviceGroupRow,
    DeviceRow,
    DeviceStateRow,
    DiscoveredRow,
    GroupRow,
)

log = structlog.get_logger("ttcs.registry")

#: ids per ``IN (...)`` list: one statement's bind parameters stay under the database's
#: limit (asyncpg 32767; SQLite 32766 unless built with more) with room for the rest
IN_CHUNK = 10_000

#: every column of the devices table, to select rows as plain tuples
DEVICE_COLUMNS = tuple(DeviceRow.__table__.columns)


class Prober(Protocol):
    """Probes a device: (plugin id, kind, validated config; the parent a child is reached
    through) -> what the device says it is."""

    def __call__(self, plugin_id: str, kind: DeviceKind, config: BaseModel, *,
                 parent_id: str | None = None) -> Awaitable[DeviceInfo]: ...


@dataclass
class RowReport:
    """Outcome of one row of a bulk import."""

    row: int
    ok: bool
    id: str | None = None
    error: str | None = None


@dataclass
class ImportReport:
    rows: list[RowReport] = field(default_factory=list)
    committed: bool = True

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)


def _area(row: AreaRow) -> Area:
    return Area(code=row.code, name=row.name, type=row.type, parent_code=row.parent_code)


class Registry:
    """Areas, devices and groups over the store."""

    def __init__(self, store: Store, plugins: PluginManager, prober: Prober) -> None:
        self.store = store
        self.plugins = plugins
        self._probe = prober
        #: called inside the merge transaction as ``hook(sources, into, session)`` so that
        #: what other services keep per area (schedules, policies) moves in the same step
        self.merge_hooks: list[Callable[[Sequence[str], str, AsyncSession], Awaitable[None]]] = []

    # -- areas --------------------------------------------------------------------------------

    async def import_areas(self, areas: Sequence[Area], actor: str) -> tuple[int, int]:
        """Create or update areas; parents may come in the same batch. Returns (new, updated)."""
        by_code = {a.code: a for a in areas}
        if len(by_code) != len(areas):
            dup = sorted({a.code for a in areas if sum(b.code == a.code for b in areas) > 1})
            raise InvalidInput(f"area code(s) listed twice: {', '.join(dup[:10])}")
        async with self.store.sessions.begin() as s:
            existing = {r.code: r for r in (await s.execute(select(AreaRow))).scalars()}
            parent_of = {code: row.parent_code for code, row in existing.items()}
            parent_of.update({a.code: a.parent_code for a in areas})
            for a in areas:
                if a.parent_code and a.parent_code not in parent_of:
                    raise InvalidInput(f"area {a.code} ({a.name}): parent {a.parent_code} is "
                                       "neither in the file nor registered")
                _check_no_cycle(a.code, parent_of)
            created = updated = 0
            for a in _parents_first(areas, by_code):
                row = existing.get(a.code)
                if row is None:
                    s.add(AreaRow(code=a.code, name=a.name, type=a.type.value,
                                  parent_code=a.parent_code))
                    created += 1
                elif (row.name, row.type, row.parent_code) != (a.name, a.type.value,
                                                                a.parent_code):
                    row.name, row.type, row.parent_code = a.name, a.type.value, a.parent_code
                    updated += 1
                await s.flush()
            await self.store.audit.record(actor, "area.import", None, session=s,
                                          detail={"created": created, "updated": updated})
        return created, updated

    async def list_areas(self, *, parent: str | None = None, type_: str | None = None,
                         under: str | None = None, include_merged: bool = False,
                         limit: int | None = None, offset: int = 0) -> list[Area]:
        query = select(AreaRow).order_by(AreaRow.code).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        if parent is not None:
            query = query.where(AreaRow.parent_code == parent)
        if type_ is not None:
            query = query.where(AreaRow.type == type_)
        if not include_merged:
            query = query.where(AreaRow.merged_into.is_(None))
        if under is not None:
            query = query.where(AreaRow.code.in_(self._subtree_query(under)))
        async with self.store.sessions() as s:
            return [_area(r) for r in (await s.execute(query)).scalars()]

    async def get_area(self, code: str) -> Area:
        async with self.store.sessions() as s:
            row = await s.get(AreaRow, code)
        if row is None:
            raise NotFound(f"no area with code '{code}' (see `ttcs areas list`)")
        return _area(row)

    @staticmethod
    def _subtree_query(code: str) -> Select[Any]:
        tree = select(AreaRow.code).where(AreaRow.code == code).cte("tree", recursive=True)
        tree = tree.union_all(select(AreaRow.code).where(AreaRow.parent_code == tree.c.code))
        return select(tree.c.code)

    async def subtree(self, code: str, session: AsyncSession | None = None) -> set[str]:
        """``code`` and every area below it (recursive query; any depth)."""
        query = self._subtree_query(code)
        if session is not None:
            return set((await session.execute(query)).scalars())
        async with self.store.sessions() as s:
            return set((await s.execute(query)).scalars())

    async def ancestors(self, code: str) -> list[str]:
        """Codes from ``code``'s parent up to the root."""
        chain: list[str] = []
        async with self.store.sessions() as s:
            row = await s.get(AreaRow, code)
            while row is not None and row.parent_code:
                chain.append(row.parent_code)
                row = await s.get(AreaRow, row.parent_code)
        return chain

    async def merge_areas(self, sources: Sequence[str], into: str, actor: str) -> dict[str, int]:
        """Merge ``sources`` into ``into`` in one audited step.

        Child areas, devices and groups of each source move to ``into``; the source stays in
        the table marked ``merged_into`` (history, old reports) but disappears from listings.
        """
        if not sources:
            raise InvalidInput("name at least one area to merge")
        if into in sources:
            raise InvalidInput(f"cannot merge area {into} into itself")
        moved = {"areas": 0, "devices": 0, "groups": 0}
        async with self.store.sessions.begin() as s:
            target = await s.get(AreaRow, into)
            if target is None or target.merged_into:
                raise NotFound(f"no area '{into}' to merge into")
            for code in sources:
                row = await s.get(AreaRow, code)
                if row is None or row.merged_into:
                    raise NotFound(f"no area '{code}' to merge")
                if into in await self.subtree(code, s):
                    raise Conflict(f"cannot merge {code} into {into}: {into} lies inside {code}"
                                   " (that would make the tree a cycle)")
            for code in sources:
                children = await s.execute(update(AreaRow).where(AreaRow.parent_code == code)
                                           .values(parent_code=into))
                devices = await s.execute(update(DeviceRow).where(DeviceRow.area_code == code)
                                          .values(area_code=into))
                groups = await s.execute(update(GroupRow).where(GroupRow.area_code == code)
                                         .values(area_code=into))
                moved["areas"] += _count(children)
                moved["devices"] += _count(devices)
                moved["groups"] += _count(groups)
                await s.execute(update(AreaRow).where(AreaRow.code == code)
                                .values(merged_into=into, parent_code=None))
            for hook in self.merge_hooks:
                await hook(sources, into, s)
            await self.store.audit.record(actor, "area.merge", into, session=s,
                                          detail={"sources": list(sources), **moved})
        return moved

    # -- devices ------------------------------------------------------------------------------

    def validate_config(self, plugin_id: str, kind: DeviceKind,
                        config: dict[str, Any]) -> BaseModel:
        """The device config validated by the plugin's driver, or a clear :class:`InvalidInput`."""
        driver = self.plugins.driver_class(plugin_id, kind)
        try:
            return driver.config_model.model_validate(config)
        except ValidationError as exc:
            raise InvalidInput(f"config for plugin '{plugin_id}': {explain(exc)}") from exc

    async def add_device(self, spec: DeviceSpec, actor: str, *,
                         info: DeviceInfo | None = None) -> Device:
        """Validate, probe and register a device. ``info`` skips the probe (already probed)."""
        config = self.validate_config(spec.plugin, spec.kind, spec.config)
        await self._check_placement(spec)
        if info is None:
            info = await self._probe(spec.plugin, spec.kind, config, parent_id=spec.parent_id)
        async with self.store.sessions.begin() as s:
            await self._check_unique(s, info)
            device_id = await self._free_id(s, f"{spec.plugin}-{info.serial}")
            dependents = self._insert_device(s, device_id, spec, config, info)
            await s.flush()
            s.add_all(dependents)
            await s.execute(delete(DiscoveredRow).where(DiscoveredRow.plugin == spec.plugin,
                                                        DiscoveredRow.serial == info.serial))
            try:
                await s.flush()
            except IntegrityError as exc:  # a concurrent registration won the race
                raise Conflict(f"device {info.vendor} {info.serial} is already registered") from exc
            await self.store.audit.record(actor, "device.add", device_id, session=s, detail={
                "plugin": spec.plugin, "serial": info.serial, "area": spec.area_code})
        log.info("device.registered", device=device_id, plugin=spec.plugin, area=spec.area_code)
        return await self.get_device(device_id)

    def _insert_device(self, s: AsyncSession, device_id: str, spec: DeviceSpec,
                       config: BaseModel, info: DeviceInfo) -> list[Any]:
        """Add one probed device's row to the session; return the rows that refer to it,
        for the caller to add after a flush (groups were checked by the caller)."""
        if info.kind is not spec.kind:
            raise InvalidInput(f"the device says it is a {info.kind.value}, not a "
                               f"{spec.kind.value}")
        public, secret = _split_secrets(config)
        s.add(DeviceRow(
            id=device_id, name=spec.name or f"{info.model} {info.serial}", kind=info.kind.value,
            vendor=info.vendor, model=info.model, serial=info.serial, mac=info.mac,
            firmware=info.firmware, plugin=spec.plugin, area_code=spec.area_code,
            village_code=spec.village_code,
            location=spec.location.model_dump() if spec.location else None,
            parent_id=spec.parent_id,
            capabilities=[c.value for c in (info.capabilities or
                                            self._driver_caps(spec.plugin, spec.kind))],
            config=public, secrets=self.store.secrets.seal(secret) if secret else None))
        return [*(DeviceGroupRow(device_id=device_id, group_id=g) for g in spec.groups),
                DeviceStateRow(device_id=device_id, connectivity=Connectivity.UNKNOWN.value,
                               status=DeviceStatus().model_dump(mode="json"))]

    def _driver_caps(self, plugin_id: str, kind: DeviceKind) -> Iterable[Any]:
        return sorted(self.plugins.driver_class(plugin_id, kind).capabilities)

    async def _check_placement(self, spec: DeviceSpec,
                               areas: dict[str, Area] | None = None) -> None:
        """The area exists, the village is a village inside it, the parent device exists.
        ``areas`` (every area by code) avoids a query per row in bulk imports."""
        if areas is None:
            areas = {a.code: a for a in await self.list_areas()}
        if spec.area_code not in areas:
            raise NotFound(f"no area with code '{spec.area_code}' (see `ttcs areas list`)")
        if spec.village_code:
            village = areas.get(spec.village_code)
            if village is None:
                raise NotFound(f"no area with code '{spec.village_code}'")
            if village.type not in VILLAGE_LEVEL:
                raise InvalidInput(f"{village.code} ({village.name}) is a {village.type.value}, "
                                   "not a village or residential group")
            above, current = set(), village.parent_code
            while current is not None and current not in above:
                above.add(current)
                current = areas[current].parent_code if current in areas else None
            if spec.area_code not in above:
                raise InvalidInput(f"village {village.code} is not inside area "
                                   f"{spec.area_code}")
        if spec.parent_id:
            await self.get_device(spec.parent_id)
        if spec.groups:
            known = {g.id for g, _ in await self.list_groups()}
            if missing := [g for g in spec.groups if g not in known]:
                raise NotFound(f"no group '{missing[0]}' (create it with `ttcs groups add`)")

    @staticmethod
    async def _check_unique(s: AsyncSession, info: DeviceInfo) -> None:
        same = (await s.execute(select(DeviceRow.id).where(
            DeviceRow.vendor == info.vendor, DeviceRow.serial == info.serial))).scalar()
        if same:
            raise Conflict(f"device {info.vendor} serial {info.serial} is already registered "
                           f"as '{same}'")
        if info.mac:
            same = (await s.execute(select(DeviceRow.id).where(
                DeviceRow.mac == info.mac))).scalar()
            if same:
                raise Conflict(f"MAC {info.mac} is already registered as '{same}'")

    @staticmethod
    async def _free_id(s: AsyncSession, wanted: str) -> str:
        base = _slug(wanted)
        candidate, n = base, 1
        while await s.get(DeviceRow, candidate) is not None:
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    async def get_device(self, device_id: str) -> Device:
        async with self.store.sessions() as s:
            row = await s.get(DeviceRow, device_id)
            if row is None:
                raise NotFound(f"no device '{device_id}' (see `ttcs devices list`)")
            groups = (await s.execute(select(DeviceGroupRow.group_id).where(
                DeviceGroupRow.device_id == device_id))).scalars()
            return self._device(row, sorted(groups))

    def _device(self, row: Any, groups: list[str], *, with_secrets: bool = True) -> Device:
        """A device from its row (a :class:`DeviceRow` or a row of :data:`DEVICE_COLUMNS`)."""
        config: dict[str, Any] = dict(row.config)
        if with_secrets and row.secrets:
            config.update({k: SecretStr(v) for k, v in self.store.secrets.open(
                row.secrets).items()})
        return Device(
            id=row.id, name=row.name, kind=row.kind, vendor=row.vendor, model=row.model,
            serial=row.serial, mac=row.mac, firmware=row.firmware, plugin=row.plugin,
            area_code=row.area_code, village_code=row.village_code,
            location=Location.model_validate(row.location) if row.location else None,
            parent_id=row.parent_id, groups=groups, capabilities=row.capabilities,
            config=config, created_at=row.created_at)

    async def list_devices(self, *, area: str | None = None, kind: str | None = None,
                           plugin: str | None = None, group: str | None = None,
                           connectivity: str | None = None, search: str | None = None,
                           limit: int | None = None, offset: int = 0,
                           plugins: Iterable[str] | None = None) -> list[Device]:
        """Devices matching every given filter; ``area`` includes everything below it;
        ``plugins`` keeps devices of any of these plugins."""
        # plain rows, not ORM objects: a hub starting with 100,000 devices lists them all
        query = select(*DEVICE_COLUMNS).order_by(DeviceRow.id).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        if area is not None:
            tree = select(AreaRow.code).where(AreaRow.code == area).cte("tree", recursive=True)
            tree = tree.union_all(select(AreaRow.code).where(AreaRow.parent_code == tree.c.code))
            query = query.where(DeviceRow.area_code.in_(select(tree.c.code)))
        if kind is not None:
            query = query.where(DeviceRow.kind == kind)
        if plugin is not None:
            query = query.where(DeviceRow.plugin == plugin)
        if plugins is not None:
            query = query.where(DeviceRow.plugin.in_(sorted(plugins)))
        if group is not None:
            query = query.where(DeviceRow.id.in_(select(DeviceGroupRow.device_id).where(
                DeviceGroupRow.group_id == group)))
        if connectivity is not None:
            query = query.where(DeviceRow.id.in_(select(DeviceStateRow.device_id).where(
                DeviceStateRow.connectivity == connectivity)))
        if search:
            like = f"%{search.lower()}%"
            query = query.where(func.lower(DeviceRow.name).like(like)
                                | func.lower(DeviceRow.serial).like(like))
        async with self.store.sessions() as s:
            rows = list((await s.execute(query)).all())
            groups: dict[str, list[str]] = {}
            ids = [r.id for r in rows]
            for start in range(0, len(ids), IN_CHUNK):  # under the bind-parameter limit
                for dev, grp in await s.execute(
                        select(DeviceGroupRow.device_id, DeviceGroupRow.group_id).where(
                            DeviceGroupRow.device_id.in_(ids[start:start + IN_CHUNK]))):
                    groups.setdefault(dev, []).append(grp)
        return [self._device(r, sorted(groups.get(r.id, []))) for r in rows]

    async def change_mark(self) -> tuple[int, datetime | None]:
        """(number of devices, latest change): cheap to read, different after any device was
        added, changed or removed — by this process or another one."""
        async with self.store.sessions() as s:
            count, latest = (await s.execute(
                select(func.count(), func.max(DeviceRow.updated_at)))).one()
        return int(count), latest

    async def devices_changed_since(self, since: datetime | None) -> list[Device]:
        """Devices added or changed at or after ``since`` (all of them when None)."""
        async with self.store.sessions() as s:
            query = select(*DEVICE_COLUMNS).order_by(DeviceRow.id)
            if since is not None:
                query = query.where(DeviceRow.updated_at >= since)
            rows = list((await s.execute(query)).all())
        return [self._device(r, []) for r in rows]

    async def device_ids(self) -> set[str]:
        async with self.store.sessions() as s:
            return set((await s.execute(select(DeviceRow.id))).scalars())

    async def areas_of_devices(self, device_ids: Sequence[str]) -> set[str]:
        """The areas the given devices are in (looked up in chunks)."""
        found: set[str] = set()
        async with self.store.sessions() as s:
            for start in range(0, len(device_ids), 500):
                found |= set((await s.execute(select(DeviceRow.area_code).where(
                    DeviceRow.id.in_(list(device_ids[start:start + 500]))).distinct()
                    )).scalars())
        return found

    async def remove_device(self, device_id: str, actor: str) -> None:
        async with self.store.sessions.begin() as s:
            row = await s.get(DeviceRow, device_id)
            if row is None:
                raise NotFound(f"no device '{device_id}'")
            children = list((await s.execute(select(DeviceRow.id).where(
                DeviceRow.parent_id == device_id))).scalars())
            if children:
                raise Conflict(f"device {device_id} has child devices ({', '.join(children)});"
                               " remove them first")
            await s.execute(delete(DeviceGroupRow).where(DeviceGroupRow.device_id == device_id))
            await s.execute(delete(DeviceStateRow).where(DeviceStateRow.device_id == device_id))
            await s.delete(row)
            await self.store.audit.record(actor, "device.remove", device_id, session=s,
                                          detail={"serial": row.serial, "plugin": row.plugin})

    async def update_device(self, device_id: str, changes: DeviceChanges, actor: str
                            ) -> Device:
        """Rename, move (area, village), relocate or reconfigure a registered device; its
        identity (serial, vendor) never changes. A new config is validated by the plugin."""
        current = await self.get_device(device_id)
        given = changes.model_dump(exclude_unset=True)
        if not given:
            return current
        config: dict[str, Any] = dict(current.config)
        if changes.config is not None:
            config = {**config, **changes.config}
        placement = DeviceSpec(plugin=current.plugin, kind=current.kind,
                               area_code=changes.area_code or current.area_code,
                               village_code=given.get("village_code", current.village_code),
                               parent_id=current.parent_id, config={})
        await self._check_placement(placement)
        validated = self.validate_config(current.plugin, current.kind, config)
        # New settings are tested before they are kept, like a new device's.
        info = await self._same_device(current, validated) if changes.config is not None \
            else None
        public, secret = _split_secrets(validated)
        async with self.store.sessions.begin() as s:
            row = await s.get(DeviceRow, device_id)
            if row is None:
                raise NotFound(f"no device '{device_id}'")
            if info is not None:
                row.firmware = info.firmware
            if "name" in given and changes.name:
                row.name = changes.name
            row.area_code, row.village_code = placement.area_code, placement.village_code
            if "location" in given:
                row.location = changes.location.model_dump() if changes.location else None
            if changes.config is not None:
                row.config = public
                row.secrets = self.store.secrets.seal(secret) if secret else None
            await self.store.audit.record(actor, "device.update", device_id, session=s,
                                          detail={"changed": sorted(given)})
        return await self.get_device(device_id)

    async def get_group(self, group_id: str) -> tuple[Group, int]:
        async with self.store.sessions() as s:
            row = await s.get(GroupRow, group_id)
            if row is None:
                raise NotFound(f"no group '{group_id}' (see `ttcs groups list`)")
            count = (await s.execute(select(func.count()).where(
                DeviceGroupRow.group_id == group_id))).scalar()
        return Group(id=row.id, name=row.name, area_code=row.area_code,
                     description=row.description), int(count or 0)

    async def update_identity(self, device_id: str, info: DeviceInfo) -> None:
        """Record a new firmware (or address) reported by a device whose serial is unchanged."""
        async with self.store.sessions.begin() as s:
            row = await s.get(DeviceRow, device_id)
            if row is not None and row.serial == info.serial and row.firmware != info.firmware:
                row.firmware = info.firmware

    async def _same_device(self, device: Device, config: BaseModel) -> DeviceInfo:
        """Probe ``device`` with new settings; it must be the same device (vendor, serial)."""
        info = await self._probe(device.plugin, device.kind, config,
                                 parent_id=device.parent_id)
        if (info.vendor, info.serial) != (device.vendor, device.serial):
            raise Conflict(f"with these settings the hub reaches {info.vendor} {info.serial}, "
                           f"not {device.vendor} {device.serial} ({device.id}); register that "
                           "device on its own")
        return info

    async def reconfigure(self, device_id: str, config: dict[str, Any], actor: str) -> Device:
        """New settings for a registered device (it moved to another address, its token was
        changed). The device is probed with them first and must report the serial it is
        registered with: identity comes from the device, never from its address."""
        device = await self.get_device(device_id)
        validated = self.validate_config(device.plugin, device.kind, config)
        info = await self._same_device(device, validated)
        public, secret = _split_secrets(validated)
        async with self.store.sessions.begin() as s:
            row = await s.get(DeviceRow, device_id)
            if row is None:
                raise NotFound(f"no device '{device_id}' (see `ttcs devices list`)")
            row.config = public
            row.secrets = self.store.secrets.seal(secret) if secret else None
            row.firmware = info.firmware
            await self.store.audit.record(actor, "device.reconfigure", device_id, session=s,
                                          detail={"settings": sorted(public)
                                                  + sorted(f"{k} (secret)" for k in secret)})
        log.info("device.reconfigured", device=device_id, plugin=device.plugin)
        return await self.get_device(device_id)

    async def import_devices(self, specs: Sequence[DeviceSpec | Exception], actor: str, *,
                             all_or_nothing: bool = False, probes: int = 64,
                             chunk: int = 500) -> ImportReport:
        """Register many devices; a report per row.

        Every row is validated first, then the devices are probed concurrently (``probes`` at a
        time), then written in chunks with one audit entry per chunk. ``all_or_nothing``
        writes nothing unless every row is good. Rows that failed to parse arrive as
        exceptions and are reported as such.
        """
        report = ImportReport(rows=[RowReport(n, False) for n in range(1, len(specs) + 1)])
        ready: list[tuple[RowReport, DeviceSpec, BaseModel]] = []
        areas = {a.code: a for a in await self.list_areas()}
        for row, spec in zip(report.rows, specs, strict=True):
            try:
                if isinstance(spec, Exception):
                    raise spec
                config = self.validate_config(spec.plugin, spec.kind, spec.config)
                await self._check_placement(spec, areas)
                ready.append((row, spec, config))
            except Exception as exc:
                row.error = _reason(exc)
        slots = asyncio.Semaphore(probes)

        async def probe(spec: DeviceSpec, config: BaseModel) -> DeviceInfo:
            async with slots:
                return await self._probe(spec.plugin, spec.kind, config,
                                         parent_id=spec.parent_id)

        infos = await asyncio.gather(*(probe(spec, config) for _, spec, config in ready),
                                     return_exceptions=True)
        probed = []
        for (row, spec, config), info in zip(ready, infos, strict=True):
            if isinstance(info, BaseException):
                row.error = _reason(info)
            else:
                probed.append((row, spec, config, info))
        if all_or_nothing and (len(probed) != len(specs)):
            for row in report.rows:
                row.error = row.error or "not written (--all-or-nothing: another row failed)"
            report.committed = False
            return report
        size = len(probed) if all_or_nothing else chunk
        for start in range(0, len(probed), max(1, size)):
            await self._write_chunk(probed[start:start + size], actor, all_or_nothing)
        if all_or_nothing and not report.ok:
            for row in report.rows:
                row.ok, row.id = False, None
                row.error = row.error or "not written (--all-or-nothing: another row failed)"
            report.committed = False
        return report

    async def _write_chunk(self, items: list[tuple[RowReport, DeviceSpec, BaseModel,
                                                   DeviceInfo]],
                           actor: str, all_or_nothing: bool) -> None:
        async with self.store.sessions.begin() as s:
            taken = await self._taken(s, [info for *_, info in items])
            wanted = [_slug(f"{spec.plugin}-{info.serial}") for _, spec, _, info in items]
            used: set[str] = set()
            for part in range(0, len(wanted), 500):
                used |= set((await s.execute(select(DeviceRow.id).where(
                    DeviceRow.id.in_(wanted[part:part + 500])))).scalars())
            written = []
            dependents: list[Any] = []
            for row, spec, config, info in items:
                clash = taken.get((info.vendor, info.serial)) or (
                    taken.get(("mac", info.mac)) if info.mac else None)
                if clash:
                    row.error = (f"device {info.vendor} serial {info.serial} is already "
                                 f"registered as '{clash}'")
                    continue
                device_id = _slug(f"{spec.plugin}-{info.serial}")
                base, n = device_id, 1
                while device_id in used:
                    n += 1
                    device_id = f"{base}-{n}"
                try:
                    dependents += self._insert_device(s, device_id, spec, config, info)
                except InvalidInput as exc:
                    row.error = str(exc)
                    continue
                used.add(device_id)
                row.id = device_id
                row.ok = True
                taken[(info.vendor, info.serial)] = row.id
                if info.mac:
                    taken[("mac", info.mac)] = row.id
                written.append(row.id)
            if all_or_nothing and not all(row.ok for row, *_ in items):
                await s.rollback()
                return
            await s.flush()
            s.add_all(dependents)
            for plugin in {spec.plugin for _, spec, _, _ in items}:
                await s.execute(delete(DiscoveredRow).where(
                    DiscoveredRow.plugin == plugin, DiscoveredRow.serial.in_(
                        [i.serial for _, sp, _, i in items if sp.plugin == plugin])))
            if written:
                await self.store.audit.record(actor, "device.import", None, session=s,
                                              detail={"count": len(written), "ids": written})
        if written:
            log.info("devices.imported", count=len(written))

    @staticmethod
    async def _taken(s: AsyncSession, infos: list[DeviceInfo]) -> dict[tuple[str, Any], str]:
        """Registered (vendor, serial) and ("mac", MAC) pairs among ``infos``, with their ids."""
        taken: dict[tuple[str, Any], str] = {}
        serials = sorted({i.serial for i in infos})
        macs = sorted({i.mac for i in infos if i.mac})
        for part in range(0, len(serials), 500):
            rows = await s.execute(select(DeviceRow.vendor, DeviceRow.serial, DeviceRow.id)
                                   .where(DeviceRow.serial.in_(serials[part:part + 500])))
            taken.update({(v, ser): i for v, ser, i in rows.all()})
        for part in range(0, len(macs), 500):
            pairs = await s.execute(select(DeviceRow.mac, DeviceRow.id)
                                    .where(DeviceRow.mac.in_(macs[part:part + 500])))
            taken.update({("mac", m): i for m, i in pairs.all()})
        return taken

    # -- status -------------------------------------------------------------------------------

    async def save_status(self, device_id: str, status: DeviceStatus) -> None:
        async with self.store.sessions.begin() as s:
            row = await s.get(DeviceStateRow, device_id)
            data = status.model_dump(mode="json")
            if row is None:
                s.add(DeviceStateRow(device_id=device_id, connectivity=status.connectivity.value,
                                     status=data, updated_at=status.reported_at))
            else:
                row.connectivity, row.status = status.connectivity.value, data
                row.updated_at = status.reported_at

    async def get_status(self, device_id: str) -> DeviceStatus:
        async with self.store.sessions() as s:
            row = await s.get(DeviceStateRow, device_id)
        if row is None:
            raise NotFound(f"no status recorded for device '{device_id}'")
        return DeviceStatus.model_validate(row.status)

    async def connectivity_of(self, device_ids: Sequence[str]) -> dict[str, str]:
        """Last stored connectivity of each device."""
        found: dict[str, str] = {}
        ids = list(device_ids)
        async with self.store.sessions() as s:
            for start in range(0, len(ids), IN_CHUNK):  # under the bind-parameter limit
                rows = await s.execute(
                    select(DeviceStateRow.device_id, DeviceStateRow.connectivity)
                    .where(DeviceStateRow.device_id.in_(ids[start:start + IN_CHUNK])))
                found.update({str(k): str(v) for k, v in rows.all()})
        return found

    async def connectivity_counts(self) -> dict[str, int]:
        async with self.store.sessions() as s:
            result = await s.execute(select(DeviceStateRow.connectivity, func.count()).group_by(
                DeviceStateRow.connectivity))
            return {str(k): int(v) for k, v in result.all()}

    # -- discovery ----------------------------------------------------------------------------

    async def record_discovered(self, plugin: str, info: DeviceInfo,
                                config: dict[str, Any]) -> bool:
        """Remember an unregistered device that announced itself. True if it is new."""
        now = datetime.now(UTC)
        async with self.store.sessions.begin() as s:
            registered = (await s.execute(select(literal(1)).where(
                DeviceRow.vendor == info.vendor, DeviceRow.serial == info.serial))).scalar()
            if registered:
                return False
            row = await s.get(DiscoveredRow, (plugin, info.serial))
            if row is None:
                s.add(DiscoveredRow(plugin=plugin, serial=info.serial, config=config,
                                    info=info.model_dump(mode="json"), first_seen=now,
                                    last_seen=now))
                return True
            row.info, row.config, row.last_seen = info.model_dump(mode="json"), config, now
            return False

    async def list_discovered(self) -> list[DiscoveredDevice]:
        async with self.store.sessions() as s:
            rows = (await s.execute(select(DiscoveredRow).order_by(DiscoveredRow.first_seen)))
            return [DiscoveredDevice(plugin=r.plugin, info=DeviceInfo.model_validate(r.info),
                                     config=r.config, first_seen=r.first_seen,
                                     last_seen=r.last_seen)
                    for r in rows.scalars()]

    async def adopt(self, serial: str, area_code: str, actor: str, *, name: str | None = None,
                    village_code: str | None = None, config: dict[str, Any] | None = None,
                    ) -> Device:
        """Register a discovered device into an area (still probed: test before configure)."""
        async with self.store.sessions() as s:
            row = (await s.execute(select(DiscoveredRow).where(
                DiscoveredRow.serial == serial))).scalars().first()
        if row is None:
            raise NotFound(f"no discovered device with serial '{serial}' "
                           "(see `ttcs devices discovered`)")
        info = DeviceInfo.model_validate(row.info)
        spec = DeviceSpec(plugin=row.plugin, kind=info.kind, area_code=area_code,
                          village_code=village_code, name=name,
                          config={**row.config, **(config or {})})
        return await self.add_device(spec, actor)

    # -- groups -------------------------------------------------------------------------------

    async def create_group(self, group: Group, actor: str) -> Group:
        async with self.store.sessions.begin() as s:
            if await s.get(GroupRow, group.id) is not None:
                raise Conflict(f"group '{group.id}' exists already")
            if group.area_code and await s.get(AreaRow, group.area_code) is None:
                raise NotFound(f"no area '{group.area_code}'")
            s.add(GroupRow(id=group.id, name=group.name, area_code=group.area_code,
                           description=group.description))
            await self.store.audit.record(actor, "group.create", group.id, session=s)
        return group

    async def list_groups(self, *, area: str | None = None, limit: int | None = None,
                          offset: int = 0) -> list[tuple[Group, int]]:
        """Groups with their device counts; ``area`` keeps groups owned by it or below it
        (areas merged into those included)."""
        query = select(GroupRow).order_by(GroupRow.id).offset(offset)
        if area is not None:
            query = query.where(GroupRow.area_code.in_(covered_areas(area)))
        if limit is not None:
            query = query.limit(limit)
        async with self.store.sessions() as s:
            counts = dict((await s.execute(select(DeviceGroupRow.group_id, func.count())
                                           .group_by(DeviceGroupRow.group_id))).all())
            rows = (await s.execute(query)).scalars()
            return [(Group(id=r.id, name=r.name, area_code=r.area_code,
                           description=r.description), int(counts.get(r.id, 0))) for r in rows]

    async def update_group(self, group_id: str, changes: GroupChanges, actor: str) -> Group:
        """Rename a group or change its description (audited)."""
        given = changes.model_dump(exclude_unset=True)
        if not given:
            raise InvalidInput("nothing to change: give a name or a description")
        if "name" in given and given["name"] is None:
            raise InvalidInput("a group's name cannot be removed, only changed")
        async with self.store.sessions.begin() as s:
            row = await s.get(GroupRow, group_id)
            if row is None:
                raise NotFound(f"no group '{group_id}'")
            for key, value in given.items():
                setattr(row, key, value)
            await self.store.audit.record(actor, "group.update", group_id, session=s,
                                          detail=given)
            return Group(id=row.id, name=row.name, area_code=row.area_code,
                         description=row.description)

    async def delete_group(self, group_id: str, actor: str) -> int:
        """Delete a group and its memberships (not its devices); returns how many devices it
        held. Broadcasts already created keep their devices: targets are resolved when a
        broadcast is created."""
        async with self.store.sessions.begin() as s:
            row = await s.get(GroupRow, group_id)
            if row is None:
                raise NotFound(f"no group '{group_id}'")
            members = _count(await s.execute(
                delete(DeviceGroupRow).where(DeviceGroupRow.group_id == group_id)))
            await s.delete(row)
            await self.store.audit.record(actor, "group.delete", group_id, session=s,
                                          detail={"devices": members})
        return members

    async def set_membership(self, group_id: str, device_ids: Sequence[str], actor: str, *,
                             member: bool = True) -> None:
        async with self.store.sessions.begin() as s:
            if await s.get(GroupRow, group_id) is None:
                raise NotFound(f"no group '{group_id}'")
            for device_id in device_ids:
                if await s.get(DeviceRow, device_id) is None:
                    raise NotFound(f"no device '{device_id}'")
                link = await s.get(DeviceGroupRow, (device_id, group_id))
                if member and link is None:
                    s.add(DeviceGroupRow(device_id=device_id, group_id=group_id))
                elif not member and link is not None:
                    await s.delete(link)
            await self.store.audit.record(actor, "group.add" if member else "group.remove",
                                          group_id, session=s, detail={"devices": device_ids})


def _slug(wanted: str) -> str:
    """A device id from plugin and serial: lower case, safe in URLs and topics."""
    return re.sub(r"[^a-z0-9._:-]+", "-", wanted.lower()).strip("-")[:120] or "device"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, InvalidInput | Conflict | NotFound | UnknownPlugin):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _count(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _split_secrets(config: BaseModel) -> tuple[dict[str, Any], dict[str, str]]:
    """Plain settings (stored as JSON) and secrets (stored encrypted)."""
    public: dict[str, Any] = {}
    secret: dict[str, str] = {}
    for name, value in config:
        if isinstance(value, SecretStr):
            secret[name] = value.get_secret_value()
    data = config.model_dump(mode="json", exclude=set(secret))
    public.update(data)
    return public, secret


def _check_no_cycle(code: str, parent_of: dict[str, str | None]) -> None:
    seen = {code}
    current = parent_of.get(code)
    while current is not None:
        if current in seen:
            raise InvalidInput(f"area {code}: parent links form a cycle through {current}")
        seen.add(current)
        current = parent_of.get(current)


def _parents_first(areas: Sequence[Area], by_code: dict[str, Area]) -> list[Area]:
    ordered: list[Area] = []
    placed: set[str] = set()

    def place(a: Area) -> None:
        if a.code in placed:
            return
        if a.parent_code in by_code:
            place(by_code[a.parent_code])
        placed.add(a.code)
        ordered.append(a)

    for a in areas:
        place(a)
    return ordered
