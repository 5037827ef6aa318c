"""Schemathesis against the gateway's OpenAPI document: whatever it sends,
the gateway answers without a 5xx and every answer matches the document.

The fuzzer acts as a merchant of its own with every role, so the keys it
rotates and revokes and the objects it creates never touch the demo
merchant the other e2e tests use."""

from __future__ import annotations

import json
import os

import httpx
import hypothesis
import psycopg
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance
from schemathesis.specs.openapi.checks import negative_data_rejection
from schemathesis.specs.openapi.checks import response_headers_conformance
from schemathesis.specs.openapi.checks import response_schema_conformance
from schemathesis.specs.openapi.checks import status_code_conformance

from gateway.app import openapi_document
from gateway.auth import MERCHANT_ROLES
from store.keys import Owner
from store.keys import create_key
from store.merchants import ensure_merchant
from tests.support.stack import RunningStack

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]

# Modest in the suite; PAYSTREAM_FUZZ_EXAMPLES=500 for a long hunt.
EXAMPLES = int(os.environ.get("PAYSTREAM_FUZZ_EXAMPLES", "25"))

# Loaded from the code that serves /openapi.json (the first test proves they
# are the same document), so pytest can name a test per operation.
schema = schemathesis.openapi.from_dict(openapi_document())
# The fuzzer's own key goes in every request; generated Authorization headers
# would only be overridden by it and then judged as if they had been sent.
schema.config.generation.update(with_security_parameters=False)


@pytest.fixture(scope="session")
def fuzz_headers(stack: RunningStack) -> dict[str, str]:
    pepper = json.loads((stack.root / "secrets.json").read_text())["key_pepper"].encode()
    with psycopg.connect(stack.info["databaseUrl"], autocommit=True) as conn:
        ensure_merchant(conn, "mer_fuzz", "Fuzzing merchant")
        _, key = create_key(
            conn, Owner.merchant("mer_fuzz"), list(MERCHANT_ROLES), pepper, "schemathesis"
        )
    return {"Authorization": f"Bearer {key}"}


def test_the_fuzzed_document_is_the_one_the_gateway_serves(stack: RunningStack) -> None:
    served = httpx.get(f"{stack.gateway}/openapi.json").json()
    assert served == openapi_document()
    assert len(served["paths"]) >= 20


@schema.parametrize()
@hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
)
def test_every_operation_answers_without_a_5xx_and_as_documented(
    case: schemathesis.Case, stack: RunningStack, fuzz_headers: dict[str, str]
) -> None:
    case.call_and_validate(base_url=stack.gateway, headers=fuzz_headers, checks=CHECKS)
