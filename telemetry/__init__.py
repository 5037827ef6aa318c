"""Telemetry: logs, metrics, traces and the context a message carries between
processes. Cross-cutting and free of business rules; it imports only the
core's card-number masker, so every layer above may use it."""
