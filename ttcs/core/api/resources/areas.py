"""``/areas``: the administrative tree."""

from __future__ import annotations

from pydantic import Field

from ....schemas import Area, AreaType, Model
from ....schemas.api import Page
from ....schemas.base import Identifier
from ...access.policy import Action, Target
from ..routing import Call, endpoint
from .common import PageQuery


class AreaQuery(PageQuery):
    parent: Identifier | None = Field(default=None, description="only direct children")
    type: AreaType | None = None
    under: Identifier | None = Field(default=None, description="this area and below")


class AreaImport(Model):
    areas: list[Area] = Field(min_length=1, max_length=20_000)


class AreaImportResult(Model):
    read: int
    created: int
    updated: int


class AreaMerge(Model):
    sources: list[Identifier] = Field(min_length=1, max_length=100)
    into: Identifier


class MergeResult(Model):
    areas: int
    devices: int
    groups: int


async def _listed(call: Call) -> Target:
    q: AreaQuery = call.query
    return Target.of([q.under or q.parent or call.principal.area_code])


@endpoint("GET", "/areas", tag="areas", action=Action.AREA_READ, summary="List areas",
          query=AreaQuery, response=Page[Area], target=_listed)
async def list_areas(call: Call) -> Page[Area]:
    q: AreaQuery = call.query
    under = q.under or (None if q.parent else call.scope.area)
    areas = await call.hub.registry.list_areas(
        parent=q.parent, type_=q.type.value if q.type else None, under=under,
        limit=q.limit + 1, offset=q.offset)
    return call.page(areas, q.limit, q.offset)


async def _area(call: Call) -> Target:
    return Target.of([call.path["code"]])


@endpoint("GET", "/areas/{code}", tag="areas", action=Action.AREA_READ, summary="One area",
          response=Area, target=_area)
async def get_area(call: Call) -> Area:
    return await call.hub.registry.get_area(call.path["code"])


async def _imported(call: Call) -> Target:
    body: AreaImport = call.body
    known = {a.code for a in await call.hub.registry.list_areas(include_merged=True)}
    return Target.of({a.parent_code for a in body.areas}
                     | {a.code for a in body.areas if a.code in known})


@endpoint("POST", "/areas", tag="areas", action=Action.AREA_WRITE,
          summary="Create or update areas (parents may come in the same request)",
          body=AreaImport, response=AreaImportResult, target=_imported)
async def import_areas(call: Call) -> AreaImportResult:
    body: AreaImport = call.body
    created, updated = await call.hub.registry.import_areas(body.areas, call.actor)
    return AreaImportResult(read=len(body.areas), created=created, updated=updated)


async def _merged(call: Call) -> Target:
    body: AreaMerge = call.body
    return Target.of([*body.sources, body.into])


@endpoint("POST", "/areas/merge", tag="areas", action=Action.AREA_WRITE,
          summary="Merge areas into one (devices, groups, policies, schedules move along)",
          body=AreaMerge, response=MergeResult, target=_merged)
async def merge_areas(call: Call) -> MergeResult:
    body: AreaMerge = call.body
    moved = await call.hub.registry.merge_areas(body.sources, body.into, call.actor)
    return MergeResult(**moved)
