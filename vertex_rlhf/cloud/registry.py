"""The KFP template registry (Artifact Registry), through ``kfp.registry.RegistryClient``.

Templates are submitted by digest, never by tag: a tag is resolved here first
(``get_tag``), the template is downloaded by digest and its sha256 checked.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vertex_rlhf.cloud import calls
from vertex_rlhf.config import names
from vertex_rlhf.errors import AuthError, PipelineError

LATEST = "latest"


@dataclass(frozen=True)
class RegistryVersion:
    """One template version in a registry."""

    host: str
    package: str
    digest: str  # "sha256:..."
    tags: list[str] = field(default_factory=list)
    created: str = ""

    @property
    def uri(self) -> str:
        """The digest URL Vertex records as the run's template."""
        return f"{self.host}/{self.package}/{self.digest}"


def file_digest(path: Path) -> str:
    """``sha256:`` plus the hex digest of a file's bytes."""
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def pipeline_name(path: Path) -> str:
    """The pipeline name inside a compiled template, which the registry uses as package."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spec = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    return str(spec["pipelineInfo"]["name"])


def client(host: str) -> Any:
    """A RegistryClient; Artifact Registry hosts use Application Default Credentials.

    Raises:
        AuthError: an Artifact Registry host and no credentials.
    """
    from google.auth.exceptions import DefaultCredentialsError
    from kfp.registry import RegistryClient

    try:
        return RegistryClient(host=host)
    except DefaultCredentialsError as error:
        raise AuthError(f"template registry {host}: no credentials ({error})") from None


def _call(what: str, function: Any, *args: Any, **kwargs: Any) -> Any:
    """Calls the registry through the door, bounded in time (kfp sets no timeout)."""
    return calls.call(what, calls.in_time, function, *args, seconds=60.0, **kwargs)


def _get_tag(registry: Any, package: str, tag: str) -> dict[str, Any] | None:
    import requests

    try:
        found: dict[str, Any] = registry.get_tag(package, tag)
    except requests.HTTPError as error:
        if calls.http_status(error) == 404:
            return None
        raise
    return found


def _digest_of(version_name: str) -> str:
    return version_name.rsplit("/", 1)[-1]


def _tag_digest(what: str, tag: str, answer: Any) -> str:
    """The digest a tag answer names; refuses an answer without a digest version."""
    version = answer.get("version") if isinstance(answer, dict) else None
    if not isinstance(version, str):
        raise calls.malformed(what, f"tag {tag} was answered without a version")
    digest = _digest_of(version)
    if not names.DIGEST.fullmatch(digest):
        raise calls.malformed(
            what, f"tag {tag} names version {version[:120]!r}, which is not a sha256 digest"
        )
    return digest


def _named_items(what: str, answer: Any, kind: str) -> list[dict[str, Any]]:
    """The items of a list answer; each must be an object with a ``name`` text."""
    if not isinstance(answer, list):
        raise calls.malformed(what, f"the {kind} are {type(answer).__name__}, not a list")
    for item in answer:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise calls.malformed(what, f"one of the {kind} has no name")
    return answer


def publish(
    host: str, template: Path, version: str, latest: str = LATEST
) -> tuple[RegistryVersion, bool]:
    """Uploads a compiled template tagged with its version and ``latest``.

    Publishing the same content again changes nothing. A version tag that already
    points at different content is refused: versions are immutable. The template is
    uploaded untagged, then the version tag is *created* (the registry refuses to
    create a tag that exists, so of two concurrent publishes only one can win), then
    ``latest`` is moved; finally the version tag is read back.

    Args:
        host: ``https://REGION-kfp.pkg.dev/PROJECT/REPO``.
        template: the compiled YAML.
        version: the pipeline version, used as the tag.
        latest: the moving tag (``latest-notify`` for a version's e-mail variant).

    Returns:
        The published version, and whether anything was uploaded.

    Raises:
        ConfigError: ``version`` is not a tag (``names.TAG_FORM``).
        PipelineError: the tag exists with other content (also when a concurrent
            publish won), or the registry failed.
    """
    names.check_tag(version)
    registry = client(host)
    package = pipeline_name(template)
    digest = file_digest(template)
    what = f"publish {package} {version} to {host}"
    existing = _call(what, _get_tag, registry, package, version)
    if existing is not None:
        _check_tag_names(what, version, _tag_digest(what, version, existing), digest, race=False)
        return RegistryVersion(host, package, digest, [version]), False
    _, uploaded = _call(what, registry.upload_pipeline, str(template), tags=[])
    if uploaded != digest:
        raise PipelineError(
            f"{what}: the registry stored {uploaded}, but the file is {digest}",
        )
    if not _call(what, _create_tag, registry, package, digest, version):
        now = _call(what, _get_tag, registry, package, version)
        named = _tag_digest(what, version, now) if now else "nothing"
        _check_tag_names(what, version, named, digest)
    if not _call(what, _create_tag, registry, package, digest, latest):
        _call(what, registry.update_tag, package, digest, latest)
    now = _call(what, _get_tag, registry, package, version)
    named = _tag_digest(what, version, now) if now else "nothing"
    _check_tag_names(what, version, named, digest)
    return RegistryVersion(host, package, digest, [version, latest]), True


def _create_tag(registry: Any, package: str, digest: str, tag: str) -> bool:
    """Creates ``tag`` on ``digest``; False if the tag exists already (HTTP 409)."""
    import requests

    try:
        registry.create_tag(package, digest, tag)
    except requests.HTTPError as error:
        if calls.http_status(error) == 409:
            return False
        raise
    return True


def _check_tag_names(what: str, tag: str, named: str, digest: str, race: bool = True) -> None:
    """Fails unless ``tag`` names ``digest``: a version's content never changes."""
    if named != digest:
        raise PipelineError(
            f"{what}: tag {tag} already points at {named}, not at this template ({digest});"
            " published versions are never overwritten"
            + (" (another publish of it has just won)" if race else ""),
            hint="bump PIPELINE_VERSION in pipelines/rlhf_tuning.py and run `make compile`",
        )


def find(host: str, package: str, ref: str) -> RegistryVersion | None:
    """The published version a tag names (or a digest, checked), or None when the
    registry has no such tag or digest.

    Raises:
        ConfigError: ``ref`` is neither a tag nor ``sha256:`` and 64 hex digits.
        RLHFError: the registry could not be read, or answered malformed.
    """
    names.check_tag(ref, digest_ok=True)
    registry = client(host)
    what = f"resolve {package}:{ref} in {host}"
    if ref.startswith("sha256:"):
        known = {v.digest for v in list_versions(host, package)}
        return RegistryVersion(host, package, ref) if ref in known else None
    tag = _call(what, _get_tag, registry, package, ref)
    if tag is None:
        return None
    return RegistryVersion(host, package, _tag_digest(what, ref, tag), [ref])


def resolve(host: str, package: str, ref: str) -> RegistryVersion:
    """Resolves a tag (or checks a digest) to the version to submit.

    Args:
        host: the registry.
        package: the pipeline name.
        ref: a tag such as ``1.0.0`` or ``latest``, or ``sha256:...``.

    Raises:
        ConfigError: ``ref`` is neither a tag nor ``sha256:`` and 64 hex digits.
        PipelineError: the tag or digest does not exist (the message lists the tags).
    """
    found = find(host, package, ref)
    if found is not None:
        return found
    what = f"resolve {package}:{ref} in {host}"
    if ref.startswith("sha256:"):
        raise PipelineError(f"{what}: no such version", hint="see `make versions`")
    tags = sorted(t for v in list_versions(host, package) for t in v.tags)
    raise PipelineError(
        f"{what}: no tag {ref!r}; tags that exist: {', '.join(tags) or 'none'}",
        hint="publish it with `make publish` or pin one of the existing tags",
    )


def download(version: RegistryVersion, directory: Path) -> Path:
    """Downloads a version by digest and checks that the bytes match it.

    Raises:
        ConfigError: the version's digest is not ``sha256:`` and 64 hex digits.
        PipelineError: the download failed or its sha256 differs from the digest.
    """
    if not names.DIGEST.fullmatch(version.digest):
        names.check_tag(version.digest, digest_ok=True)
    registry = client(version.host)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{version.package}-{version.digest.replace(':', '-')}.yaml"
    what = f"download {version.uri}"
    _call(
        what,
        registry.download_pipeline,
        version.package,
        version=version.digest,
        file_name=str(target),
    )
    actual = file_digest(target)
    if actual != version.digest:
        target.unlink(missing_ok=True)
        raise PipelineError(f"{what}: content is {actual}, not {version.digest}")
    return target


def list_versions(host: str, package: str) -> list[RegistryVersion]:
    """Lists the published versions of a package with their tags, newest first.

    Note: kfp's list calls return the first page only.
    """
    registry = client(host)
    what = f"list {package} in {host}"
    versions = _named_items(what, _call(what, registry.list_versions, package) or [], "versions")
    tags = _named_items(what, _call(what, registry.list_tags, package) or [], "tags")
    by_digest: dict[str, list[str]] = {}
    for tag in tags:
        tag_name = _digest_of(tag["name"])
        by_digest.setdefault(_tag_digest(what, tag_name, tag), []).append(tag_name)
    found: dict[str, RegistryVersion] = {}
    for v in versions:
        digest = _digest_of(v["name"])
        created = v.get("createTime", "")
        if not names.DIGEST.fullmatch(digest) or not isinstance(created, str):
            raise calls.malformed(what, f"version {v['name'][:120]!r} is not a sha256 digest")
        found.setdefault(
            digest,
            RegistryVersion(host, package, digest, sorted(by_digest.get(digest, [])), created),
        )
    return sorted(found.values(), key=lambda v: v.created, reverse=True)
