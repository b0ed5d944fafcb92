"""What the resource modules share: page queries and the targets of single objects."""

from __future__ import annotations

from pydantic import Field

from ....schemas import Model
from ...access.policy import Target
from ..routing import Call

MAX_PAGE = 500


class PageQuery(Model):
    """``limit`` items after skipping ``offset``; follow ``next`` for the following page."""

    limit: int = Field(default=100, ge=1, le=MAX_PAGE)
    offset: int = Field(default=0, ge=0, le=10_000_000)


async def device_target(call: Call, device_id: str | None = None) -> Target:
    device = await call.hub.registry.get_device(device_id or call.path["id"])
    return Target.of([device.area_code], [device.plugin])


async def query_area(call: Call) -> Target:
    """A listing's filter area (or, without one, the caller's own scope)."""
    area = getattr(call.query, "area", None)
    return Target.of([area if area is not None else call.principal.area_code])
