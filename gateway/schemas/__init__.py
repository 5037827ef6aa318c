"""The API's request and response models, one module per concept: camelCase
JSON, unknown fields refused.

Requests are validated with these models. Responses are built by the
renderers (`payments.resources`, `gateway.resources`); the response models
here document them in the OpenAPI document, and a test keeps the two in step.
"""
