"""An ASGI app served by uvicorn from a thread of this process, on a free
loopback port: the merchant endpoint of drills, the simulator of client tests."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

from stack.ports import answers
from stack.ports import free_port
from stack.ports import wait_until


@contextlib.contextmanager
def serving_in_thread(
    app: ASGIApp, *, ready_path: str, tls: tuple[str, str] | None = None
) -> Iterator[str]:
    """Serve `app` while the block runs; yields its base URL once `ready_path`
    answers. With `tls` (certificate and key files), over HTTPS."""
    port = free_port()
    certificate, key = tls or (None, None)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        ssl_certfile=certificate,
        ssl_keyfile=key,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    try:
        # Up or not is all this asks: the certificate is the caller's business.
        wait_until(
            lambda: answers(url + ready_path, verify=False) is not None,
            timeout=10,
            what=f"a server in this process to answer {url}{ready_path}",
            interval=0.02,
        )
        yield url
    finally:
        server.should_exit = True
        thread.join(10)
