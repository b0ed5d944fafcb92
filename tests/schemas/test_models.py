"""The common schema: every model survives a JSON round trip, bad input gets a usable message,
and the published JSON Schema files match the models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, SecretStr, TypeAdapter, ValidationError

from tests.support.schema_strategies import from_schema
from ttcs.schemas import (
    COMMAND_ADAPTER,
    EVENT_ADAPTER,
    Area,
    Broadcast,
    CommandResult,
    Connectivity,
    Content,
    Device,
    DeviceChanges,
    DeviceInfo,
    DeviceSpec,
    DeviceStatus,
    DiscoveredDevice,
    Group,
    PluginManifest,
    native,
    parse_command,
)
from ttcs.schemas.access import ApiToken, IssuedToken, Login, TokenSpec, User, UserSpec
from ttcs.schemas.api import FieldProblem, Problem
from ttcs.schemas.base import evolved
from ttcs.schemas.errors import explain
from ttcs.schemas.export import render

SPEC_DIR = Path(__file__).resolve().parents[2] / "docs" / "spec"

MODELS: list[type[BaseModel]] = [Area, Device, DeviceSpec, DeviceChanges, DeviceInfo,
                                 DeviceStatus, DiscoveredDevice, Group, CommandResult, Content,
                                 Broadcast, PluginManifest, native.Birth, native.Presence,
                                 native.DeviceEvent, User, TokenSpec, ApiToken, IssuedToken,
                                 Problem, FieldProblem]
#: models with a password: it serialises masked, so the round trip goes through a dump that
#: reveals it (as the API reads a request body), and the masked dump is checked apart
WITH_SECRETS: list[type[BaseModel]] = [UserSpec, Login]
UNIONS: dict[str, TypeAdapter[Any]] = {"command": COMMAND_ADAPTER, "event": EVENT_ADAPTER}


SCHEMA_SETTINGS = settings(max_examples=30, deadline=None,
                           suppress_health_check=[HealthCheck.too_slow,
                                                  HealthCheck.filter_too_much])


def _instances(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Documents valid by the published JSON Schema (the contract vendors code against)."""
    return from_schema(schema)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
@SCHEMA_SETTINGS
@given(data=st.data())
def test_every_model_round_trips_through_json(model: type[BaseModel], data: st.DataObject
                                              ) -> None:
    document = data.draw(_instances(model.model_json_schema()))
    try:
        instance = model.model_validate(document)
    except ValidationError:
        assume(False)  # cross-field rules (e.g. 'approved needs approval') are not in JSON Schema
        return
    again = model.model_validate_json(instance.model_dump_json())
    assert again == instance


@pytest.mark.parametrize("model", WITH_SECRETS, ids=lambda m: m.__name__)
@SCHEMA_SETTINGS
@given(data=st.data())
def test_models_with_a_password_round_trip_and_never_print_it(model: type[BaseModel],
                                                              data: st.DataObject) -> None:
    document = data.draw(_instances(model.model_json_schema()))
    try:
        instance = model.model_validate(document)
    except ValidationError:
        assume(False)
        return
    revealed = {k: v.get_secret_value() if isinstance(v, SecretStr) else v
                for k, v in instance}  # the fields as they are (a dump would mask it)
    assert model.model_validate(revealed) == instance
    secret: SecretStr | None = getattr(instance, "password")  # noqa: B009
    printed = json.loads(instance.model_dump_json())["password"]
    assert printed == (None if secret is None else
                       "**********" if secret.get_secret_value() else "")


@pytest.mark.parametrize("name", sorted(UNIONS))
@SCHEMA_SETTINGS
@given(data=st.data())
def test_every_union_member_round_trips(name: str, data: st.DataObject) -> None:
    adapter = UNIONS[name]
    document = data.draw(_instances(adapter.json_schema()))
    try:
        instance = adapter.validate_python(document)
    except ValidationError:
        assume(False)
        return
    again = adapter.validate_json(adapter.dump_json(instance))
    assert again == instance
    assert type(again) is type(instance)


def test_secrets_in_device_config_are_masked_when_serialised() -> None:
    device = Device(id="d1", name="x", kind="ip_speaker", vendor="v", model="m", serial="S1",
                    plugin="native", area_code="19900",
                    config={"host": "10.0.0.2", "password": SecretStr("hunter2")})
    text = device.model_dump_json()
    assert "hunter2" not in text
    assert json.loads(text)["config"] == {"host": "10.0.0.2", "password": "**********"}
    assert "hunter2" not in repr(device)


@pytest.mark.parametrize(("payload", "message"), [
    ({"type": "set_volume", "volume": 400}, "set_volume.volume: Input should be less than or "
                                            "equal to 100 (got 400)"),
    ({"type": "play"}, "play needs 'media' or 'stream_url'"),
    ({"type": "show", "txt": "hello"}, "show.txt: is not a known field"),
    ({"type": "jump"}, "does not match any of the expected tags"),
    ({"volume": 3}, "Unable to extract tag using discriminator 'type'"),
])
def test_bad_commands_are_rejected_with_a_message_a_person_can_act_on(
        payload: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_command(payload)
    assert message in explain(info.value)


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValidationError) as info:
        parse_command({"type": "stop", "issued_at": "2026-01-01T07:00:00"})
    assert "needs a time zone" in explain(info.value)


def test_an_approved_content_item_needs_its_approval_record() -> None:
    with pytest.raises(ValidationError, match="needs its 'approval' record"):
        Content(id="c1", title="Tin", kind="text", text="Xin chào", issuer="UBND",
                state="approved")


def test_idempotency_key_defaults_to_the_command_id() -> None:
    command = parse_command({"type": "stop"})
    assert command.idempotency_key == command.id


def test_published_spec_files_match_the_models() -> None:
    """`make spec` output is committed; this fails when models change without regenerating."""
    expected = render()
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in SPEC_DIR.glob("*.json")
               if p.name in expected}
    missing = sorted(set(expected) - set(on_disk))
    assert not missing, f"run `make spec`: missing {missing}"
    stale = sorted(name for name, text in expected.items() if on_disk[name] != text)
    assert not stale, f"run `make spec`: {stale} differ from the models"


def test_asyncapi_document_names_every_native_topic() -> None:
    doc = json.loads(render()["native-asyncapi.json"])
    addresses = {c["address"] for c in doc["channels"].values()}
    assert addresses == {native.topic("{serial}", leaf)
                         for leaf in ("birth", "conn", "status", "event", "ack", "cmd")}


def test_published_openapi_document_matches_the_endpoints() -> None:
    """docs/spec/openapi.json is generated from the API's endpoints and models (`make spec`)."""
    from ttcs.core.api.openapi import render as render_openapi

    on_disk = (SPEC_DIR / "openapi.json").read_text(encoding="utf-8")
    assert on_disk == render_openapi(), "run `make spec`: openapi.json differs from the API"


@given(volume=st.one_of(st.none(), st.integers(0, 100)),
       connectivity=st.sampled_from(list(Connectivity)),
       firmware=st.one_of(st.none(), st.text(max_size=20)))
def test_an_evolved_status_equals_the_pydantic_copy_and_leaves_the_original(
        volume: int | None, connectivity: Connectivity, firmware: str | None) -> None:
    original = DeviceStatus(volume=volume, signal=-70, telemetry={"vswr": 1.2})
    changes: dict[str, Any] = {"connectivity": connectivity, "firmware": firmware}
    fast, slow = evolved(original, changes), original.model_copy(update=changes)
    assert fast == slow and fast.model_fields_set == slow.model_fields_set
    assert fast.model_dump_json() == slow.model_dump_json()
    assert original.connectivity is Connectivity.UNKNOWN and original.firmware is None
    assert "connectivity" not in original.model_fields_set
