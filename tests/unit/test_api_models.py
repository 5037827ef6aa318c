"""The API's documented shapes match what it actually answers."""

import json
import re
from datetime import UTC, datetime

from gateway.app import ENDPOINTS, openapi_document
from gateway.openapi import build_document
from gateway.problems import CATALOGUE, Problem
from gateway.schemas.payments import Payment, PaymentEvent
from payments.resources import payment_resource, timeline_event_resource
from store.payments import new_payment
from store.rows import PaymentEventRow


def test_the_payment_resource_is_exactly_what_the_openapi_model_describes() -> None:
    row = new_payment(
        merchant_id="mer_1",
        order_id="order-1",
        amount=1999,
        currency="EUR",
        capture_method="manual",
        method_token="tok_visa",
        description="a book",
        metadata={"sku": "b-1"},
        now=datetime(2026, 11, 24, 10, 0, 0, 123456, tzinfo=UTC),
    )
    resource = payment_resource(row)
    assert Payment.model_validate(resource).model_dump(by_alias=True) == resource
    assert resource["createdAt"] == "2026-11-24T10:00:00.123Z"


def test_the_timeline_event_resource_is_exactly_what_the_openapi_model_describes() -> None:
    event = PaymentEventRow(
        id="evt_1",
        payment_id="pay_1",
        type="payment.captured",
        from_status="PENDING",
        to_status="CAPTURED",
        source="psp",
        detail={},
        created_at=datetime.now(UTC),
    )
    resource = timeline_event_resource(event)
    assert PaymentEvent.model_validate(resource).model_dump(by_alias=True) == resource


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
