"""Merchant webhook endpoints. Their secrets must be kept (they sign every
delivery); the API shows one only once, when it is made."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection, Connection
from psycopg.rows import class_row

from payments.ids import new_id


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


_COLUMNS = (
    "id, merchant_id, url, event_types, secret, previous_secret, previous_retires_at, status,"
    " disabled_reason, created_at, deleted_at"
)
_LIVE = "deleted_at IS NULL"


async def create_endpoint(
    conn: AsyncConnection[Any], merchant_id: str, url: str, event_types: list[str], secret: str
) -> EndpointRow:
    async with conn.cursor(row_factory=class_row(EndpointRow)) as cursor:
        await cursor.execute(
            f"INSERT INTO webhook_endpoints (id, merchant_id, url, event_types, secret)"
            f" VALUES (%s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
            (new_id("we"), merchant_id, url, event_types, secret),
        )
        row = await cursor.fetchone()
    assert row is not None
    return row


async def list_endpoints(conn: AsyncConnection[Any], merchant_id: str) -> list[EndpointRow]:
    async with conn.cursor(row_factory=class_row(EndpointRow)) as cursor:
        await cursor.execute(
            f"SELECT {_COLUMNS} FROM webhook_endpoints WHERE merchant_id = %s AND {_LIVE}"
            " ORDER BY id",
            (merchant_id,),
        )
        return await cursor.fetchall()


async def get_endpoint(
    conn: AsyncConnection[Any], merchant_id: str, endpoint_id: str
) -> EndpointRow | None:
    async with conn.cursor(row_factory=class_row(EndpointRow)) as cursor:
        await cursor.execute(
            f"SELECT {_COLUMNS} FROM webhook_endpoints WHERE id = %s AND merchant_id = %s"
            f" AND {_LIVE}",
            (endpoint_id, merchant_id),
        )
        return await cursor.fetchone()


async def delete_endpoint(conn: AsyncConnection[Any], merchant_id: str, endpoint_id: str) -> bool:
    cursor = await conn.execute(
        f"UPDATE webhook_endpoints SET deleted_at = now() WHERE id = %s AND merchant_id = %s"
        f" AND {_LIVE}",
        (endpoint_id, merchant_id),
    )
    return cursor.rowcount == 1


async def rotate_secret(
    conn: AsyncConnection[Any], merchant_id: str, endpoint_id: str, secret: str, grace: timedelta
) -> EndpointRow | None:
    """A new secret signs from now on; the old one also signs until `grace` ends."""
    async with conn.cursor(row_factory=class_row(EndpointRow)) as cursor:
        await cursor.execute(
            f"UPDATE webhook_endpoints SET previous_secret = secret, secret = %s,"
            f" previous_retires_at = now() + %s WHERE id = %s AND merchant_id = %s AND {_LIVE}"
            f" RETURNING {_COLUMNS}",
            (secret, grace, endpoint_id, merchant_id),
        )
        return await cursor.fetchone()


async def enable_endpoint(
    conn: AsyncConnection[Any], merchant_id: str, endpoint_id: str
) -> EndpointRow | None:
    async with conn.cursor(row_factory=class_row(EndpointRow)) as cursor:
        await cursor.execute(
            f"UPDATE webhook_endpoints SET status = 'enabled', disabled_reason = NULL"
            f" WHERE id = %s AND merchant_id = %s AND {_LIVE} RETURNING {_COLUMNS}",
            (endpoint_id, merchant_id),
        )
        return await cursor.fetchone()


# --- delivery side (sync) -----------------------------------------------------


def subscribed_endpoints(conn: Connection[Any], merchant_ids: list[str]) -> list[EndpointRow]:
    """Every enabled endpoint of these merchants (the fan-out filters by type)."""
    with conn.cursor(row_factory=class_row(EndpointRow)) as cursor:
        cursor.execute(
            f"SELECT {_COLUMNS} FROM webhook_endpoints WHERE merchant_id = ANY(%s)"
            f" AND status = 'enabled' AND {_LIVE}",
            (merchant_ids,),
        )
        return cursor.fetchall()


def load_endpoints(conn: Connection[Any], endpoint_ids: list[str]) -> dict[str, EndpointRow]:
    with conn.cursor(row_factory=class_row(EndpointRow)) as cursor:
        cursor.execute(
            f"SELECT {_COLUMNS} FROM webhook_endpoints WHERE id = ANY(%s)", (endpoint_ids,)
        )
        return {row.id: row for row in cursor.fetchall()}


def disable_endpoint(conn: Connection[Any], endpoint_id: str, reason: str) -> None:
    conn.execute(
        "UPDATE webhook_endpoints SET status = 'disabled', disabled_reason = %s WHERE id = %s",
        (reason, endpoint_id),
    )
