"""The OpenAPI document describes every route, and problems are RFC 9457.

That each response model is what its renderer writes: `test_resources.py`."""

import json
import re

from gateway.app import ENDPOINTS
from gateway.app import openapi_document
from gateway.openapi import build_document
from gateway.problems import CATALOGUE
from gateway.problems import Problem


def test_the_openapi_document_describes_every_route_with_its_problems() -> None:
    document = build_document(ENDPOINTS, title="paystream", version="test")
    for endpoint in ENDPOINTS:
        operation = document["paths"][endpoint.path][endpoint.method.lower()]
        assert str(endpoint.ok_status) in operation["responses"]
        for code in endpoint.problem_codes():
            status = str(CATALOGUE[code].status)
            assert code in operation["responses"][status]["description"]
    create = document["paths"]["/payments"]["post"]
    header = [p for p in create["parameters"] if p["name"] == "Idempotency-Key"]
    assert header and header[0]["required"] is True
    assert "CreatePaymentRequest" in document["components"]["schemas"]


def test_a_problem_is_rfc_9457_with_a_stable_code() -> None:
    problem = Problem("invalid_state", "a FAILED payment cannot be captured", paymentId="pay_1")
    response = problem.response()
    assert response.status_code == 409
    assert response.media_type == "application/problem+json"
    import orjson

    body = orjson.loads(problem.body())
    assert body["code"] == "invalid_state" and body["status"] == 409
    assert body["type"] == "urn:paystream:problem:invalid_state"
    assert body["paymentId"] == "pay_1"


def test_links_point_at_operations_that_exist() -> None:
    document = build_document(ENDPOINTS, title="paystream", version="test")
    operations = {op["operationId"] for path in document["paths"].values() for op in path.values()}
    create = document["paths"]["/payments"]["post"]["responses"]["201"]
    assert (
        create["links"] and {link["operationId"] for link in create["links"].values()} <= operations
    )


def test_every_reference_in_the_document_resolves() -> None:
    document = openapi_document()
    text = json.dumps(document)
    references = set(re.findall(r'"\$ref": "([^"]+)"', text))
    assert references and "$defs" not in text
    for reference in references:
        prefix, name = reference.rsplit("/", 1)
        assert prefix == "#/components/schemas" and name in document["components"]["schemas"]


def test_query_parameters_are_documented_as_values_never_null() -> None:
    for path in openapi_document()["paths"].values():
        for operation in path.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query":
                    assert "null" not in json.dumps(parameter["schema"]), parameter


def test_the_document_shows_customer_authentication() -> None:
    document = openapi_document()
    schemas = document["components"]["schemas"]
    assert "REQUIRES_ACTION" in schemas["PaymentStatus"]["enum"]
    assert {"nextAction", "returnUrl"} <= set(schemas["Payment"]["properties"])
    assert "returnUrl" in schemas["CreatePaymentRequest"]["properties"]
    confirm = document["paths"]["/payments/{paymentId}/confirm"]["post"]
    assert "202" in confirm["responses"] and "409" in confirm["responses"]
