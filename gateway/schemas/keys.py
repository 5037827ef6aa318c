"""API keys and platform operators."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator
from pydantic import Field

from gateway.auth import MERCHANT_ROLES
from gateway.auth import OPERATOR_ROLES
from gateway.schemas.common import ApiModel


def _merchant_role(value: str) -> str:
    if value not in MERCHANT_ROLES:
        whose = "an operator's role, not a merchant's" if value in OPERATOR_ROLES else "unknown"
        raise ValueError(f"{whose}; a merchant key holds only {', '.join(MERCHANT_ROLES)}")
    return value


def _operator_role(value: str) -> str:
    if value not in OPERATOR_ROLES:
        raise ValueError(f"not an operator's role; one of {', '.join(OPERATOR_ROLES)}")
    return value


MerchantRoleName = Annotated[str, AfterValidator(_merchant_role)]
OperatorRoleName = Annotated[str, AfterValidator(_operator_role)]


class CreateApiKeyRequest(ApiModel):
    roles: Annotated[
        list[MerchantRoleName], Field(min_length=1, max_length=len(MERCHANT_ROLES))
    ] = Field(description="Merchant roles only: a merchant key never holds an operator's")
    description: Annotated[str, Field(min_length=1, max_length=255)] | None = None


class RotateApiKeyRequest(ApiModel):
    grace_seconds: Annotated[int, Field(ge=0, le=7 * 86_400)] = Field(
        0, description="How long the old key keeps working; 0 revokes it at once"
    )


class ApiKey(ApiModel):
    key_id: str
    prefix: str = Field(description="The key's first characters, to tell keys apart")
    roles: list[str]
    description: str | None
    created_at: str
    revoked_at: str | None


class ApiKeyWithSecret(ApiKey):
    api_key: str = Field(description="Shown once; only its HMAC is stored")


class ApiKeyList(ApiModel):
    data: list[ApiKey]


class CreateOperatorRequest(ApiModel):
    name: Annotated[str, Field(min_length=1, max_length=255)]
    roles: Annotated[
        list[OperatorRoleName], Field(min_length=1, max_length=len(OPERATOR_ROLES))
    ] = Field(description="The first key's roles: reconciliation, admin")


class Operator(ApiModel):
    operator_id: str
    name: str
    created_at: str
    keys: list[ApiKey] = Field(description="Its keys, revoked ones included; never the keys")


class CreatedOperator(ApiModel):
    operator_id: str
    name: str
    created_at: str
    key: ApiKeyWithSecret = Field(description="The operator's first key, shown once")


class OperatorList(ApiModel):
    data: list[Operator]
