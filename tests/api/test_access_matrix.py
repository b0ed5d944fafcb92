"""The access-control matrix: every role × every endpoint × own / child / foreign area, over
real HTTP, on SQLite and PostgreSQL.

The expectations are written out here by hand (``MAY``), not taken from the policy module, so
the test is a second statement of the rules: it fails on any allow the table does not grant
(and on any refusal it does not foresee). A refusal by the access policy is a 403 whose
problem type is ``forbidden``; anything else means the request got past it.

Refused cases run first (they change nothing); allowed ones run after, destructive ones last,
so a deleted device cannot hide a refusal behind a 404.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.api.conftest import CHILD, FOREIGN, OWN, PLACES, ApiRig, Seeded
from tests.core.content.conftest import wav_bytes
from ttcs.core.api.routing import ENDPOINTS
from ttcs.schemas.access import Role

R = "read"
READS = {"area.read", "device.read", "group.read", "plugin.read", "content.read",
         "broadcast.read", "report.read", "alarm.read", "event.read", "health.read",
         "token.own"}
#: what each role may do — a hand-written copy of the rules in docs/api.md
MAY: dict[Role, set[str]] = {
    Role.ADMINISTRATOR: READS | {"area.write", "device.status", "device.write",
                                 "device.command", "group.write", "content.write",
                                 "content.approve", "broadcast.write", "audit.read",
                                 "user.read", "user.write", "webhook.write"},
    Role.AUDITOR: READS | {"audit.read", "user.read"},
    Role.APPROVER: READS | {"content.approve"},
    Role.OPERATOR: READS | {"device.status", "device.command", "content.write",
                            "broadcast.write"},
    Role.INTEGRATOR: READS | {"device.status", "device.write", "device.command",
                              "group.write", "webhook.write"},
    Role.VENDOR: {"device.read", "device.status", "plugin.read", "health.read", "event.read",
                  "token.own"},
}
#: actions not tied to an area: the same answer wherever
UNSCOPED = {"plugin.read", "health.read", "token.own"}
#: actions only an account scoped to the whole hub may take (the audit log is not per area)
HUB_WIDE = {"audit.read"}
#: requests that destroy what later cases use: run last
DESTRUCTIVE = {"remove_device", "cancel_broadcast", "disable_user", "revoke_token",
               "merge_areas", "delete_group"}
#: endpoints the matrix does not call, with the reason
NOT_HERE = {"login": "public; rate limits and audit have their own tests",
            "openapi_document": "public", "api_page": "public", "api_page_asset": "public",
            "stream_events": "a stream; its scoping has its own test",
            "export_plays": "checked through list_plays (same target)"}

Request = tuple[str, dict[str, Any]]  # path, request keyword arguments
Builder = Callable[[Seeded, str], Request | None]


def _areas_body(_: Seeded, place: str) -> Request:
    code = PLACES[place]
    return "/areas", {"json": {"areas": [{"code": f"{code}-new", "name": "new",
                                          "type": "village", "parent_code": code}]}}


def _content(s: Seeded, place: str, suffix: str = "", **kw: Any) -> Request | None:
    if place not in s.content:
        return None  # content belongs to communes, none to the child residential group
    return f"/content/{s.content[place]}{suffix}", kw


def _text(_: Seeded, place: str) -> Request | None:
    if place == "child":
        return None
    return "/content", {"json": {"title": "t", "text": "Kính thưa bà con", "issuer": "UBND",
                                 "area_code": PLACES[place]}}


def _file(_: Seeded, place: str) -> Request | None:
    if place == "child":
        return None
    return "/content/files", {"params": {"title": "f", "issuer": "UBND",
                                         "area_code": PLACES[place]}, "data": wav_bytes(0.1)}


def _broadcast(s: Seeded, place: str) -> Request:
    content = s.content["foreign" if place == "foreign" else "own"]
    return "/broadcasts", {"json": {"content_id": content,
                                    "targets": {"devices": [s.devices[place]]}}}


def _listing(path: str, param: str = "area") -> Builder:
    return lambda s, place: (path, {"params": {param: PLACES[place]}})


def _obj(kind: str, path: str, **kw: Any) -> Builder:
    def build(s: Seeded, place: str) -> Request:
        return path.format(getattr(s, kind)[place]), dict(kw)
    return build


def _same(path: str, **kw: Any) -> Builder:
    return lambda s, place: (path, dict(kw))


BUILDERS: dict[str, Builder] = {
    "list_areas": _listing("/areas", "under"),
    "get_area": lambda s, place: (f"/areas/{PLACES[place]}", {}),
    "import_areas": _areas_body,
    "merge_areas": lambda s, place: ("/areas/merge", {"json": {
        "sources": [f"{PLACES[place]}-m1"], "into": f"{PLACES[place]}-m2"}}),
    "list_devices": _listing("/devices"),
    "add_device": lambda s, place: ("/devices", {"json": {
        "plugin": "native", "kind": "ip_speaker", "area_code": PLACES[place],
        "config": {"serial": f"NEW-{place}"}}}),
    "get_device": _obj("devices", "/devices/{}"),
    "update_device": _obj("devices", "/devices/{}", json={"name": "renamed"}),
    "remove_device": _obj("devices", "/devices/{}"),
    "device_status": _obj("devices", "/devices/{}/status"),
    "read_device_status": _obj("devices", "/devices/{}/status"),
    "command_device": _obj("devices", "/devices/{}/commands",
                           json={"type": "set_volume", "volume": 30}),
    "device_timeline": _obj("devices", "/devices/{}/timeline"),
    "list_groups": _listing("/groups"),
    "create_group": lambda s, place: ("/groups", {"json": {
        "id": f"new-{place}", "name": "new", "area_code": PLACES[place]}}),
    "get_group": _obj("groups", "/groups/{}"),
    "update_group": _obj("groups", "/groups/{}", json={"name": "renamed"}),
    "delete_group": _obj("groups", "/groups/{}"),
    "change_members": lambda s, place: (f"/groups/{s.groups[place]}/members",
                                        {"json": {"add": [s.devices[place]]}}),
    "list_content": _listing("/content"),
    "add_text": _text,
    "add_file": _file,
    "get_content": _content,
    "edit_content": lambda s, place: _content(s, place, json={"issuer": "UBND (edited)"}),
    "submit_content": lambda s, place: _content(s, place, "/submit"),
    "approve_content": lambda s, place: _content(s, place, "/approve"),
    "reject_content": lambda s, place: _content(s, place, "/reject", json={"reason": "no"}),
    "list_broadcasts": _listing("/broadcasts"),
    "create_broadcast": _broadcast,
    "get_broadcast": _obj("broadcasts", "/broadcasts/{}"),
    "cancel_broadcast": _obj("broadcasts", "/broadcasts/{}/cancel"),
    "decide_broadcast": lambda s, place: (f"/broadcasts/{s.broadcasts[place]}/decision", {
        "json": {"commune": PLACES[place], "accept": True}}),
    "broadcast_coverage": _obj("broadcasts", "/broadcasts/{}/coverage"),
    "list_plays": _listing("/playlog"),
    "list_alarms": _listing("/alarms"),
    "list_plugins": _same("/plugins"),
    "health": _same("/health"),
    "list_audit": _same("/audit"),
    "verify_audit": _same("/audit/verify"),
    "whoami": _same("/me"),
    "my_tokens": _same("/me/tokens"),
    "create_my_token": _same("/me/tokens", json={"label": "mine"}),
    "revoke_my_token": _same("/me/tokens/000000000000"),
    "list_users": _listing("/users"),
    "add_user": lambda s, place: ("/users", {"json": {
        "name": f"new-{place}", "role": "operator", "area_code": PLACES[place]}}),
    "get_user": _obj("users", "/users/{}"),
    "disable_user": _obj("users", "/users/{}/disable"),
    "enable_user": _obj("users", "/users/{}/enable"),
    "user_tokens": _obj("users", "/users/{}/tokens"),
    "create_user_token": _obj("users", "/users/{}/tokens", json={"label": "x"}),
    "revoke_token": _obj("tokens", "/tokens/{}"),
    "list_webhooks": _listing("/webhooks"),
    "create_webhook": lambda s, place: ("/webhooks", {"json": {
        "url": "http://127.0.0.1:9/hook", "area_code": PLACES[place]}}),
    "get_webhook": _obj("webhooks", "/webhooks/{}"),
    "delete_webhook": _obj("webhooks", "/webhooks/{}"),
    "webhook_deliveries": _obj("webhooks", "/webhooks/{}/deliveries"),
}


@dataclass(frozen=True)
class Case:
    role: Role
    operation: str
    action: str
    method: str
    place: str
    path: str
    kwargs: dict[str, Any]

    @property
    def expected(self) -> bool:
        if self.action not in MAY[self.role]:
            return False
        if self.action in UNSCOPED:
            return True
        if self.action in HUB_WIDE:
            return False  # these accounts are scoped to a ward
        return self.place != "foreign"

    def __str__(self) -> str:
        return f"{self.role.value:13} {self.method:6} {self.path} ({self.place})"


def cases(seeded: Seeded) -> list[Case]:
    found = []
    for ep in ENDPOINTS:
        if ep.operation_id in NOT_HERE:
            continue
        assert ep.action is not None, f"{ep.operation_id} is public but not listed in NOT_HERE"
        assert ep.operation_id in BUILDERS, f"no matrix request for {ep.operation_id}"
        for place in ("own", "child", "foreign"):
            if ep.action.value in UNSCOPED and place != "own":
                continue
            built = BUILDERS[ep.operation_id](seeded, place)
            if built is None:
                continue
            path, kwargs = built
            for role in Role:
                found.append(Case(role, ep.operation_id, ep.action.value, ep.method, place,
                                  "/api/v1" + path, kwargs))
    return found


def _refused_by_policy(status: int, body: Any) -> bool:
    return status == 403 and isinstance(body, dict) and body.get("type", "").endswith(
        "/forbidden")


async def test_every_role_on_every_endpoint_in_its_own_area_a_child_and_a_foreign_one(
        rig: ApiRig) -> None:
    all_cases = cases(rig.seeded)
    ordered = sorted(all_cases, key=lambda c: (c.expected, c.operation in DESTRUCTIVE))
    wrong: list[str] = []
    for case in ordered:
        status, body, _ = await rig.call(case.method, case.path,
                                         token=rig.tokens[case.role.value], **case.kwargs)
        refused = _refused_by_policy(status, body)
        if case.expected and refused:
            wrong.append(f"REFUSED {case}: {body.get('detail')}")
        elif not case.expected and not refused:
            wrong.append(f"ALLOWED {case}: {status} {str(body)[:120]}")
        assert status < 500 or status in (502, 504), f"{case}: {status} {body}"
    assert not wrong, f"{len(wrong)} of {len(all_cases)} cases differ from the table:\n" + \
        "\n".join(wrong)
    assert len(all_cases) > 500


async def test_hub_wide_accounts_read_the_audit_log_and_reach_every_area(rig: ApiRig) -> None:
    for account in ("root", "root-auditor"):
        status, body, _ = await rig.as_(account).get("/audit/verify")
        assert (status, body["ok"]) == (200, True)
        status, page, _ = await rig.as_(account).get("/devices",
                                                     params={"area": FOREIGN})
        assert status == 200
        assert [d["id"] for d in page["items"]] == [rig.seeded.devices["foreign"]]


async def test_a_vendor_sees_only_devices_of_its_own_plugins(rig: ApiRig) -> None:
    from ttcs.schemas import DeviceInfo, DeviceSpec

    other = await rig.hub.registry.add_device(
        DeviceSpec(plugin="ledviet", kind="led_board", area_code=OWN,
                   config={"url": "http://127.0.0.1:9", "token": "t0ken-for-test"}), "test",
        info=DeviceInfo(serial="LED-1", vendor="LedViet", model="x", kind="led_board"))
    vendor = rig.as_("vendor")
    status, page, _ = await vendor.get("/devices")
    assert status == 200
    ids = {d["id"] for d in page["items"]}
    assert ids == {rig.seeded.devices["own"], rig.seeded.devices["child"]}
    status, body, _ = await vendor.get(f"/devices/{other.id}")
    assert _refused_by_policy(status, body), body
    status, body, _ = await vendor.get("/devices", params={"plugin": "ledviet"})
    assert _refused_by_policy(status, body), body
    status, body, _ = await vendor.post("/broadcasts", json={
        "content_id": rig.seeded.content["own"],
        "targets": {"devices": [rig.seeded.devices["own"]]}})
    assert _refused_by_policy(status, body), body


async def test_listings_show_only_the_callers_scope(rig: ApiRig) -> None:
    for account, path in (("operator", "/devices"), ("operator", "/groups"),
                          ("operator", "/broadcasts"), ("auditor", "/users")):
        status, page, _ = await rig.as_(account).get(path)
        assert status == 200
        text = str(page["items"])
        assert rig.seeded.devices["foreign"] not in text, path
        assert "g-foreign" not in text and "user-foreign" not in text, path
        assert page["items"], f"{path} shows nothing of the own area"
    status, page, _ = await rig.as_("operator").get("/areas")
    assert {a["code"] for a in page["items"]} >= {OWN, CHILD}
    assert FOREIGN not in {a["code"] for a in page["items"]}
