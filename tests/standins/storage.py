"""A Cloud Storage endpoint that refuses everything (403), for STORAGE_EMULATOR_HOST.

The SDK checks the pipeline-root bucket before a create and only logs a failure: a
refusal here makes it log an error (with a traceback) on a submit that succeeds.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.standins import LoopbackServer


class DenyingStorage(LoopbackServer):
    """Answers every request with HTTP 403, as Cloud Storage does without permission."""

    def __init__(self) -> None:
        self.requests = 0
        super().__init__()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _deny(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                standin.requests += 1
                body = json.dumps(
                    {"error": {"code": 403, "message": "caller lacks storage.buckets.get"}}
                ).encode()
                self.send_response(403)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _deny

        return Handler
