"""Why an actor gives up for now. Raising one of these asks Dramatiq's Retries
middleware for another try with backoff; nothing else is retried."""

from __future__ import annotations


class TryAgain(Exception):
    """The PSP could not be reached, or its answer is not known yet."""
