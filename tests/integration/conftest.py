from collections.abc import AsyncIterator

import pytest

from gateway.types import GatewayConfig
from tests.conftest import PEPPER
from tests.support.gateway import Gateway, running_gateway


@pytest.fixture
def gateway_config(database_url: str, redis_url: str) -> GatewayConfig:
    return GatewayConfig(database_url=database_url, redis_url=redis_url, key_pepper=PEPPER)


@pytest.fixture
async def gateway(gateway_config: GatewayConfig, redis_client: object) -> AsyncIterator[Gateway]:
    async with running_gateway(gateway_config) as running:
        yield running


# Actor modules bind to the broker current when they are imported: a stub
# broker, since these tests call the actors directly.
import dramatiq  # noqa: E402
from dramatiq.brokers.stub import StubBroker  # noqa: E402

if dramatiq.broker.global_broker is None:
    dramatiq.set_broker(StubBroker())
