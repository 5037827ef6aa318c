"""Merchant webhook endpoints. Their secrets must be kept (they sign every
delivery); the API shows one only once, when it is made."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

from payments.ids import new_id
from store.statements import Statement
from store.statements import Steps
from store.statements import columns
from store.statements import execute
from store.statements import fetch_all
from store.statements import fetch_by_id
from store.statements import fetch_one
from store.statements import store_function


@dataclass(frozen=True, slots=True)
class EndpointRow:
    id: str
    merchant_id: str
    url: str
    event_types: list[str]
    secret: str
    previous_secret: str | None
    previous_retires_at: datetime | None
    status: str
    disabled_reason: str | None
    created_at: datetime
    deleted_at: datetime | None

    def signing_secrets(self, now: datetime) -> list[str]:
        """The secrets a delivery is signed with: two during a rotation's grace."""
        secrets = [self.secret]
        retires = self.previous_retires_at
        if self.previous_secret and retires is not None and retires > now:
            secrets.append(self.previous_secret)
        return secrets


_COLUMNS = columns(EndpointRow)
_LIVE = "deleted_at IS NULL"


@store_function
def create_endpoint(
    merchant_id: str, url: str, event_types: list[str], secret: str
) -> Steps[EndpointRow]:
    row = yield from fetch_one(
        EndpointRow,
        f"INSERT INTO webhook_endpoints (id, merchant_id, url, event_types, secret)"
        f" VALUES (%s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
        (new_id("we"), merchant_id, url, event_types, secret),
    )
    assert row is not None
    return row


@store_function
def list_endpoints(merchant_id: str) -> Statement[list[EndpointRow]]:
    return fetch_all(
        EndpointRow,
        f"SELECT {_COLUMNS} FROM webhook_endpoints WHERE merchant_id = %s AND {_LIVE} ORDER BY id",
        (merchant_id,),
    )


@store_function
def get_endpoint(merchant_id: str, endpoint_id: str) -> Statement[EndpointRow | None]:
    return fetch_by_id(
        EndpointRow, "webhook_endpoints", endpoint_id, merchant_id=merchant_id, where=_LIVE
    )


@store_function
def delete_endpoint(merchant_id: str, endpoint_id: str) -> Steps[bool]:
    deleted = yield from execute(
        f"UPDATE webhook_endpoints SET deleted_at = now() WHERE id = %s AND merchant_id = %s"
        f" AND {_LIVE}",
        (endpoint_id, merchant_id),
    )
    return deleted == 1


@store_function
def rotate_secret(
    merchant_id: str, endpoint_id: str, secret: str, grace: timedelta
) -> Statement[EndpointRow | None]:
    """A new secret signs from now on; the old one also signs until `grace` ends."""
    return fetch_one(
        EndpointRow,
        f"UPDATE webhook_endpoints SET previous_secret = secret, secret = %s,"
        f" previous_retires_at = now() + %s WHERE id = %s AND merchant_id = %s AND {_LIVE}"
        f" RETURNING {_COLUMNS}",
        (secret, grace, endpoint_id, merchant_id),
    )


@store_function
def enable_endpoint(merchant_id: str, endpoint_id: str) -> Statement[EndpointRow | None]:
    return fetch_one(
        EndpointRow,
        f"UPDATE webhook_endpoints SET status = 'enabled', disabled_reason = NULL"
        f" WHERE id = %s AND merchant_id = %s AND {_LIVE} RETURNING {_COLUMNS}",
        (endpoint_id, merchant_id),
    )


# --- the deliverer's view -------------------------------------------------------


@store_function
def subscribed_endpoints(merchant_ids: list[str]) -> Statement[list[EndpointRow]]:
    """Every enabled endpoint of these merchants (the fan-out filters by type)."""
    return fetch_all(
        EndpointRow,
        f"SELECT {_COLUMNS} FROM webhook_endpoints WHERE merchant_id = ANY(%s)"
        f" AND status = 'enabled' AND {_LIVE}",
        (merchant_ids,),
    )


@store_function
def endpoints_by_id(endpoint_ids: list[str]) -> Steps[dict[str, EndpointRow]]:
    """These endpoints, deleted or disabled ones too, by id."""
    rows = yield from fetch_all(
        EndpointRow, f"SELECT {_COLUMNS} FROM webhook_endpoints WHERE id = ANY(%s)", (endpoint_ids,)
    )
    return {row.id: row for row in rows}


@store_function
def disable_endpoint(endpoint_id: str, reason: str) -> Statement[int]:
    return execute(
        "UPDATE webhook_endpoints SET status = 'disabled', disabled_reason = %s WHERE id = %s",
        (reason, endpoint_id),
    )
