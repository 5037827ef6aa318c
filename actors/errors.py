"""Why an actor gives up for now.

`TryAgain` asks Dramatiq's Retries middleware (configured in one place,
`paystream.bootstrap`) for another try with exponential backoff and jitter.
It subclasses Dramatiq's `Retry`, so an expected retry is not logged as a
crash. Nothing else is retried: a bug fails loudly, and the operation stays
pending in Postgres for the janitor.
"""

from __future__ import annotations

from dramatiq import Retry


class TryAgain(Retry):
    """The PSP could not be reached, or its answer is not known yet."""
