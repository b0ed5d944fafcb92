"""The access policy on its own: the pure decision, and scopes that follow merged areas."""

from __future__ import annotations

from tests.api.conftest import FOREIGN, OWN, ApiRig
from ttcs.core.access.policy import Action, Principal, Target, decide
from ttcs.schemas.access import Role

#: 46 (root) > 19900 > 19900-01; 46 > 20101
ANCESTRY = {"46": frozenset({"46"}), "19900": frozenset({"19900", "46"}),
            "19900-01": frozenset({"19900-01", "19900", "46"}),
            "20101": frozenset({"20101", "46"})}


def _op(area: str | None, role: Role = Role.OPERATOR, **kw: object) -> Principal:
    return Principal(name="x", role=role, area_code=area, **kw)  # type: ignore[arg-type]


def test_a_target_is_allowed_only_when_every_area_it_touches_is_in_scope() -> None:
    mixed = Target.of([OWN, FOREIGN])
    decision = decide(_op(OWN), Action.BROADCAST_WRITE, mixed, ANCESTRY)
    assert not decision.allowed and FOREIGN in decision.reason
    assert decide(_op("46"), Action.BROADCAST_WRITE, mixed, ANCESTRY).allowed
    assert decide(_op(None), Action.BROADCAST_WRITE, mixed, ANCESTRY).allowed


def test_something_of_no_area_belongs_to_hub_wide_accounts_only() -> None:
    nowhere = Target.of([None])
    assert not decide(_op(OWN), Action.GROUP_READ, nowhere, ANCESTRY).allowed
    assert decide(_op(None), Action.GROUP_READ, nowhere, ANCESTRY).allowed


def test_the_audit_log_needs_a_hub_wide_account_whatever_the_role() -> None:
    for area, allowed in ((None, True), ("46", True), (OWN, False)):
        auditor = _op(area, Role.AUDITOR)
        assert decide(auditor, Action.AUDIT_READ, Target(), ANCESTRY).allowed is allowed


def test_a_vendor_is_limited_to_its_plugins_and_never_broadcasts() -> None:
    vendor = _op(OWN, Role.VENDOR, plugins=frozenset({"ledviet"}))
    assert decide(vendor, Action.DEVICE_READ, Target.of([OWN], ["ledviet"]), ANCESTRY).allowed
    assert not decide(vendor, Action.DEVICE_READ, Target.of([OWN], ["native"]),
                      ANCESTRY).allowed
    assert not decide(vendor, Action.BROADCAST_WRITE, Target.of([OWN]), ANCESTRY).allowed


async def test_a_merged_commune_and_its_history_come_into_the_scope_of_the_area_it_joined(
        rig: ApiRig) -> None:
    operator = rig.as_("operator")
    foreign_device = rig.seeded.devices["foreign"]
    status, _, _ = await operator.get(f"/devices/{foreign_device}")
    assert status == 403
    status, body, _ = await rig.as_("root").post("/areas/merge", json={
        "sources": [FOREIGN], "into": OWN})
    assert status == 200, body
    status, device, _ = await operator.get(f"/devices/{foreign_device}")
    assert (status, device["area_code"]) == (200, OWN)
    # records kept under the old code (alarms, plays) are reachable through the merge
    status, _, _ = await operator.get("/alarms", params={"area": FOREIGN})
    assert status == 200
    status, _, _ = await rig.as_("operator").get(f"/users/{rig.seeded.users['foreign']}")
    assert status == 403  # operators do not read users, merged or not
    status, user, _ = await rig.as_("auditor").get(f"/users/{rig.seeded.users['foreign']}")
    assert (status, user["area_code"]) == (200, OWN)  # accounts moved with their area
