"""The OpenAPI 3.1 document, generated from the endpoint declarations and their pydantic models.

Served at ``/api/v1/openapi.json`` and written to ``docs/spec/openapi.json`` by ``make spec``;
a test fails when the two drift apart.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, TypeAdapter

from ... import __version__
from ...schemas.api import Problem
from .problems import PROBLEM
from .routing import ENDPOINTS, JSON, PREFIX, Endpoint

REF = "#/components/schemas/{model}"

_STATUS_TEXT = {200: "OK", 201: "Created", 204: "No content", 400: "Bad request",
                401: "Not authenticated: missing, unknown, expired or revoked token",
                403: "Not allowed for this role or outside this account's area",
                404: "Not found", 409: "Conflict with the current state",
                422: "Invalid input (the problem names each field)",
                429: "Too many requests (see Retry-After)",
                502: "The device could not be reached or understood",
                504: "The device did not answer in time"}

DESCRIPTION = """\
The northbound API of TTCS Hub: areas, devices, groups, content and its approval,
broadcasts, proof of play, alarms, the audit trail and an event stream.

Authenticate with `Authorization: Bearer <token>` (create one with `ttcs tokens create USER`
or `POST /api/v1/auth/login`). Every account has a role and an area: it sees and acts on
that area and everything below it. Errors are `application/problem+json` (RFC 9457).
Listings take `limit` and `offset` and give the link to the next page in `next`.
"""


def _adapter(model: type[BaseModel] | TypeAdapter[Any]) -> TypeAdapter[Any]:
    return model if isinstance(model, TypeAdapter) else TypeAdapter(model)


def _query_parameter(name: str, schema: dict[str, Any], required: bool) -> dict[str, Any]:
    schema = dict(schema)
    if "anyOf" in schema:  # an optional filter: the query string cannot carry null
        options = [s for s in schema.pop("anyOf") if s.get("type") != "null"]
        if len(options) == 1:
            schema = {**options[0], **schema}
        else:
            schema["anyOf"] = options
        if schema.get("default", 0) is None:
            del schema["default"]
    description = schema.pop("description", None)
    schema.pop("title", None)
    parameter = {"name": name, "in": "query", "required": required, "schema": schema}
    if description:
        parameter["description"] = description
    return parameter


def document() -> dict[str, Any]:
    """The whole OpenAPI document (deterministic: same code, same text)."""
    from . import resources  # noqa: F401  (declares the endpoints)

    inputs: list[tuple[tuple[int, str], Any, TypeAdapter[Any]]] = [
        ((0, "problem"), "serialization", TypeAdapter(Problem))]
    for n, ep in enumerate(ENDPOINTS, start=1):
        if ep.body is not None:
            inputs.append(((n, "body"), "validation", _adapter(ep.body)))
        if ep.query is not None:
            inputs.append(((n, "query"), "validation", _adapter(ep.query)))
        if ep.response is not None:
            inputs.append(((n, "response"), "serialization", _adapter(ep.response)))
    by_key, definitions = TypeAdapter.json_schemas(
        [(key, mode, adapter) for key, mode, adapter in inputs], ref_template=REF)
    components = dict(definitions.get("$defs", {}))
    schemas = {key: schema for (key, _mode), schema in by_key.items()}
    problem = schemas[(0, "problem")]
    paths: dict[str, dict[str, Any]] = {}
    for n, ep in enumerate(ENDPOINTS, start=1):
        paths.setdefault(PREFIX + ep.path, {})[ep.method.lower()] = _operation(
            ep, n, schemas, components, problem)
    # query models are described as parameters, not as bodies
    for n, ep in enumerate(ENDPOINTS, start=1):
        if ep.query is not None:
            ref = schemas[(n, "query")].get("$ref", "")
            used_elsewhere = any(ref in json.dumps(v) for k, v in components.items()
                                 if not ref.endswith("/" + k))
            if ref and not used_elsewhere:
                components.pop(ref.rsplit("/", 1)[-1], None)
    return {
        "openapi": "3.1.0",
        "info": {"title": "TTCS Hub API", "version": __version__, "description": DESCRIPTION,
                 "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}},
        "servers": [{"url": "/", "description": "this hub"}],
        "tags": [{"name": t} for t in dict.fromkeys(ep.tag for ep in ENDPOINTS)],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer", "bearerFormat": "ttcs_<id>_<secret>",
                "description": "an API token (`ttcs tokens create`, or a login)"}},
        },
    }


def _operation(ep: Endpoint, n: int, schemas: dict[Any, Any], components: dict[str, Any],
               problem: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": ep.operation_id, "summary": ep.summary,
                          "tags": [ep.tag]}
    if ep.description:
        op["description"] = ep.description
    if ep.action is not None:
        op["description"] = (op.get("description", "") + f"\n\nNeeds `{ep.action.value}`."
                             ).strip()
    parameters = [{"name": name, "in": "path", "required": True,
                   "schema": {"type": "string", "minLength": 1, "maxLength": 200}}
                  for name in re.findall(r"{(\w+)}", ep.path)]
    if ep.query is not None:
        query = schemas[(n, "query")]
        model = components[query["$ref"].rsplit("/", 1)[-1]] if "$ref" in query else query
        required = set(model.get("required", []))
        parameters += [_query_parameter(name, prop, name in required)
                       for name, prop in model.get("properties", {}).items()]
    if parameters:
        op["parameters"] = parameters
    if ep.body is not None:
        op["requestBody"] = {"required": True,
                             "content": {JSON: {"schema": schemas[(n, "body")]}}}
    elif ep.raw_body is not None:
        op["requestBody"] = {"required": True, "content": {ep.raw_body: {
            "schema": {"type": "string", "format": "binary"}}}}
    responses: dict[str, Any] = {}
    if ep.status == 204:
        responses["204"] = {"description": _STATUS_TEXT[204]}
    elif ep.response is not None:
        responses[str(ep.status)] = {"description": _STATUS_TEXT.get(ep.status, "OK"),
                                     "content": {ep.produces: {
                                         "schema": schemas[(n, "response")]}}}
    else:  # not described by a model: a JSON document of its own, a file, a stream
        responses[str(ep.status)] = {"description": _STATUS_TEXT.get(ep.status, "OK"),
                                     "content": {media: {"schema": {} if
                                                         media == JSON else {"type": "string"}}
                                                 for media in (ep.produces, *ep.also_produces)}}
    errors = {422} if (ep.body or ep.query or ep.raw_body) else set()
    if ep.body is not None:
        errors.add(400)
    if ep.action is not None:
        errors |= {401, 403}
        op["security"] = [{"bearer": []}]
    else:
        op["security"] = []
    if "{" in ep.path:
        errors |= {404}
    if ep.method != "GET":
        errors |= {409}
    errors |= set(ep.errors)
    for status in sorted(errors):
        responses[str(status)] = {"description": _STATUS_TEXT[status],
                                  "content": {PROBLEM: {"schema": problem}}}
    responses["default"] = {"description": "any other error",
                            "content": {PROBLEM: {"schema": problem}}}
    op["responses"] = responses
    return op


def render() -> str:
    return json.dumps(document(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
