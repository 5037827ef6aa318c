"""The composition root: settings, the `paystream` command and the local stack."""

__version__ = "0.1.0"
