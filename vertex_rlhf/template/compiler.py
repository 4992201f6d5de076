"""Compile the pipeline into ``compiled/`` with a manifest, byte for byte reproducibly.

GCPC reads environment variables at import time that change the compiled YAML
(private image tag and registry, test machine specs). They are cleared before GCPC
is imported, and checked after, so the template never depends on the shell.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from vertex_rlhf.errors import PipelineError

GCPC_COMPILE_ENV = (
    "PRIVATE_IMAGE_TAG",
    "PRIVATE_ARTIFACT_REGISTRY_PROJECT",
    "PRIVATE_ARTIFACT_REGISTRY_LOCATION",
    "PRIVATE_ARTIFACT_REGISTRY",
    "PRIVATE_IMAGE_NAME_PREFIX",
    "USE_TEST_MACHINE_SPEC",
    "TEXT_IMPORTER_IMAGE_OVERRIDE",
    "CLOUD_ML_REGION",
)
MANIFEST = "manifest.json"
# Not versioned (.gitignore): what the last compile saw, so a no-op compile needs no kfp.
STAMP = ".compile-stamp.json"
# What the template is made of: our sources, and the pinned versions of what compiles it.
SOURCE_DIRS = ("pipelines", "components", "vertex_rlhf")
PIN_FILES = ("constraints.txt", "pyproject.toml")


@dataclass(frozen=True)
class Template:
    """A compiled template, in memory."""

    name: str
    version: str
    text: str

    @property
    def file_name(self) -> str:
        return f"{self.name}-{self.version}.yaml"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def build_template() -> Template:
    """Compiles the pipeline in memory with GCPC's compile-time variables cleared.

    Returns:
        The compiled YAML text with the pipeline's name and version.

    Raises:
        PipelineError: GCPC was already imported with compile-time variables set.
    """
    for name in GCPC_COMPILE_ENV:
        os.environ.pop(name, None)
    from google_cloud_pipeline_components._implementation.llm import env
    from google_cloud_pipeline_components._implementation.llm.generated import (
        refined_image_versions,
    )
    from kfp import compiler

    from pipelines.rlhf_tuning import PIPELINE_NAME, PIPELINE_VERSION, rlhf_tuning

    if (env.PRIVATE_IMAGE_TAG, env.PRIVATE_ARTIFACT_REGISTRY_PROJECT) != (
        refined_image_versions.IMAGE_TAG,
        "vertex-ai-restricted",
    ):
        raise PipelineError(
            "GCPC was imported with PRIVATE_* variables set, which changes the template",
            hint="unset " + " ".join(GCPC_COMPILE_ENV) + " and compile in a fresh process",
        )
    target = Path(os.environ.get("TMPDIR", "/tmp")) / f"rlhf-compile-{os.getpid()}.yaml"
    try:
        compiler.Compiler().compile(rlhf_tuning, str(target))
        text = target.read_text(encoding="utf-8")
    except OSError as error:  # a full disk under TMPDIR
        from vertex_rlhf.data.writes import write_failure

        raise write_failure(target, error, PipelineError) from None
    finally:
        target.unlink(missing_ok=True)
    return Template(PIPELINE_NAME, PIPELINE_VERSION, text)


def manifest_entry(template: Template) -> dict[str, Any]:
    """Describes a template for the manifest: file, digest and the SDK versions."""
    return {
        "file": template.file_name,
        "sha256": template.sha256,
        "kfp": version("kfp"),
        "google_cloud_pipeline_components": version("google-cloud-pipeline-components"),
    }


def read_manifest(directory: Path) -> dict[str, Any]:
    """Reads ``compiled/manifest.json``; an absent file is an empty manifest."""
    path = directory / MANIFEST
    if not path.is_file():
        return {"pipeline": "", "current": "", "templates": {}}
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise PipelineError(
            f"{path}: not valid JSON ({error})", hint="run `make compile` to rewrite it"
        ) from None
    return manifest


def _manifest_text(manifest: dict[str, Any]) -> str:
    """The manifest as written: sorted keys, so unchanged content is unchanged bytes."""
    return json.dumps(manifest, indent=2, sort_keys=True) + "\n"


def _write_atomically(path: Path, text: str) -> None:
    """Replaces ``path`` whole; a full disk is a PipelineError and leaves no temporary."""
    from vertex_rlhf.data.writes import replace_whole

    replace_whole(path, text.encode("utf-8"), PipelineError)


BUMP_HINT = (
    "bump PIPELINE_VERSION in pipelines/rlhf_tuning.py, run `make compile` and commit"
    " compiled/ (the files of earlier versions stay: runs and the registry refer to them)"
)


def _recorded_digest(directory: Path, manifest: dict[str, Any], version: str) -> str | None:
    """The digest a version was compiled with: the manifest's, else its file's, else None."""
    entry = manifest.get("templates", {}).get(version, {})
    if entry.get("sha256"):
        return str(entry["sha256"])
    path = directory / str(entry.get("file", ""))
    return hashlib.sha256(path.read_bytes()).hexdigest() if entry and path.is_file() else None


def compile_to(directory: Path, amend: bool = False) -> tuple[Template, bool]:
    """Writes the template and updates the manifest, touching nothing that is unchanged.

    A version is immutable: once ``compiled/`` holds a version, compiling other content
    under the same version is refused. Earlier versions' files are kept.

    Args:
        directory: usually ``compiled/``.
        amend: rewrite the current version although its content changes; only for a
            version still in development (never published, never released).

    Returns:
        The template, and whether any file was written.

    Raises:
        PipelineError: the version exists with other content (and ``amend`` is not
            set), or ``amend`` asks to rewrite a published version.
    """
    template = build_template()
    directory.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(directory)
    path = directory / template.file_name
    recorded = _recorded_digest(directory, manifest, template.version)
    if recorded is None and path.is_file():
        recorded = hashlib.sha256(path.read_bytes()).hexdigest()
    if recorded not in (None, template.sha256):
        assert recorded is not None
        published = manifest["templates"].get(template.version, {}).get("published")
        if not amend or published:
            where = f" and published to {', '.join(published)}" if published else ""
            raise PipelineError(
                f"version {template.version} is already compiled in {path}{where} with other"
                f" content (sha256 {recorded[:12]}; the sources now give"
                f" {template.sha256[:12]}): a version is never rewritten",
                hint=BUMP_HINT,
            )
    manifest["pipeline"] = template.name
    manifest["current"] = template.version
    manifest.setdefault("templates", {})[template.version] = {
        **manifest["templates"].get(template.version, {}),
        **manifest_entry(template),
    }
    manifest_text = _manifest_text(manifest)
    changed = False
    if not path.is_file() or path.read_text(encoding="utf-8") != template.text:
        _write_atomically(path, template.text)
        changed = True
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file() or manifest_path.read_text(encoding="utf-8") != manifest_text:
        _write_atomically(manifest_path, manifest_text)
        changed = True
    return template, changed


def stale_problems(directory: Path) -> list[str]:
    """Compares ``compiled/`` with a fresh compile of the sources.

    Also checks that every earlier version's file still has the digest recorded for it.

    Args:
        directory: usually ``compiled/``.

    Returns:
        What is out of date, each with its fix; empty when ``compiled/`` matches.
    """
    template = build_template()
    problems = []
    manifest = read_manifest(directory)
    path = directory / template.file_name
    current = path.read_text(encoding="utf-8") if path.is_file() else None
    if current is None:
        problems.append(f"{path} is missing; run `make compile`")
    elif current != template.text:
        problems.append(
            f"{path} differs from a fresh compile of the sources: the pipeline changed but"
            f" PIPELINE_VERSION is still {template.version}; {BUMP_HINT}"
        )
    entry = manifest.get("templates", {}).get(template.version, {})
    expected = manifest_entry(template)
    for key, value in expected.items():
        if current == template.text and entry.get(key) != value:
            problems.append(
                f"{directory / MANIFEST}: templates.{template.version}.{key} is"
                f" {entry.get(key)!r}, expected {value!r}"
            )
    for earlier, old in sorted(manifest.get("templates", {}).items()):
        old_path = directory / str(old.get("file", ""))
        if earlier == template.version or not old.get("sha256"):
            continue
        if not old_path.is_file():
            problems.append(f"{old_path} (version {earlier}) is missing; restore it from git")
        elif hashlib.sha256(old_path.read_bytes()).hexdigest() != old["sha256"]:
            problems.append(
                f"{old_path} (version {earlier}) no longer has its recorded sha256; a"
                " published version never changes: restore it from git"
            )
    return problems


def source_fingerprint(root: Path | None = None) -> str:
    """A digest of everything a compile depends on, without importing kfp or GCPC.

    Args:
        root: the project root (default: the one holding this package).

    Returns:
        The sha256 of the Python sources, the pin files, and the installed kfp, GCPC
        and Python versions.
    """
    import sys

    root = root or Path(__file__).resolve().parents[2]
    digest = hashlib.sha256()
    for name in ("kfp", "google-cloud-pipeline-components"):
        digest.update(f"{name}=={version(name)}\n".encode())
    digest.update(f"python {sys.version_info[:3]}\n".encode())
    paths = [root / name for name in PIN_FILES]
    for folder in SOURCE_DIRS:
        paths += sorted((root / folder).rglob("*.py"))
    for path in paths:
        if path.is_file():
            digest.update(f"{path.relative_to(root)}\n".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _stamp(directory: Path, file_name: str, fingerprint: str) -> dict[str, str]:
    """What a no-op compile compares: the sources' fingerprint and compiled/'s digests."""
    return {
        "fingerprint": fingerprint,
        "file": file_name,
        "sha256": hashlib.sha256((directory / file_name).read_bytes()).hexdigest(),
        "manifest_sha256": hashlib.sha256((directory / MANIFEST).read_bytes()).hexdigest(),
    }


def write_stamp(directory: Path, template: Template, fingerprint: str) -> None:
    """Records that ``directory`` holds the compile of sources with ``fingerprint``.

    Args:
        directory: usually ``compiled/``, just compiled.
        template: the template compiled into it.
        fingerprint: ``source_fingerprint()`` taken before compiling.
    """
    text = json.dumps(_stamp(directory, template.file_name, fingerprint), indent=2) + "\n"
    _write_atomically(directory / STAMP, text)


def unchanged_since_stamp(directory: Path, fingerprint: str) -> tuple[str, str] | None:
    """Whether the last compile's answer still holds, without compiling.

    It holds when the sources and pinned versions are those of the last compile into
    ``directory`` and the template and manifest there are the bytes it wrote; anything
    else (a changed source, an edited or stale compiled/) needs a real compile, which
    refuses to rewrite a version.

    Args:
        directory: usually ``compiled/``.
        fingerprint: ``source_fingerprint()``.

    Returns:
        ``(template file name, sha256)`` when nothing changed, else None.
    """
    try:
        stamp = json.loads((directory / STAMP).read_text(encoding="utf-8"))
        if stamp.get("fingerprint") != fingerprint:
            return None
        if _stamp(directory, str(stamp["file"]), fingerprint) != stamp:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return str(stamp["file"]), str(stamp["sha256"])


def record_publication(directory: Path, version: str, host: str, digest: str) -> None:
    """Notes in the manifest that a template version was published to a registry.

    Args:
        directory: usually ``compiled/``.
        version: the template version.
        host: the registry it was published to.
        digest: the ``sha256:`` digest the registry returned.
    """
    manifest = read_manifest(directory)
    entry = manifest.setdefault("templates", {}).setdefault(version, {})
    entry.setdefault("published", {})[host] = digest
    _write_atomically(directory / MANIFEST, _manifest_text(manifest))
