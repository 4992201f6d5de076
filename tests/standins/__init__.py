"""Local stand-ins for Google services, started by the tests on 127.0.0.1."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class LoopbackServer:
    """An HTTP server on a free loopback port, serving ``_handler()`` in a thread."""

    def __init__(self) -> None:
        handler = self._handler()
        # Headers and body go out in two writes: without TCP_NODELAY the body waits for
        # the client's delayed ACK of the headers (40 ms a request on a kept-alive
        # connection), which is time, not behaviour.
        handler.disable_nagle_algorithm = True
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        # shutdown() waits for the loop to look at its flag: every 50 ms, not every 0.5 s
        # (the default), which each test that stops a stand-in would wait for.
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> Self:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
