"""A local stand-in for a KFP template registry, as kfp's RegistryClient addresses a
non-Artifact-Registry host (``{host}/packages/...``; upload is a multipart POST to ``{host}``).

Like Artifact Registry, a version is the sha256 of the uploaded bytes, the package is the
pipeline name inside the template, and upload tags are created or moved.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

import yaml

from tests.standins import LoopbackServer

# Answers that break the registry's promises, for ``RegistryStandIn.hostile``.
HOSTILE = (
    "truncated",  # the JSON body cut in half
    "tag-without-version",  # a tag answer with no ``version``
    "tag-not-a-digest",  # a tag answer whose version is not sha256:...
    "nameless",  # list items without a name
    "wrong-types",  # a list that is not a list
)


def spoil(mode: str, body: Any) -> bytes:
    """A metadata answer as a hostile registry in ``mode`` gives it."""
    data = json.dumps(body).encode()
    if mode == "truncated":
        return data[: max(1, len(data) // 2)]
    if isinstance(body, dict) and "version" in body and "name" in body:  # a tag
        if mode == "tag-without-version":
            body = {"name": body["name"]}
        elif mode == "tag-not-a-digest":
            body = {**body, "version": body["version"].rsplit("/", 1)[0] + "/latest"}
    for key in ("versions", "tags"):
        if isinstance(body, dict) and isinstance(body.get(key), list):
            if mode == "nameless":
                body = {key: [{k: v for k, v in i.items() if k != "name"} for i in body[key]]}
            elif mode == "wrong-types":
                body = {key: {"not": "a list"}}
            elif mode == "tag-not-a-digest" and key == "tags":
                body = {key: [{**i, "version": "packages/x/versions/latest"} for i in body[key]]}
    return json.dumps(body).encode()


class RegistryStandIn(LoopbackServer):
    """The server; ``packages[pkg]`` holds ``versions`` (digest -> bytes) and ``tags``."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.packages: dict[str, dict[str, Any]] = {}
        self.tamper = False  # serve other bytes than were uploaded
        # Called once after the next request of a kind ("upload", "create_tag"): a test's
        # concurrent publisher lands there.
        self.after: dict[str, Callable[[], None]] = {}
        # A hostile answer to the metadata calls (see ``HOSTILE``), or None.
        self.hostile: str | None = None
        super().__init__()

    def upload(self, content: bytes, tags: list[str]) -> tuple[str, str]:
        # libyaml's loader when there is one: a template takes 0.3 s in pure Python.
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        package = yaml.load(content, Loader=loader)["pipelineInfo"]["name"]
        digest = "sha256:" + hashlib.sha256(content).hexdigest()
        entry = self.packages.setdefault(package, {"versions": {}, "tags": {}, "order": []})
        if digest not in entry["versions"]:
            entry["order"].append(digest)
        entry["versions"][digest] = content
        for tag in tags:
            entry["tags"][tag] = digest
        return package, digest

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: bytes, kind: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, body: Any) -> None:
                hostile = standin.hostile and status == 200
                self._reply(
                    status, spoil(standin.hostile, body) if hostile else json.dumps(body).encode()
                )

            def _then(self, kind: str) -> None:
                hook = standin.after.pop(kind, None)
                if hook:
                    hook()

            def do_PATCH(self) -> None:
                path = urlsplit(self.path).path
                standin.requests.append(("PATCH", path))
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                _, package, _, tag = path.strip("/").split("/")
                entry = standin.packages.get(package)
                if entry is None:
                    self._json(404, {"error": "no such package"})
                    return
                entry["tags"][tag] = body["version"].rsplit("/", 1)[-1]
                self._json(200, _tag(package, tag, entry["tags"][tag]))

            def do_POST(self) -> None:
                standin.requests.append(("POST", self.path))
                length = int(self.headers["Content-Length"])
                raw = self.rfile.read(length)
                if self.path.startswith("/packages/"):
                    self._create_tag(urlsplit(self.path), json.loads(raw))
                    return
                head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
                message = BytesParser(policy=HTTP).parsebytes(head + raw)
                fields = {
                    part.get_param("name", header="content-disposition"): part.get_payload(
                        decode=True
                    )
                    for part in message.iter_parts()
                }
                tags = [t for t in fields.get("tags", b"").decode().split(",") if t]
                package, digest = standin.upload(fields["content"], tags)
                self._then("upload")
                self._reply(200, f"{package}/{digest}".encode(), "text/plain")

            def _create_tag(self, url: SplitResult, body: dict[str, str]) -> None:
                """Like Artifact Registry: creating a tag that exists is 409 ALREADY_EXISTS."""
                package = url.path.strip("/").split("/")[1]
                tag = parse_qs(url.query)["tagId"][0]
                entry = standin.packages.get(package)
                digest = body["version"].rsplit("/", 1)[-1]
                if entry is None or digest not in entry["versions"]:
                    self._json(404, {"error": "no such version"})
                elif tag in entry["tags"]:
                    self._json(409, {"error": {"status": "ALREADY_EXISTS"}})
                else:
                    entry["tags"][tag] = digest
                    self._then("create_tag")  # before the answer: the race is deterministic
                    self._json(200, _tag(package, tag, digest))

            def do_GET(self) -> None:
                path = unquote(urlsplit(self.path).path)
                standin.requests.append(("GET", path))
                parts = path.strip("/").split("/")
                if parts[0] == "packages":
                    self._metadata(parts[1:])
                    return
                package, ref = parts
                entry = standin.packages.get(package)
                digest = (
                    ref if ref.startswith("sha256:") else (entry or {}).get("tags", {}).get(ref)
                )
                if not entry or digest not in entry["versions"]:
                    self._json(404, {"error": "not found"})
                    return
                content = entry["versions"][digest]
                self._reply(
                    200,
                    content + (b"# tampered\n" if standin.tamper else b""),
                    "application/x-yaml",
                )

            def _metadata(self, parts: list[str]) -> None:
                entry = standin.packages.get(parts[0])
                if entry is None:
                    self._json(404, {"error": "no such package"})
                    return
                package = parts[0]
                tags = entry["tags"]
                if parts[1:] == ["tags"]:
                    self._json(200, {"tags": [_tag(package, t, d) for t, d in tags.items()]})
                elif len(parts) == 3 and parts[1] == "tags":
                    if parts[2] not in tags:
                        self._json(404, {"error": "no such tag"})
                    else:
                        self._json(200, _tag(package, parts[2], tags[parts[2]]))
                elif parts[1:] == ["versions"]:
                    versions = [
                        {
                            "name": f"packages/{package}/versions/{d}",
                            "createTime": f"2026-11-27T10:{i:02d}:00Z",
                        }
                        for i, d in enumerate(entry["order"])
                    ]
                    self._json(200, {"versions": versions})
                else:
                    self._json(404, {"error": "unknown path"})

        return Handler


def _tag(package: str, tag: str, digest: str) -> dict[str, str]:
    return {
        "name": f"packages/{package}/tags/{tag}",
        "version": f"packages/{package}/versions/{digest}",
    }
