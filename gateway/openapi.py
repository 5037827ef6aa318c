"""The OpenAPI 3.1 document, built from the same endpoint declarations as the
routes (`gateway.endpoint`): nothing is served undocumented."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from gateway.auth import needs
from gateway.endpoint import Endpoint
from gateway.problems import CATALOGUE
from gateway.schemas.common import ProblemDetail


def build_document(
    endpoints: Sequence[Endpoint[Any, Any]], *, title: str, version: str
) -> dict[str, Any]:
    models: set[type[BaseModel]] = {ProblemDetail}
    for endpoint in endpoints:
        models.update(m for m in (endpoint.body, endpoint.response) if m is not None)
        models.update(model for _, model in endpoint.other_responses)
    _, definitions = models_json_schema(
        [(model, "validation") for model in sorted(models, key=lambda m: m.__name__)],
        ref_template="#/components/schemas/{model}",
        by_alias=True,
    )
    paths: dict[str, dict[str, Any]] = defaultdict(dict)
    for endpoint in endpoints:
        paths[endpoint.path][endpoint.method.lower()] = _operation(endpoint)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Every error is application/problem+json with a stable `code`: "
            + ", ".join(sorted(CATALOGUE)),
        },
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer"},
                "webhookSignature": {"type": "apiKey", "in": "header", "name": "webhook-signature"},
            },
        },
        "paths": dict(paths),
    }


def _operation(endpoint: Endpoint[Any, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": endpoint.summary,
        "operationId": operation_id(endpoint.summary),
        "tags": [endpoint.tag],
        "parameters": _parameters(endpoint),
        "responses": _responses(endpoint),
    }
    if endpoint.roles:
        operation["security"] = [{"apiKey": []}]
        operation["description"] = f"Requires {needs(endpoint.roles)}."
    elif endpoint.security == "webhook-signature":
        operation["security"] = [{"webhookSignature": []}]
        operation["description"] = (
            "Signed the Standard Webhooks way: webhook-id, webhook-timestamp and "
            "webhook-signature headers, HMAC-SHA256 with the provider's whsec_ secret."
        )
    else:
        operation["security"] = []
    if endpoint.body is not None:
        content: dict[str, Any] = {"application/json": {"schema": _ref(endpoint.body)}}
        if endpoint.csv_upload:
            content["text/csv"] = {"schema": {"type": "string", "format": "binary"}}
        operation["requestBody"] = {"required": True, "content": content}
    return operation


def _parameters(endpoint: Endpoint[Any, Any]) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = []
    for segment in endpoint.path.split("/"):
        if segment.startswith("{"):
            name = segment.strip("{}")
            parameters.append(
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            )
    if endpoint.query is not None:
        schema = endpoint.query.model_json_schema(
            by_alias=True, ref_template="#/components/schemas/{model}"
        )
        for name, prop in schema["properties"].items():
            parameters.append(
                {
                    "name": name,
                    "in": "query",
                    "required": name in schema.get("required", []),
                    "schema": _query_schema(prop),
                }
            )
    if endpoint.idempotency is not None:
        parameters.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": endpoint.idempotency == "required",
                "description": "1 to 255 printable characters; the same key and request "
                "replays the first answer with Idempotent-Replayed: true",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            }
        )
    return parameters


def _query_schema(prop: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent or a value, never null: `X | None` in the
    model documents as X."""
    prop = {key: value for key, value in prop.items() if key != "title"}
    members = [member for member in prop.pop("anyOf", []) if member != {"type": "null"}]
    if len(members) == 1:
        prop = {**members[0], **prop}
    elif members:
        prop["anyOf"] = members
    if prop.get("default", ...) is None:
        del prop["default"]
    return prop


def _responses(endpoint: Endpoint[Any, Any]) -> dict[str, Any]:
    descriptions = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content"}
    ok: dict[str, Any] = {"description": descriptions[endpoint.ok_status]}
    if endpoint.response is not None:
        ok["content"] = {"application/json": {"schema": _ref(endpoint.response)}}
    if endpoint.links:
        ok["links"] = {
            name: {
                "operationId": operation_id(target),
                "parameters": {parameter: f"$response.body#{pointer}"},
            }
            for name, target, parameter, pointer in endpoint.links
        }
    responses: dict[str, Any] = {str(endpoint.ok_status): ok}
    for status, model in endpoint.other_responses:
        responses[str(status)] = {
            "description": "See the body",
            "content": {"application/json": {"schema": _ref(model)}},
        }
    by_status: dict[int, list[str]] = defaultdict(list)
    for code in endpoint.problem_codes():
        by_status[CATALOGUE[code].status].append(code)
    for status, codes in sorted(by_status.items()):
        if str(status) in responses:
            continue
        responses[str(status)] = {
            "description": "; ".join(f"`{code}`: {CATALOGUE[code].title}" for code in codes),
            "content": {"application/problem+json": {"schema": _ref(ProblemDetail)}},
        }
    return responses


def operation_id(summary: str) -> str:
    """ "Get a payment's timeline" -> "get_a_payment_s_timeline"."""
    return re.sub(r"[^a-z0-9]+", "_", summary.lower()).strip("_")


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}
