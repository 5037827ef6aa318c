"""Reading requests and writing JSON answers, with the checks every body gets."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from gateway.problems import Problem
from payments.card_data import find_pan_path, find_path, mask_pans

M = TypeVar("M", bound=BaseModel)
R = TypeVar("R")


def page_response(
    rows: Sequence[R],
    limit: int,
    render: Callable[[R], Any],
    cursor: Callable[[R], Any],
) -> Response:
    """A page of a list, from `limit + 1` rows fetched: the extra row only
    says that there is more."""
    page, has_more = rows[:limit], len(rows) > limit
    return json_response(
        {
            "data": [render(row) for row in page],
            "hasMore": has_more,
            "nextCursor": cursor(page[-1]) if has_more else None,
        }
    )


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers=headers, media_type="application/json")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past `limit` bytes without reading on."""
    too_large = Problem("payload_too_large", f"the body may have at most {limit} bytes")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json_object(
    request: Request, limit: int, *, empty_allowed: bool = False
) -> dict[str, Any]:
    """The decoded JSON object of a request body, refused if it is too large,
    not JSON, not an object, or carries anything that looks like a card number.
    With `empty_allowed`, no body at all reads as {}."""
    raw = await read_body(request, limit)
    if empty_allowed and not raw.strip():
        return {}
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise Problem("unsupported_media_type", "the body must be application/json")
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        # The decoder's message can quote the body; say nothing of its content.
        raise Problem("validation_error", "the body is not valid JSON") from None
    pointer = find_pan_path(document)
    if pointer is not None:
        raise Problem(
            "raw_card_data_forbidden",
            f"the value at {mask_pans(pointer)} looks like a card number;"
            " paystream accepts payment method tokens only",
        )
    if not isinstance(document, dict):
        raise Problem("validation_error", "the body must be a JSON object")
    refuse_nul_characters(document)
    return document


def refuse_nul_characters(document: Any) -> None:
    """Postgres stores no NUL character in text or JSON: refuse one up front
    rather than fail on the write."""
    pointer = find_path(document, lambda text: "\x00" in text)
    if pointer is not None:
        raise Problem(
            "validation_error",
            "NUL characters are not accepted",
            errors=[{"pointer": mask_pans(pointer), "detail": "contains a NUL character"}],
        )


def validate(model: type[M], document: dict[str, Any]) -> M:
    """Validate against a request model; errors name fields, never echo values."""
    try:
        return model.model_validate(document)
    except ValidationError as error:
        raise Problem(
            "validation_error",
            "the request has invalid fields",
            errors=[
                {
                    "pointer": "/" + "/".join(str(part) for part in item["loc"]),
                    "detail": item["msg"],
                }
                for item in error.errors(include_url=False, include_input=False)
            ],
        ) from None


def validate_query(model: type[M], request: Request) -> M:
    """Validate the query string; a parameter given twice is refused rather
    than one of its values silently dropped."""
    counts = Counter(name for name, _ in request.query_params.multi_items())
    repeated = sorted(name for name, count in counts.items() if count > 1)
    if repeated:
        raise Problem(
            "validation_error",
            "a query parameter may be given once",
            errors=[{"pointer": f"/{name}", "detail": "given more than once"} for name in repeated],
        )
    return validate(model, dict(request.query_params))


def canonical_json(document: Any) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
