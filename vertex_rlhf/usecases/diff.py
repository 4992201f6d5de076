"""Use case: what changed between two template versions (``rlhf diff A B``).

Each side is a version compiled in ``compiled/`` (``1.1.1``, ``1.2.0-notify``: the
manifest's files), a registry tag or a ``sha256:`` digest. Where each side comes from:

- a digest: the compiled file whose bytes have that digest, if one does (the same
  bytes, so no request); otherwise the registry's version of that digest;
- a tag, with a registry set (``vertex_ai.template_registry``): the registry's tag,
  resolved to its digest and downloaded by digest (bytes checked); a tag the registry
  does not hold but ``compiled/`` does is the compiled file, and the record says so;
- a tag, no registry set: the compiled file.

The record names the source of each side; nothing is printed here.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vertex_rlhf.config.values import TemplateVersion
from vertex_rlhf.errors import ConfigError, PipelineError
from vertex_rlhf.template.diff import TemplateDiff

COMPILED = "compiled"
REGISTRY = "registry"
# The deepest nesting a template may have (compiled ones stay under 20).
MAX_DEPTH = 100
REGISTRY_HINT = (
    "a published version needs a registry: pass --env with an environment whose parameters"
    " set vertex_ai.template_registry"
)


@dataclass(frozen=True)
class TemplateSource:
    """Where one side of a diff came from.

    Attributes:
        ref: the version as the user named it.
        origin: ``compiled`` (a file of ``compiled/``) or ``registry``.
        location: the compiled file, or the registry's digest URL.
        digest: ``sha256:`` of the template's bytes.
        version: the compiled version (``1.2.0-notify``) or the registry ref (tag or digest).
        manifest_kfp: the kfp version ``compiled/manifest.json`` records (compiled only).
        manifest_gcpc: the GCPC version it records (compiled only).
        note: why this source was taken, when it was not the first choice.
    """

    ref: str
    origin: str
    location: str
    digest: str
    version: str
    manifest_kfp: str = ""
    manifest_gcpc: str = ""
    note: str = ""


@dataclass(frozen=True)
class DiffReport:
    """Two template versions, where each came from, and what changed between them."""

    a: TemplateSource
    b: TemplateSource
    diff: TemplateDiff

    @property
    def same_bytes(self) -> bool:
        """Whether both sides are the very same file (equal digests)."""
        return self.a.digest == self.b.digest


@dataclass(frozen=True)
class _Compiled:
    path: Path
    kfp: str
    gcpc: str


def compiled_versions(compiled: Path) -> dict[str, _Compiled]:
    """The versions ``compiled/manifest.json`` lists, with each ``-notify`` variant."""
    from vertex_rlhf.config import names
    from vertex_rlhf.template.compiler import read_manifest

    manifest = read_manifest(compiled)
    templates = manifest.get("templates")
    found: dict[str, _Compiled] = {}
    for version, entry in (templates if isinstance(templates, dict) else {}).items():
        if not isinstance(entry, dict) or names.tag_problem(str(version)):
            continue
        kfp, gcpc = (
            str(entry.get("kfp", "")),
            str(entry.get("google_cloud_pipeline_components", "")),
        )
        variant = entry.get("notify")
        for name, item in ((version, entry), (f"{version}-notify", variant)):
            file = item.get("file") if isinstance(item, dict) else None
            # A file name, never a path: the manifest cannot point outside compiled/.
            if isinstance(file, str) and file and Path(file).name == file:
                found[name] = _Compiled(compiled / file, kfp, gcpc)
    return found


def _known(compiled: Path, local: dict[str, _Compiled], tags: list[str] | None) -> str:
    text = f"compiled in {compiled}/: {', '.join(sorted(local)) or 'none'}"
    if tags is not None:
        text += f"; tags in the registry: {', '.join(sorted(tags)) or 'none'}"
    return text


def _local(
    ref: TemplateVersion, name: str, found: _Compiled, note: str = ""
) -> tuple[TemplateSource, Path]:
    from vertex_rlhf.cloud.registry import file_digest

    if not found.path.is_file():
        raise PipelineError(
            f"{found.path}: compiled/manifest.json lists version {name}, but the file is not there",
            hint="run `make compile`, or check out compiled/ again",
        )
    digest = file_digest(found.path)
    source = TemplateSource(
        ref.text, COMPILED, str(found.path), digest, name, found.kfp, found.gcpc, note
    )
    return source, found.path


def resolve(
    ref: TemplateVersion,
    what: str,
    compiled: Path,
    host: str | None,
    downloads: Path,
) -> tuple[TemplateSource, Path]:
    """Finds the template ``ref`` names (see the module's doc for the order).

    Returns:
        Where it came from, and the file holding it (compiled, or downloaded by digest).

    Args:
        ref: the checked version, tag or digest.
        what: how messages name the argument (``A``, ``B``).
        compiled: the ``compiled/`` folder.
        host: the registry, or None when no environment sets one.
        downloads: where registry templates are downloaded to.

    Raises:
        ConfigError: no such version (the message lists the known ones).
        PipelineError: a registry fault or a download whose bytes do not match.
    """
    from vertex_rlhf.cloud import registry
    from vertex_rlhf.template.compiler import read_manifest

    local = compiled_versions(compiled)
    if ref.is_digest:
        for name, found in sorted(local.items()):
            if found.path.is_file() and registry.file_digest(found.path) == ref.text:
                return _local(ref, name, found)
    elif ref.text in local and not host:
        return _local(ref, ref.text, local[ref.text])
    if not host:
        raise ConfigError(
            [
                f"{what} {ref.text!r}: no such template; {_known(compiled, local, None)};"
                f" {REGISTRY_HINT}"
            ]
        )
    package = str(read_manifest(compiled).get("pipeline") or "")
    if not package:
        raise PipelineError(
            f"{compiled}/manifest.json: no pipeline name, so no registry package to look in",
            hint="run `make compile`",
        )
    version = registry.find(host, package, ref.text)
    if version is None and not ref.is_digest and ref.text in local:
        note = f"not published in {host}; the compiled file"
        return _local(ref, ref.text, local[ref.text], note)
    if version is None and ref.is_digest:
        published = registry.list_versions(host, package)
        digests = ", ".join(v.digest[:19] + "..." for v in published) or "none"
        raise ConfigError(
            [
                f"{what} {ref.text!r}: neither a template compiled in {compiled}/ nor a"
                f" version of {package} in {host} (published: {digests})"
            ]
        )
    if version is None:
        tags = [t for v in registry.list_versions(host, package) for t in v.tags]
        raise ConfigError(
            [f"{what} {ref.text!r}: no such version; {_known(compiled, local, tags)}"]
        )
    path = registry.download(version, downloads)
    note = ""
    if ref.text in local and local[ref.text].path.is_file():
        mine = registry.file_digest(local[ref.text].path)
        if mine != version.digest:
            note = f"compiled/ holds other bytes under {ref.text} ({mine})"
    source = TemplateSource(ref.text, REGISTRY, version.uri, version.digest, ref.text, note=note)
    return source, path


def _check_shape(spec: Any, label: str) -> None:
    """Refuses YAML aliases (a shared node; compiled templates have none, and a hostile
    one would expand without bound) and nesting deeper than ``MAX_DEPTH``."""
    seen: set[int] = set()
    todo: list[tuple[Any, int]] = [(spec, 0)]
    while todo:
        node, depth = todo.pop()
        if not isinstance(node, (dict, list)):
            continue
        if id(node) in seen:
            raise PipelineError(f"{label}: not a compiled pipeline (it uses YAML aliases)")
        if depth > MAX_DEPTH:
            raise PipelineError(f"{label}: not a compiled pipeline (nested over {MAX_DEPTH})")
        seen.add(id(node))
        children = node.values() if isinstance(node, dict) else node
        todo += [(child, depth + 1) for child in children]


def load(path: Path, label: str) -> dict[str, Any]:
    """Reads a template file (outside input) into a checked spec.

    Raises:
        PipelineError: not UTF-8 YAML, or not a compiled pipeline.
    """
    import yaml

    from vertex_rlhf.template.diff import check_spec

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        spec = yaml.load(path.read_bytes().decode("utf-8"), Loader=loader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise PipelineError(f"{label}: not a readable template ({reason})") from None
    _check_shape(spec, label)
    return check_spec(spec, label)


def diff(
    a: TemplateVersion, b: TemplateVersion, compiled: Path, host: str | None = None
) -> DiffReport:
    """What changed from template version ``a`` to ``b``.

    Args:
        a: the first (older) version, tag or digest.
        b: the second.
        compiled: the ``compiled/`` folder.
        host: the registry (``vertex_ai.template_registry``), or None for compiled only.

    Raises:
        ConfigError: either version is unknown (the known ones are listed).
        PipelineError: a template is not a compiled pipeline, or a registry fault.
    """
    from vertex_rlhf.template.diff import compare

    with tempfile.TemporaryDirectory(prefix="rlhf-diff-") as temporary:
        specs, sources = [], []
        for ref, what in ((a, "A"), (b, "B")):
            downloads = Path(temporary) / what
            source, path = resolve(ref, what, compiled, host, downloads)
            specs.append(load(path, f"{what} ({source.location})"))
            sources.append(source)
    return DiffReport(sources[0], sources[1], compare(specs[0], specs[1]))
