"""The access policy: what each role may do, and where. The one place that decides.

A decision takes three things: the caller (:class:`Principal`: role, area, vendor plugins),
the :class:`Action`, and the :class:`Target` (the areas it concerns and, for devices, their
plugins). An area-scoped action is allowed when the role has the action and every area of
the target lies in the caller's area or below it — where "below" follows the tree *and*
mergers (an area merged into one in scope is in scope, so history stays visible). A target
with no area (a hub-wide group, central-level content) is only in the scope of hub-wide
callers. Vendors are further limited to devices of their own plugins.

:func:`decide` is pure (the ancestry of each area is handed in), so the access-control
matrix can be tested exhaustively; :class:`AccessPolicy` looks the ancestry up in the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import or_, select

from ...schemas.access import Role
from ..errors import AccessDenied
from ..store import Store
from ..store.tables import AreaRow


class Action(StrEnum):
    """Everything a caller can ask for, coarse enough to read as a table."""

    AREA_READ = "area.read"
    AREA_WRITE = "area.write"  # import, merge
    DEVICE_READ = "device.read"
    DEVICE_STATUS = "device.status"  # a live read from the device
    DEVICE_WRITE = "device.write"  # register, update, remove
    DEVICE_COMMAND = "device.command"
    GROUP_READ = "group.read"
    GROUP_WRITE = "group.write"
    PLUGIN_READ = "plugin.read"
    CONTENT_READ = "content.read"
    CONTENT_WRITE = "content.write"  # upload, edit, submit
    CONTENT_APPROVE = "content.approve"  # approve, reject
    BROADCAST_READ = "broadcast.read"
    BROADCAST_WRITE = "broadcast.write"  # create, cancel, accept/decline
    REPORT_READ = "report.read"  # proof of play, coverage
    ALARM_READ = "alarm.read"
    EVENT_READ = "event.read"  # the event stream
    AUDIT_READ = "audit.read"
    HEALTH_READ = "health.read"
    USER_READ = "user.read"
    USER_WRITE = "user.write"  # users, and tokens of other users
    WEBHOOK_WRITE = "webhook.write"  # webhooks: create, list, delete
    TOKEN_OWN = "token.own"  # one's own tokens  # noqa: S105 (an action name, not a secret)


class Reach(StrEnum):
    """How an action's target is checked."""

    AREA = "area"  # every area of the target must be in scope
    HUB = "hub"  # only hub-wide callers (the audit log is not split by area)
    ANY = "any"  # no area involved (plugin list, health, one's own tokens)


REACH: dict[Action, Reach] = {a: Reach.AREA for a in Action} | {
    Action.AUDIT_READ: Reach.HUB,
    Action.PLUGIN_READ: Reach.ANY,
    Action.HEALTH_READ: Reach.ANY,
    Action.TOKEN_OWN: Reach.ANY,
}

#: actions that change something (audited whether allowed or refused)
MUTATING = frozenset({Action.AREA_WRITE, Action.DEVICE_WRITE, Action.DEVICE_COMMAND,
                      Action.GROUP_WRITE, Action.CONTENT_WRITE, Action.CONTENT_APPROVE,
                      Action.BROADCAST_WRITE, Action.USER_WRITE, Action.WEBHOOK_WRITE,
                      Action.TOKEN_OWN})

_READS = frozenset({Action.AREA_READ, Action.DEVICE_READ, Action.GROUP_READ,
                    Action.PLUGIN_READ, Action.CONTENT_READ, Action.BROADCAST_READ,
                    Action.REPORT_READ, Action.ALARM_READ, Action.EVENT_READ,
                    Action.HEALTH_READ, Action.TOKEN_OWN})

#: the table: what each role may do (where is the scope's business)
ROLE_ACTIONS: dict[Role, frozenset[Action]] = {
    Role.ADMINISTRATOR: frozenset(Action),
    Role.AUDITOR: _READS | {Action.AUDIT_READ, Action.USER_READ},
    Role.APPROVER: _READS | {Action.CONTENT_APPROVE},
    Role.OPERATOR: _READS | {Action.DEVICE_STATUS, Action.DEVICE_COMMAND,
                             Action.CONTENT_WRITE, Action.BROADCAST_WRITE},
    Role.INTEGRATOR: _READS | {Action.DEVICE_STATUS, Action.DEVICE_WRITE,
                               Action.DEVICE_COMMAND, Action.GROUP_WRITE,
                               Action.WEBHOOK_WRITE},
    Role.VENDOR: frozenset({Action.DEVICE_READ, Action.DEVICE_STATUS, Action.PLUGIN_READ,
                            Action.HEALTH_READ, Action.EVENT_READ, Action.TOKEN_OWN}),
}

#: actions whose targets are devices, for which a vendor's plugins are checked
DEVICE_ACTIONS = frozenset({Action.DEVICE_READ, Action.DEVICE_STATUS, Action.DEVICE_WRITE,
                            Action.DEVICE_COMMAND, Action.EVENT_READ})


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user (through a token), with their role and scope."""

    name: str
    role: Role
    area_code: str | None = None  # None: the whole hub
    plugins: frozenset[str] = frozenset()
    approver: str | None = None
    token_id: str | None = None

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"user:{self.name}"


@dataclass(frozen=True)
class Target:
    """What an action concerns: its areas (None for something that belongs to no area) and,
    for devices, their plugins.

    ``reaches`` are the areas a thing was sent to (a broadcast's devices and target areas, or
    those of every broadcast of a content item). *Reading* it is allowed when one of them is
    in the caller's scope even though the whole is not: a commune sees the province's bulletin
    that reaches its speakers — and only its own part of the figures. Changing it still needs
    every area in scope.
    """

    areas: frozenset[str | None] = frozenset()
    plugins: frozenset[str] = frozenset()
    reaches: frozenset[str | None] = frozenset()

    @classmethod
    def of(cls, areas: Iterable[str | None] = (), plugins: Iterable[str] = (),
           reaches: Iterable[str | None] = ()) -> Target:
        return cls(frozenset(areas), frozenset(plugins), frozenset(reaches))


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


@dataclass(frozen=True)
class ListScope:
    """What a caller may see in a listing: ``area`` (and below; None = all) and, for vendors,
    only devices of ``plugins``."""

    area: str | None
    plugins: frozenset[str] | None = None


def within(code: str | None, principal: Principal, ancestry: Mapping[str, frozenset[str]]
           ) -> bool:
    """Whether ``code`` lies in the principal's area or below it (merges included)."""
    if principal.area_code is None:
        return True
    if code is None:
        return False
    return principal.area_code in ancestry.get(code, frozenset({code}))


def hub_wide(principal: Principal, ancestry: Mapping[str, frozenset[str]]) -> bool:
    """A caller whose area is the whole hub or a root of the area tree."""
    area = principal.area_code
    return area is None or ancestry.get(area) == frozenset({area})


def decide(principal: Principal, action: Action, target: Target,
           ancestry: Mapping[str, frozenset[str]]) -> Decision:
    """Allow or refuse, with a reason a person can act on.

    ``ancestry`` maps each area code of the target (and the principal's own area) to the set
    of that code and every area above it, following mergers.
    """
    role = principal.role
    if action not in ROLE_ACTIONS[role]:
        return Decision(False, f"the {role.value} role may not do {action.value}")
    reach = REACH[action]
    if reach is Reach.HUB and not hub_wide(principal, ancestry):
        return Decision(False, f"{action.value} needs an account scoped to the whole hub "
                        f"(this one is limited to area {principal.area_code})")
    if reach is Reach.AREA:
        outside = sorted(str(a) if a is not None else "(no area: hub-wide)"
                         for a in target.areas if not within(a, principal, ancestry))
        if outside and action in _READS and any(
                within(a, principal, ancestry) for a in target.reaches):
            outside = []  # it reaches into the caller's area: readable, in part
        if outside:
            return Decision(False, f"{', '.join(outside)} is outside this account's area "
                            f"({principal.area_code} and below)")
    if role is Role.VENDOR and action in DEVICE_ACTIONS:
        # listings carry no plugin (they are narrowed by ListScope.plugins); a single device
        # always names its own
        foreign = sorted(target.plugins - principal.plugins)
        if foreign:
            return Decision(False, "a vendor account sees only devices of its own plugins ("
                            f"{', '.join(sorted(principal.plugins))})")
    return Decision(True, "allowed")


@dataclass
class AccessPolicy:
    """:func:`decide` with the area tree read from the store (once per code per instance —
    make one per request)."""

    store: Store
    _ancestry: dict[str, frozenset[str]] = field(default_factory=dict)

    async def ancestry(self, codes: Iterable[str | None]) -> dict[str, frozenset[str]]:
        for code in {c for c in codes if c is not None} - set(self._ancestry):
            self._ancestry[code] = await self._up(code)
        return self._ancestry

    async def _up(self, code: str) -> frozenset[str]:
        up = select(AreaRow.code, AreaRow.parent_code, AreaRow.merged_into).where(
            AreaRow.code == code).cte("up", recursive=True)
        up = up.union(select(AreaRow.code, AreaRow.parent_code, AreaRow.merged_into).where(
            or_(AreaRow.code == up.c.parent_code, AreaRow.code == up.c.merged_into)))
        async with self.store.sessions() as s:
            found = frozenset((await s.execute(select(up.c.code))).scalars())
        return found | {code}

    async def decide(self, principal: Principal, action: Action,
                     target: Target | None = None) -> Decision:
        target = target or Target()
        ancestry = await self.ancestry([*target.areas, *target.reaches, principal.area_code])
        return decide(principal, action, target, ancestry)

    async def check(self, principal: Principal, action: Action,
                    target: Target | None = None) -> None:
        """Raise :class:`AccessDenied` unless allowed."""
        decision = await self.decide(principal, action, target)
        if not decision.allowed:
            raise AccessDenied(decision.reason)

    async def list_scope(self, principal: Principal, action: Action) -> ListScope:
        """What a listing may show this caller (the role must have ``action`` at all)."""
        if action not in ROLE_ACTIONS[principal.role]:
            raise AccessDenied(f"the {principal.role.value} role may not do {action.value}")
        plugins = principal.plugins if principal.role is Role.VENDOR else None
        return ListScope(principal.area_code, plugins)

    async def in_scope(self, principal: Principal, code: str | None) -> bool:
        return within(code, principal, await self.ancestry([code, principal.area_code]))

    async def part_in_scope(self, principal: Principal, areas: Mapping[str, str | None]
                            ) -> list[str]:
        """The keys of ``areas`` (e.g. device id -> area code) whose area is in scope."""
        ancestry = await self.ancestry([*areas.values(), principal.area_code])
        return [key for key, code in areas.items() if within(code, principal, ancestry)]
