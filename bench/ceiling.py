"""The framework ceiling: a bare Starlette JSON endpoint, served by the same
uvicorn configuration as the gateway (`python -m bench.ceiling --port P`)."""

from __future__ import annotations

import argparse

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.responses import Response
from starlette.routing import Route


async def echo(request: Request) -> Response:
    document = await request.json()
    return JSONResponse(document, status_code=201)


def app() -> Starlette:
    return Starlette(routes=[Route("/payments", echo, methods=["POST"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    options = parser.parse_args()
    from paystream.serving import serve

    serve("bench.ceiling:app", host="127.0.0.1", port=options.port, workers=options.workers)


if __name__ == "__main__":
    main()
