"""Session-wide fixtures: real servers, a migrated database, merchants and
operators with keys; and the programs the selected tests need from the
machine, installed before the session runs (tests/support/system_packages.py)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
import redis

from gateway.auth import MERCHANT_ROLES
from gateway.auth import OPERATOR_ROLES
from store.keys import Owner
from store.keys import create_key
from store.merchants import ensure_merchant
from store.migrate import migrate
from store.operators import create_operator
from tests.support.servers import Servers
from tests.support.servers import make_root
from tests.support.system_packages import install_missing

PEPPER = b"test-pepper"
_NOT_INSTALLED = pytest.StashKey[dict[str, str]]()


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected what will not run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = {
        package
        for item in items
        for marker in item.iter_markers("system_packages")
        for package in marker.args
    }
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    say = reporter.write_line if reporter is not None else print
    config.stash[_NOT_INSTALLED] = install_missing(wanted, say)


def pytest_runtest_setup(item: pytest.Item) -> None:
    not_installed = item.config.stash.get(_NOT_INSTALLED, {})
    for marker in item.iter_markers("system_packages"):
        for package in marker.args:
            if package in not_installed:
                pytest.fail(not_installed[package], pytrace=False)


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    started = Servers.start(make_root("paystream-servers-"))
    yield started
    started.stop()


def migrated_database(servers: Servers, name: str) -> str:
    """A database on the session's server, migrated; its URL."""
    servers.postgres.ensure_database(name)
    url = servers.postgres.url(name)
    migrate(url)
    return url


@pytest.fixture(scope="session")
def database_url(servers: Servers) -> str:
    return migrated_database(servers, "paystream_test")


@pytest.fixture(scope="session")
def redis_url(servers: Servers) -> str:
    return servers.redis.url(0)


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


@dataclass(frozen=True)
class Merchant:
    id: str
    api_key: str


def new_merchant(database_url: str, roles: list[str] | None = None) -> Merchant:
    merchant_id = "mer_" + secrets.token_hex(6)
    with psycopg.connect(database_url, autocommit=True) as conn:
        ensure_merchant(conn, merchant_id, "Test merchant")
        _, key = create_key(
            conn, Owner.merchant(merchant_id), roles or list(MERCHANT_ROLES), PEPPER
        )
    return Merchant(merchant_id, key)


@pytest.fixture
def merchant(database_url: str) -> Merchant:
    return new_merchant(database_url)


@dataclass(frozen=True)
class Operator:
    id: str
    key_id: str
    api_key: str


def new_operator(database_url: str, roles: list[str] | None = None) -> Operator:
    """A platform operator, with every operator role unless told."""
    with psycopg.connect(database_url, autocommit=True) as conn, conn.transaction():
        made, row, key = create_operator(
            conn, "Test operator", roles or list(OPERATOR_ROLES), PEPPER
        )
    return Operator(made.id, row.id, key)


@pytest.fixture
def operator(database_url: str) -> Operator:
    return new_operator(database_url)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
