"""A local stand-in for the Google APIs the doctor asks, on one loopback server.

- OAuth token endpoint (``POST /token``): a service-account key file whose ``token_uri``
  points here gets real access tokens from google-auth; ``refuse_tokens`` refuses them.
- Resource Manager v3 ``GET /v3/projects/{id}``.
- Service Usage ``GET /v1/projects/{p}/services/{service}``.
- IAM ``GET /v1/projects/-/serviceAccounts/{email}`` and ``...:testIamPermissions``.
- Artifact Registry ``GET /v1/projects/{p}/locations/{l}/repositories/{r}``.
- Cloud Quotas ``GET /v1/projects/{p}/locations/global/services/{s}/quotaInfos``.
- Cloud Storage: forwarded to ``gcp-storage-emulator`` (``storage_upstream``), except that
  uploads to a bucket in ``read_only_buckets`` are refused with 403, as IAM would.

Every API call must carry a token this server issued (401 otherwise), so a test also
proves the doctor used the credentials it found.
"""

from __future__ import annotations

import http.client
import json
import secrets
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote, urlsplit

from tests.standins import LoopbackServer

PROJECT_NUMBER = "123456789012"


def _error(status: int, message: str, reason: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "status": reason}}


class GoogleApisStandIn(LoopbackServer):
    """The server. Its attributes are the state of the fake project; tests change them."""

    def __init__(self, project: str) -> None:
        self.project = project
        self.projects: dict[str, str] = {project: "ACTIVE"}
        self.services: dict[str, str] = {
            "aiplatform.googleapis.com": "ENABLED",
            "storage.googleapis.com": "ENABLED",
            "artifactregistry.googleapis.com": "ENABLED",
        }
        self.service_accounts: dict[str, dict[str, Any]] = {}
        self.act_as: set[str] = set()  # service accounts the caller may act as
        self.repositories: dict[str, str] = {}  # projects/P/locations/L/repositories/R -> format
        self.quotas: list[dict[str, Any]] | None = []  # None: the API refuses (403)
        self.refuse_tokens = False
        self.tokens: set[str] = set()
        self.signers: dict[str, str] = {}  # e-mail -> public key PEM, for self-signed JWTs
        self.storage_upstream: str | None = None
        self.read_only_buckets: set[str] = set()
        self.requests: list[tuple[str, str]] = []
        super().__init__()

    def add_service_account(self, email: str, disabled: bool = False, act_as: bool = True) -> None:
        self.service_accounts[email] = {"email": email, "disabled": disabled}
        if act_as:
            self.act_as.add(email)

    def quota(self, metric: str, region: str, value: int) -> None:
        """Adds a quota of Vertex AI with a per-region value."""
        assert self.quotas is not None
        self.quotas.append(
            {
                "name": f"projects/{PROJECT_NUMBER}/locations/global/services/"
                f"aiplatform.googleapis.com/quotaInfos/{metric.rsplit('/', 1)[-1]}",
                "quotaId": metric.rsplit("/", 1)[-1].replace("_", "-"),
                "metric": metric,
                "service": "aiplatform.googleapis.com",
                "dimensionsInfos": [
                    {"dimensions": {"region": region}, "details": {"value": str(value)}},
                    {"details": {"value": "0"}},
                ],
            }
        )

    def trust(self, email: str, public_key_pem: str) -> None:
        """Accepts self-signed JWTs of this service account (GAPIC clients send those)."""
        self.signers[email] = public_key_pem

    def signed_by_known_key(self, token: str) -> bool:
        from google.auth import jwt

        try:
            claims = jwt.decode(
                token, certs=list(self.signers.values()), verify=True, audience=None
            )
        except ValueError:
            return False
        return claims.get("iss") in self.signers

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _authorized(self) -> bool:
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                if token in standin.tokens or standin.signed_by_known_key(token):
                    return True
                self._reply(401, _error(401, "missing or unknown token", "UNAUTHENTICATED"))
                return False

            def do_POST(self) -> None:
                path = unquote(urlsplit(self.path).path)
                standin.requests.append(("POST", path))
                if path.startswith(("/upload/", "/storage/", "/batch/")):
                    self._forward("POST")
                    return
                body = self._body()
                if path == "/token":
                    if standin.refuse_tokens:
                        self._reply(
                            400,
                            {
                                "error": "invalid_grant",
                                "error_description": "Invalid JWT Signature.",
                            },
                        )
                        return
                    token = secrets.token_hex(8)
                    standin.tokens.add(token)
                    self._reply(
                        200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}
                    )
                    return
                if not self._authorized():
                    return
                prefix = "/v1/projects/-/serviceAccounts/"
                if path.startswith(prefix) and path.endswith(":testIamPermissions"):
                    email = path[len(prefix) : -len(":testIamPermissions")]
                    wanted = json.loads(body or b"{}").get("permissions", [])
                    granted = wanted if email in standin.act_as else []
                    self._reply(200, {"permissions": granted} if granted else {})
                    return
                self._reply(404, _error(404, f"no route {path}", "NOT_FOUND"))

            def do_GET(self) -> None:
                path = unquote(urlsplit(self.path).path)
                standin.requests.append(("GET", path))
                if path.startswith(("/storage/", "/download/")):
                    self._forward("GET")
                    return
                if not self._authorized():
                    return
                parts = path.strip("/").split("/")
                if parts[:2] == ["v3", "projects"] and len(parts) == 3:
                    state = standin.projects.get(parts[2])
                    if state is None:
                        # Google answers 403 for a project that does not exist, too.
                        self._reply(
                            403,
                            _error(
                                403,
                                f"The caller does not have permission on projects/{parts[2]}",
                                "PERMISSION_DENIED",
                            ),
                        )
                    else:
                        self._reply(
                            200,
                            {
                                "name": f"projects/{PROJECT_NUMBER}",
                                "projectId": parts[2],
                                "state": state,
                            },
                        )
                    return
                if len(parts) == 5 and parts[:2] == ["v1", "projects"] and parts[3] == "services":
                    state = standin.services.get(parts[4], "DISABLED")
                    self._reply(
                        200,
                        {"name": f"projects/{PROJECT_NUMBER}/services/{parts[4]}", "state": state},
                    )
                    return
                if parts[:4] == ["v1", "projects", "-", "serviceAccounts"] and len(parts) == 5:
                    account = standin.service_accounts.get(parts[4])
                    if account is None:
                        self._reply(
                            404, _error(404, f"Unknown service account {parts[4]}", "NOT_FOUND")
                        )
                    else:
                        self._reply(200, account)
                    return
                if len(parts) == 7 and parts[5] == "repositories":
                    name = "/".join(parts[1:])
                    kind = standin.repositories.get(name)
                    if kind is None:
                        self._reply(404, _error(404, f"Repository {name} not found", "NOT_FOUND"))
                    else:
                        self._reply(200, {"name": name, "format": kind})
                    return
                if parts[-1] == "quotaInfos":
                    if standin.quotas is None:
                        self._reply(
                            403,
                            _error(403, "Cloud Quotas API has not been used", "PERMISSION_DENIED"),
                        )
                    else:
                        self._reply(200, {"quotaInfos": standin.quotas})
                    return
                self._reply(404, _error(404, f"no route {path}", "NOT_FOUND"))

            def do_DELETE(self) -> None:
                standin.requests.append(("DELETE", urlsplit(self.path).path))
                self._forward("DELETE")

            def do_PUT(self) -> None:
                self._forward("PUT")

            def do_PATCH(self) -> None:
                self._forward("PATCH")

            def _forward(self, method: str) -> None:
                """Passes a Cloud Storage call to the emulator, refusing read-only writes."""
                path = urlsplit(self.path).path
                body = self._body()
                if method == "POST" and path.startswith("/upload/storage/v1/b/"):
                    bucket = path.split("/")[5]
                    if bucket in standin.read_only_buckets:
                        self._reply(
                            403,
                            _error(
                                403,
                                "caller does not have storage.objects.create access",
                                "FORBIDDEN",
                            ),
                        )
                        return
                assert standin.storage_upstream, "no storage emulator behind the stand-in"
                upstream = urlsplit(standin.storage_upstream)
                connection = http.client.HTTPConnection(
                    upstream.hostname, upstream.port, timeout=30
                )
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("host", "content-length", "authorization")
                }
                connection.request(method, self.path, body=body or None, headers=headers)
                response = connection.getresponse()
                data = response.read()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                connection.close()

        return Handler
