"""``/groups``: named sets of devices, usable as broadcast targets."""

from __future__ import annotations

from pydantic import Field

from ....schemas import Group, GroupChanges, Model
from ....schemas.api import Page
from ....schemas.base import Identifier
from ...access.policy import Action, Target
from ..routing import Call, endpoint
from .common import PageQuery, query_area


class GroupQuery(PageQuery):
    area: Identifier | None = Field(default=None, description="groups owned by this area "
                                    "or below")


class GroupInfo(Model):
    group: Group
    devices: int


class Membership(Model):
    add: list[Identifier] = Field(default_factory=list, max_length=10_000)
    remove: list[Identifier] = Field(default_factory=list, max_length=10_000)


class Members(Model):
    group: str
    devices: list[str]


@endpoint("GET", "/groups", tag="groups", action=Action.GROUP_READ, summary="List groups",
          query=GroupQuery, response=Page[GroupInfo], target=query_area)
async def list_groups(call: Call) -> Page[GroupInfo]:
    q: GroupQuery = call.query
    groups = await call.hub.registry.list_groups(area=await call.area_filter(q.area),
                                                 limit=q.limit + 1, offset=q.offset)
    return call.page([GroupInfo(group=g, devices=n) for g, n in groups], q.limit, q.offset)


async def _new(call: Call) -> Target:
    return Target.of([call.body.area_code])


@endpoint("POST", "/groups", tag="groups", action=Action.GROUP_WRITE, status=201,
          summary="Create a group", body=Group, response=Group, target=_new)
async def create_group(call: Call) -> Group:
    return await call.hub.registry.create_group(call.body, call.actor)


async def _group(call: Call) -> Target:
    group, _ = await call.hub.registry.get_group(call.path["id"])
    return Target.of([group.area_code])


@endpoint("GET", "/groups/{id}", tag="groups", action=Action.GROUP_READ, summary="One group",
          response=GroupInfo, target=_group)
async def get_group(call: Call) -> GroupInfo:
    group, count = await call.hub.registry.get_group(call.path["id"])
    return GroupInfo(group=group, devices=count)


@endpoint("PATCH", "/groups/{id}", tag="groups", action=Action.GROUP_WRITE,
          summary="Rename a group or change its description", body=GroupChanges,
          response=Group, target=_group)
async def update_group(call: Call) -> Group:
    return await call.hub.registry.update_group(call.path["id"], call.body, call.actor)


@endpoint("DELETE", "/groups/{id}", tag="groups", action=Action.GROUP_WRITE, status=204,
          summary="Delete a group (its devices stay; broadcasts already made keep theirs)",
          target=_group)
async def delete_group(call: Call) -> None:
    await call.hub.registry.delete_group(call.path["id"], call.actor)


async def _members(call: Call) -> Target:
    body: Membership = call.body
    areas = set((await _group(call)).areas)
    for device_id in [*body.add, *body.remove]:
        areas.add((await call.hub.registry.get_device(device_id)).area_code)
    return Target.of(areas)


@endpoint("POST", "/groups/{id}/members", tag="groups", action=Action.GROUP_WRITE,
          summary="Add devices to a group or take them out", body=Membership,
          response=Members, target=_members)
async def change_members(call: Call) -> Members:
    body: Membership = call.body
    registry = call.hub.registry
    if body.add:
        await registry.set_membership(call.path["id"], body.add, call.actor, member=True)
    if body.remove:
        await registry.set_membership(call.path["id"], body.remove, call.actor, member=False)
    members = await registry.list_devices(group=call.path["id"])
    return Members(group=call.path["id"], devices=[d.id for d in members])
