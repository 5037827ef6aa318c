"""Reading requests and writing JSON answers, with the checks every body gets."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from typing import Any
from typing import Protocol
from typing import TypeVar

import orjson
from pydantic import BaseModel
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from gateway.problems import PROBLEM_MEDIA_TYPE
from gateway.problems import Problem
from payments.card_data import contains_pan
from payments.card_data import mask_pans

M = TypeVar("M", bound=BaseModel)
R = TypeVar("R")

# A JSON pointer, as the path from the root: (parent, key or index), None for the root.
_Path = tuple[Any, str] | None
# How deep containers may nest in a body. The API's bodies nest two levels (a
# payment's metadata) and PSP webhooks three; 32 is ten times what real payloads
# need and far below what any recursive reader after the check copes with
# (Python's 1000 frames, orjson's 1024 levels to decode and 254 to encode).
MAX_JSON_DEPTH = 32


def listing(resources: Iterable[Any]) -> dict[str, Any]:
    """A list that is never paged: `{data: [...]}`."""
    return {"data": list(resources)}


class PageQuery(Protocol):
    """A paged list's query: how many rows a page shows, and after which one."""

    @property
    def limit(self) -> int: ...

    @property
    def starting_after(self) -> Any: ...


def page_window(query: PageQuery) -> dict[str, Any]:
    """What a store function reads for one `page`: a row more than the page
    shows, after the cursor."""
    return {"limit": query.limit + 1, "starting_after": query.starting_after}


def page(
    rows: Sequence[R],
    limit: int,
    render: Callable[[R], Any],
    cursor: Callable[[R], Any],
) -> dict[str, Any]:
    """A page of a list, from `limit + 1` rows fetched (`page_window`)."""
    shown, last = split_page(rows, limit)
    return {
        "data": [render(row) for row in shown],
        "hasMore": last is not None,
        "nextCursor": cursor(last) if last is not None else None,
    }


def split_page(rows: Sequence[R], limit: int) -> tuple[Sequence[R], R | None]:
    """The rows a page shows, of `limit + 1` fetched, and the last of them
    when there is more (the next page starts after it): the extra row only
    says that there is more. The API's pages and the console's."""
    shown = rows[:limit]
    return shown, shown[-1] if len(rows) > limit else None


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return encoded_response(status, orjson.dumps(body), headers)


def encoded_response(status: int, body: bytes, headers: dict[str, str] | None = None) -> Response:
    """An answer encoded already: JSON, problem+json from 400 on, and no
    content at all for 204."""
    media_type = (
        None if status == 204 else PROBLEM_MEDIA_TYPE if status >= 400 else "application/json"
    )
    return Response(body, status, headers=headers, media_type=media_type)


def media_type(request: Request) -> str:
    """The request's Content-Type without its parameters, in lower case."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def limited_stream(
    request: Request, limit: int, what: str = "the body"
) -> AsyncIterator[bytes]:
    """The request body chunk by chunk, refused with 413 past `limit` bytes
    (at once when it says so in Content-Length) without reading on."""
    too_large = Problem("payload_too_large", f"{what} may have at most {limit} bytes")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        yield chunk


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, whole, within `limit` bytes."""
    return b"".join([chunk async for chunk in limited_stream(request, limit)])


async def read_json_object(
    request: Request, limit: int, *, empty_allowed: bool = False
) -> dict[str, Any]:
    """The decoded JSON object of a request body, refused if it is too large,
    not JSON, nested too deep, not an object, or carries anything that looks
    like a card number or a NUL character. With `empty_allowed`, no body at
    all reads as {}."""
    raw = await read_body(request, limit)
    if empty_allowed and not raw.strip():
        return {}
    if media_type(request) != "application/json":
        raise Problem("unsupported_media_type", "the body must be application/json")
    document = decode_json(raw)
    refuse_forbidden_content(document)
    if not isinstance(document, dict):
        raise Problem("validation_error", "the body must be a JSON object")
    return document


def decode_json(raw: bytes) -> Any:
    """A body decoded, or a 400 that says nothing of its content."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        # orjson refuses past 1024 levels; that is a document nested too deep too.
        if "depth limit" in str(error):
            raise _too_deep("") from None
        # The decoder's message can quote the body; say nothing of its content.
        raise Problem("validation_error", "the body is not valid JSON") from None


def refuse_forbidden_content(document: Any) -> None:
    """Refuse a decoded JSON document nested deeper than `MAX_JSON_DEPTH`, or
    with a key, string or number that looks like a card number, or a NUL
    character (Postgres stores none in text or JSON). One iterative walk, in
    document order, before anything else (validation included) reads it."""
    stack: list[tuple[Any, int, _Path, str | None]] = [(document, 0, None, None)]
    while stack:
        value, depth, path, key = stack.pop()
        if key is not None:
            _refuse_text(key, path)
        if isinstance(value, str):
            _refuse_text(value, path)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            if contains_pan(repr(value)):
                raise _card_number(path)
        elif isinstance(value, dict | list):
            if depth == MAX_JSON_DEPTH:
                raise _too_deep(_pointer(path))
            children: list[tuple[Any, int, _Path, str | None]]
            if isinstance(value, dict):
                children = [(v, depth + 1, (path, str(k)), str(k)) for k, v in value.items()]
            else:
                children = [(v, depth + 1, (path, str(i)), None) for i, v in enumerate(value)]
            stack.extend(reversed(children))


def _refuse_text(text: str, path: _Path) -> None:
    if contains_pan(text):
        raise _card_number(path)
    if "\x00" in text:
        raise Problem(
            "validation_error",
            "NUL characters are not accepted",
            errors=[{"pointer": _pointer(path), "detail": "contains a NUL character"}],
        )


def _card_number(path: _Path) -> Problem:
    return Problem(
        "raw_card_data_forbidden",
        f"the value at {_pointer(path)} looks like a card number;"
        " paystream accepts payment method tokens only",
    )


def _too_deep(pointer: str) -> Problem:
    detail = f"nests deeper than {MAX_JSON_DEPTH} levels"
    return Problem(
        "validation_error",
        f"the body {detail}",
        errors=[{"pointer": pointer or "/", "detail": detail}],
    )


def _pointer(path: _Path) -> str:
    """The JSON pointer (RFC 6901) of a path; a card-like key is masked, before
    escaping (which would glue its digits into another number) and after."""
    segments = []
    while path is not None:
        path, segment = path
        segments.append(mask_pans(segment).replace("~", "~0").replace("/", "~1"))
    return mask_pans("/" + "/".join(reversed(segments))) if segments else "/"


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
