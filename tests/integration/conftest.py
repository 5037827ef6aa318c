from collections.abc import AsyncIterator

# Actor modules bind to the broker current when they are imported: a stub
# broker, set before anything imports `actors`, since these tests call the
# actors directly.
import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker

if dramatiq.broker.global_broker is None:
    dramatiq.set_broker(StubBroker())

from gateway.types import GatewayConfig
from tests.conftest import PEPPER
from tests.support.bank import bank_fixture
from tests.support.gateway import Gateway
from tests.support.gateway import running_gateway
from tests.support.localstripe import localstripe_fixture

bank = bank_fixture
localstripe = localstripe_fixture


@pytest.fixture
def gateway_config(database_url: str, redis_url: str) -> GatewayConfig:
    return GatewayConfig(database_url=database_url, redis_url=redis_url, key_pepper=PEPPER)


@pytest.fixture
async def gateway(gateway_config: GatewayConfig, redis_client: object) -> AsyncIterator[Gateway]:
    async with running_gateway(gateway_config) as running:
        yield running
