"""API keys from the command line: merchants' keys, and platform operators
with theirs. A key is printed once, as JSON; only its HMAC is stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Annotated
from typing import Any

import redis
import typer
from psycopg import Connection
from redis.exceptions import RedisError

from gateway.auth import MERCHANT_ROLES
from gateway.auth import OPERATOR_ROLES
from gateway.principals import ENTRY_SECONDS
from gateway.principals import REVOCATIONS
from gateway.principals import revocation_token
from gateway.resources import key_resource
from paystream.cli.options import StackDir
from paystream.cli.options import talk_to_stack
from paystream.cli.output import console
from paystream.local_stack import DEFAULT_DATA_DIR
from paystream.settings import require_secret
from paystream.settings import settings
from store.audit import acting_alone
from store.audit import system
from store.keys import Owner
from store.keys import create_key
from store.keys import get_key
from store.keys import list_keys
from store.keys import revoke_key
from store.merchants import ensure_merchant
from store.operators import OperatorRow
from store.operators import create_operator
from store.operators import get_operator_key
from store.operators import list_operator_keys
from store.operators import list_operators

keys_app = typer.Typer(help="Manage merchants' API keys.", no_args_is_help=True)
operators_app = typer.Typer(
    help="Manage platform operators (who reconcile) and their keys.", no_args_is_help=True
)


@contextmanager
def _key_store() -> Iterator[tuple[Connection[Any], bytes]]:
    """A transaction audited as the command line, and the keys' pepper
    (asked for first: without it no key can be made or checked)."""
    pepper = require_secret(settings().key_pepper, "key_pepper").encode()
    with acting_alone(settings().database_url, system("cli")) as conn:
        yield conn, pepper


def _announce_revocation() -> None:
    """Tell every gateway's key cache, once the revocation is committed."""
    try:
        with redis.Redis.from_url(settings().redis_url, socket_timeout=2) as client:
            client.set(REVOCATIONS, revocation_token())
    except RedisError as error:
        console.print(
            f"[yellow]Redis did not hear the revocation; gateways drop the key within"
            f" {ENTRY_SECONDS:.0f} s: {error}[/yellow]"
        )


def _print_key(row: Any, key: str | None = None) -> None:
    """The API's rendering of a key, and (what the API leaves implied) its owner."""
    owner = {"merchantId": row.merchant_id} if row.merchant_id else {"operatorId": row.operator_id}
    print(json.dumps({**owner, **key_resource(row, key)}))


def _operator(operator: OperatorRow) -> dict[str, Any]:
    """What the command line prints of an operator, besides its key or keys."""
    return {"operatorId": operator.id, "name": operator.name}


@keys_app.command("create")
def keys_create(
    merchant: Annotated[str, typer.Option(help="Merchant id; created if it does not exist.")],
    roles: Annotated[
        str, typer.Option(help="Comma-separated roles.")
    ] = "payments:write,payments:read",
    name: Annotated[str | None, typer.Option(help="Merchant name, when creating it.")] = None,
    description: Annotated[str | None, typer.Option(help="What the key is for.")] = None,
    data_dir: StackDir = DEFAULT_DATA_DIR,
) -> None:
    """Create a merchant's API key, printed once.

    Only the key's HMAC is stored. Merchant roles only: operators' keys come
    from `paystream operators`."""
    talk_to_stack(data_dir)
    wanted = _roles(roles, "merchant")
    with _key_store() as (conn, pepper):
        ensure_merchant(conn, merchant, name or merchant)
        row, key = create_key(conn, Owner.merchant(merchant), wanted, pepper, description)
    _print_key(row, key)


def _roles(listed: str, kind: str) -> list[str]:
    """Comma-separated roles of one kind of key; exit code 2 for any other."""
    allowed = MERCHANT_ROLES if kind == "merchant" else OPERATOR_ROLES
    wanted = [role.strip() for role in listed.split(",") if role.strip()]
    foreign = sorted(set(wanted) & (set(OPERATOR_ROLES) - set(MERCHANT_ROLES)))
    if kind == "merchant" and foreign:
        console.print(
            f"[red]{', '.join(foreign)} is an operator's role, and no merchant key holds one[/red];"
            " make an operator key instead: paystream operators create NAME --roles "
            + ",".join(foreign)
        )
        raise typer.Exit(2)
    unknown = sorted(set(wanted) - set(allowed))
    if unknown or not wanted:
        console.print(f"[red]not {kind} roles: {unknown}[/red]; choose from {', '.join(allowed)}")
        raise typer.Exit(2)
    return wanted


@keys_app.command("list")
def keys_list(
    merchant: Annotated[str, typer.Option(help="Merchant id.")],
    data_dir: StackDir = DEFAULT_DATA_DIR,
) -> None:
    """List a merchant's keys (never the keys themselves)."""
    talk_to_stack(data_dir)
    with _key_store() as (conn, _):
        for row in list_keys(conn, Owner.merchant(merchant)):
            _print_key(row)


@keys_app.command("rotate")
def keys_rotate(
    key_id: Annotated[str, typer.Argument(help="The key to replace.")],
    merchant: Annotated[str, typer.Option(help="Its merchant.")],
    grace_seconds: Annotated[int, typer.Option(help="How long the old key keeps working.")] = 0,
    data_dir: StackDir = DEFAULT_DATA_DIR,
) -> None:
    """Make a new key with the same roles; the old one stops after the grace."""
    talk_to_stack(data_dir)
    owner = Owner.merchant(merchant)
    with _key_store() as (conn, pepper):
        old = get_key(conn, owner, key_id)
        if old is None or revoke_key(conn, owner, key_id, timedelta(seconds=grace_seconds)) is None:
            console.print(f"[red]no active key {key_id} for {merchant}[/red]")
            raise typer.Exit(1)
        roles = [role for role in old.roles if role in MERCHANT_ROLES]
        row, key = create_key(conn, owner, roles, pepper, old.description)
    _announce_revocation()
    _print_key(row, key)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key to revoke.")],
    merchant: Annotated[str, typer.Option(help="Its merchant.")],
    data_dir: StackDir = DEFAULT_DATA_DIR,
) -> None:
    """Revoke a key: it stops working at once."""
    talk_to_stack(data_dir)
    with _key_store() as (conn, _):
        row = revoke_key(conn, Owner.merchant(merchant), key_id)
    if row is None:
        console.print(f"[red]no active key {key_id} for {merchant}[/red]")
        raise typer.Exit(1)
    _announce_revocation()
    _print_key(row)


@operators_app.command("create")
def operators_create(
    name: Annotated[str, typer.Argument(help="Who the operator is, e.g. a person or a team.")],
    roles: Annotated[
        str, typer.Option(help="Comma-separated roles of its first key: reconciliation, admin.")
    ] = "reconciliation",
    data_dir: StackDir = DEFAULT_DATA_DIR,
) -> None:
    """Create a platform operator and its first key, printed once.

    Operators reconcile the PSP's reports (which cover every merchant) and,
    with `admin`, manage operators over the API."""
    talk_to_stack(data_dir)
    wanted = _roles(roles, "operator")
    with _key_store() as (conn, pepper):
        operator, row, key = create_operator(conn, name, wanted, pepper)
    print(json.dumps({**_operator(operator), **key_resource(row, key)}))


@operators_app.command("list")
def operators_list(data_dir: StackDir = DEFAULT_DATA_DIR) -> None:
    """List operators, one a line, with their keys (never the keys themselves)."""
    talk_to_stack(data_dir)
    with _key_store() as (conn, _):
        operators, keys = list_operators(conn), list_operator_keys(conn)
    for operator in operators:
        owned = [key_resource(row) for row in keys if row.operator_id == operator.id]
        print(json.dumps({**_operator(operator), "keys": owned}))


@operators_app.command("revoke")
def operators_revoke(
    key_id: Annotated[str, typer.Argument(help="The key to revoke.")],
    data_dir: StackDir = DEFAULT_DATA_DIR,
) -> None:
    """Revoke an operator's key: it stops working at once."""
    talk_to_stack(data_dir)
    with _key_store() as (conn, _):
        found = get_operator_key(conn, key_id)
        row = (
            revoke_key(conn, Owner.operator(found.operator_id), key_id)
            if found and found.operator_id
            else None
        )
    if row is None:
        console.print(f"[red]no active operator key {key_id}[/red]")
        raise typer.Exit(1)
    _announce_revocation()
    _print_key(row)
