"""Dramatiq actors, one module per job. Importing this package registers every
actor with the global broker, so the broker must be set first:
`paystream.bootstrap.configure_actors` sets it from the settings, then imports
this package (Dramatiq binds an actor to the broker current at its import)."""

import dramatiq.broker

if dramatiq.broker.global_broker is None:
    raise ImportError(
        "set the Dramatiq broker before importing actors (paystream.bootstrap.configure_actors)"
    )

from actors import authentication
from actors import operations
from actors import psp_webhooks
from actors import reconciliation

__all__ = ["authentication", "operations", "psp_webhooks", "reconciliation"]
