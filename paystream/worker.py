"""The module the Dramatiq worker loads (`dramatiq paystream.worker`): it
configures the broker from the settings, then registers every actor."""

from paystream.bootstrap import configure_actors
from paystream.settings import settings
from telemetry.logs import configure_logging

configure_logging(settings().log_level, settings().log_format)
configure_actors(settings())
