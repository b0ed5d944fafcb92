"""Pieces of the core cases that read plugin data: a manifest's config schema."""

from __future__ import annotations

from pydantic import BaseModel, TypeAdapter

from ttcs.conformance.checks.core import schema_properties


class Transmitter(BaseModel):
    host: str
    community: str | None = None


class Receiver(BaseModel):
    zone: int


def test_the_settings_a_schema_describes_are_found_through_unions_and_refs() -> None:
    one_of = {"oneOf": [Transmitter.model_json_schema(), Receiver.model_json_schema()]}
    any_of = TypeAdapter(Transmitter | Receiver).json_schema()  # $defs and $ref
    assert "$ref" in str(any_of)
    for schema in (one_of, any_of):
        assert schema_properties(schema) == {"host", "community", "zone"}
    assert schema_properties(Receiver.model_json_schema()) == {"zone"}
