"""Register many devices straight through the store, for benchmarks and tests of scale.

:meth:`~ttcs.core.registry.Registry.import_devices` probes every device first, which a fleet of
100,000 devices without simulators cannot answer. :func:`insert_devices` writes the rows the
registry would have written for devices that were probed (their identity given), with the same
tables, sealed secrets and initial state, in large executemany batches. It bypasses the audit
log and the placement checks: the caller vouches for the areas and groups it names.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert

from ..core.store import Store
from ..core.store.tables import DeviceGroupRow, DeviceRow, DeviceStateRow
from ..schemas import Connectivity, DeviceStatus


@dataclass
class BulkDevice:
    """One device as it would be after a successful probe and registration."""

    id: str
    plugin: str
    kind: str
    serial: str
    area_code: str
    config: dict[str, Any]
    secrets: dict[str, str] = field(default_factory=dict)
    vendor: str = "TTCS bench"
    model: str = "BULK-1"
    firmware: str = "1.0.0"
    capabilities: Sequence[str] = ()
    groups: Sequence[str] = ()
    connectivity: Connectivity = Connectivity.UNKNOWN
    name: str | None = None


async def insert_devices(store: Store, devices: Iterable[BulkDevice], *,
                         batch: int = 5000) -> int:
    """Insert ``devices`` (with their state row and group memberships); returns the count."""
    now = datetime.now(UTC)
    status = {c: DeviceStatus(connectivity=c).model_dump(mode="json") for c in Connectivity}
    count = 0
    pending: list[BulkDevice] = []

    async def flush() -> None:
        if not pending:
            return
        async with store.sessions.begin() as s:
            await s.execute(insert(DeviceRow), [{
                "id": d.id, "name": d.name or f"{d.model} {d.serial}", "kind": d.kind,
                "vendor": d.vendor, "model": d.model, "serial": d.serial, "mac": None,
                "firmware": d.firmware, "plugin": d.plugin, "area_code": d.area_code,
                "village_code": None, "location": None, "parent_id": None,
                "capabilities": list(d.capabilities), "config": d.config,
                "secrets": store.secrets.seal(d.secrets) if d.secrets else None,
                "created_at": now, "updated_at": now} for d in pending])
            await s.execute(insert(DeviceStateRow), [{
                "device_id": d.id, "connectivity": d.connectivity.value,
                "status": status[d.connectivity], "updated_at": now} for d in pending])
            members = [{"device_id": d.id, "group_id": g} for d in pending for g in d.groups]
            if members:
                await s.execute(insert(DeviceGroupRow), members)
        pending.clear()

    for device in devices:
        pending.append(device)
        count += 1
        if len(pending) >= batch:
            await flush()
    await flush()
    return count


__all__ = ["BulkDevice", "insert_devices"]
