"""Cloud Storage made hostile: a proxy in front of the storage emulator that changes answers.

Every request is forwarded to the upstream emulator unless ``before`` answers it itself
(a 503 on an upload chunk, on a rewrite); ``after`` may then change the upstream's answer
(a range read cut short, an empty 206, a 416, another generation). Point
``STORAGE_EMULATOR_HOST`` at ``url``.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from tests.standins import LoopbackServer


@dataclass
class Request:
    """What the client sent."""

    method: str
    path: str  # with the query
    headers: dict[str, str]
    body: bytes

    @property
    def is_media_read(self) -> bool:
        """A download of an object's bytes (``alt=media``)."""
        return self.method == "GET" and "alt=media" in self.path

    @property
    def range_start(self) -> int | None:
        """The first byte of a ``Range: bytes=N-M`` request."""
        value = self.headers.get("range", "")
        if not value.startswith("bytes="):
            return None
        return int(value[len("bytes=") :].split("-", 1)[0])


@dataclass
class Answer:
    """What the client receives."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def error_answer(status: int, message: str) -> Answer:
    """A JSON error as Cloud Storage words it."""
    body = json.dumps({"error": {"code": status, "message": message}}).encode()
    return Answer(status, {"content-type": "application/json"}, body)


Before = Callable[[Request], Answer | None]
After = Callable[[Request, Answer], Answer]
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class FaultyStorage(LoopbackServer):
    """Forwards to ``upstream`` (``http://127.0.0.1:PORT``); ``before``/``after`` interfere.

    Attributes:
        requests: every request seen, in order.
    """

    def __init__(
        self,
        upstream: str,
        before: Before | None = None,
        after: After | None = None,
    ) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.before = before or (lambda request: None)
        self.after = after or (lambda request, answer: answer)
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        super().__init__()

    def forward(self, request: Request) -> Answer:
        connection = http.client.HTTPConnection(*self.upstream, timeout=30)
        try:
            headers = {k: v for k, v in request.headers.items() if k not in _HOP}
            connection.request(request.method, request.path, request.body, headers)
            response = connection.getresponse()
            body = response.read()
            kept = {k.lower(): v for k, v in response.getheaders() if k.lower() not in _HOP}
            return Answer(response.status, kept, body)
        finally:
            connection.close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                )
                with standin.lock:
                    standin.requests.append(request)
                answer = standin.before(request)
                if answer is None:
                    answer = standin.after(request, standin.forward(request))
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        return Handler
