"""The module the Dramatiq worker loads (`dramatiq paystream.worker`): it
configures the broker from the settings, then registers every actor."""

from paystream.bootstrap import configure_actors
from paystream.logs import configure_logging
from paystream.settings import settings

configure_logging(settings().log_level, settings().log_format)
configure_actors(settings())
