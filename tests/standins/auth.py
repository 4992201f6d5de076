"""Real-looking Google credentials for tests: a service-account key whose token endpoint
is a local stand-in, and a raw TCP listener standing for a host that must hear nothing.

With ``GOOGLE_APPLICATION_CREDENTIALS`` pointing at the key, ``google.auth.default()``
returns real service-account credentials; their first use signs a JWT grant and fetches
``ACCESS_TOKEN`` from the stand-in, exactly as it would from Google.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Self

from tests.standins import LoopbackServer

ACCESS_TOKEN = "ya29.stand-in-secret-token"


class TokenStandIn(LoopbackServer):
    """An OAuth 2.0 token endpoint that grants ``ACCESS_TOKEN`` to any JWT grant."""

    def __init__(self) -> None:
        self.grants = 0
        self.refuse = False  # answer every grant as Google does a revoked key
        super().__init__()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if standin.refuse:
                    status = 400
                    answer = {"error": "invalid_grant", "error_description": "Invalid JWT."}
                else:
                    standin.grants += 1
                    status = 200
                    answer = {
                        "access_token": ACCESS_TOKEN,
                        "expires_in": 3600,
                        "token_type": "Bearer",
                    }
                body = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler

    def write_key(self, path: Path, project: str) -> Path:
        """Writes a service-account key file whose token_uri is this stand-in."""
        write_service_account_key(
            path, f"tester@{project}.iam.gserviceaccount.com", project, f"{self.url}/token"
        )
        return path


def write_service_account_key(path: Path, email: str, project: str, token_uri: str) -> str:
    """Writes a real service-account key file (a fresh RSA key) for ``email``.

    Returns:
        The public key (PEM), for a stand-in that checks the key's self-signed JWTs.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": "0" * 40,
        "private_key": pem,
        "client_email": email,
        "client_id": "1" * 21,
        "token_uri": token_uri,
    }
    path.write_text(json.dumps(info), encoding="utf-8")
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return public.decode()


class Listener:
    """A raw TCP listener on loopback that records every connection and byte it gets."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.connections = 0
        self.received = b""
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.sock.getsockname()[1]}"

    def start(self) -> Self:
        self.thread.start()
        return self

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            conn.settimeout(1.0)
            try:
                while chunk := conn.recv(65536):
                    self.received += chunk
            except OSError:
                pass
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=5)
        self.sock.close()
