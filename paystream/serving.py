"""How paystream serves HTTP: one uvicorn configuration for the gateway, the
PSP simulator, and the bare Starlette app the benchmark measures against."""

from __future__ import annotations

import uvicorn
from starlette.types import ASGIApp


def serve(
    app: str | ASGIApp,
    *,
    host: str,
    port: int,
    workers: int = 1,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
    graceful_seconds: int = 10,
) -> None:
    """Serve `app` until stopped: an app, or the factory ("module:function")
    that builds it in each worker process."""
    uvicorn.run(
        app,
        factory=isinstance(app, str),
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=graceful_seconds,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
    )
