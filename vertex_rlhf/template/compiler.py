"""Compile the pipeline into ``compiled/`` with a manifest, byte for byte reproducibly.

Each version is compiled twice: without e-mail, and the ``-notify`` variant whose exit
task is Vertex's e-mail notification (``pipelines/rlhf_tuning.py`` says why). The
manifest records both files and digests under the version.

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
    variant: str = ""
    # The variant that e-mails when the run ends, compiled beside this one.
    notify: Template | None = None

    @property
    def file_name(self) -> str:
        suffix = f"-{self.variant}" if self.variant else ""
        return f"{self.name}-{self.version}{suffix}.yaml"

    @property
    def files(self) -> tuple[Template, ...]:
        """This template and its variants, each written to its own file."""
        return (self,) if self.notify is None else (self, self.notify)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def build_template() -> Template:
    """Compiles the pipeline in memory with GCPC's compile-time variables cleared.

    Returns:
        The compiled YAML text with the pipeline's name and version, and its e-mail
        variant in ``notify``.

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

    from pipelines.rlhf_tuning import (
        NOTIFY_VARIANT,
        PIPELINE_NAME,
        PIPELINE_VERSION,
        rlhf_tuning,
        rlhf_tuning_notify,
    )

    if (env.PRIVATE_IMAGE_TAG, env.PRIVATE_ARTIFACT_REGISTRY_PROJECT) != (
        refined_image_versions.IMAGE_TAG,
        "vertex-ai-restricted",
    ):
        raise PipelineError(
            "GCPC was imported with PRIVATE_* variables set, which changes the template",
            hint="unset " + " ".join(GCPC_COMPILE_ENV) + " and compile in a fresh process",
        )
    texts = []
    for pipeline in (rlhf_tuning, rlhf_tuning_notify):
        target = Path(os.environ.get("TMPDIR", "/tmp")) / f"rlhf-compile-{os.getpid()}.yaml"
        try:
            compiler.Compiler().compile(pipeline, str(target))
            texts.append(target.read_text(encoding="utf-8"))
        except OSError as error:  # a full disk under TMPDIR
            from vertex_rlhf.data.writes import write_failure

            raise write_failure(target, error, PipelineError) from None
        finally:
            target.unlink(missing_ok=True)
    notify = Template(PIPELINE_NAME, PIPELINE_VERSION, texts[1], NOTIFY_VARIANT)
    return Template(PIPELINE_NAME, PIPELINE_VERSION, texts[0], notify=notify)


def manifest_entry(template: Template) -> dict[str, Any]:
    """Describes a template for the manifest: files, digests and the SDK versions."""
    entry: dict[str, Any] = {
        "file": template.file_name,
        "sha256": template.sha256,
        "kfp": version("kfp"),
        "google_cloud_pipeline_components": version("google-cloud-pipeline-components"),
    }
    for variant in template.files[1:]:
        entry[variant.variant] = {"file": variant.file_name, "sha256": variant.sha256}
    return entry


def variant_entries(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """A manifest entry's files: the version's own, then its variants' (if any)."""
    return [entry, *(v for v in entry.values() if isinstance(v, dict) and "file" in v)]


def manifest_fix(directory: Path) -> str:
    """How to get a readable ``manifest.json`` back: the project's ``compiled/`` is committed,
    so git restores it; another folder is compiled afresh (its current version only)."""
    import shlex

    from vertex_rlhf.config.environment import find_project_root

    root = find_project_root()
    try:
        own = directory.resolve() == (root / "compiled").resolve()
    except OSError:
        own = False
    if own:
        return f"restore it: `git -C {shlex.quote(str(root))} checkout -- compiled/{MANIFEST}`"
    folder = shlex.quote(str(directory))
    return (
        f"restore it from where {folder} was copied, or remove {folder} and run"
        f" `rlhf compile --compiled-dir {folder}` (that compiles the current version only)"
    )


def read_manifest(directory: Path) -> dict[str, Any]:
    """Reads ``compiled/manifest.json``; an absent file is an empty manifest."""
    path = directory / MANIFEST
    if not path.is_file():
        return {"pipeline": "", "current": "", "templates": {}}
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise PipelineError(
            f"{path}: not valid JSON ({error})",
            hint=manifest_fix(directory),
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


def _recorded_digest(directory: Path, entry: dict[str, Any], template: Template) -> str | None:
    """The digest a file was compiled with: the manifest's, else the file's, else None."""
    if entry.get("sha256"):
        return str(entry["sha256"])
    path = directory / template.file_name
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _variant_entry(entry: dict[str, Any], template: Template) -> dict[str, Any]:
    """The part of a version's manifest entry that describes one of its files."""
    found = entry.get(template.variant, {}) if template.variant else entry
    return found if isinstance(found, dict) else {}


def _published(entry: dict[str, Any]) -> list[str]:
    """The registries any file of a version was published to."""
    return sorted({host for e in variant_entries(entry) for host in e.get("published") or {}})


def _merged_entry(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The new entry over the old one, keeping what the old one recorded (publications)."""
    merged = {**old, **new}
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(old.get(key), dict):
            merged[key] = {**old[key], **value}
    return merged


def compile_to(directory: Path, amend: bool = False) -> tuple[Template, bool]:
    """Writes the template files and updates the manifest, touching nothing unchanged.

    A version is immutable: once ``compiled/`` holds a version, compiling other content
    under the same version is refused. Earlier versions' files are kept.

    Args:
        directory: usually ``compiled/``.
        amend: rewrite the current version although its content changes; only for a
            version still in development (never published, never released).

    Returns:
        The template (its variants in ``files``), and whether any file was written.

    Raises:
        PipelineError: the version exists with other content (and ``amend`` is not
            set), or ``amend`` asks to rewrite a published version.
    """
    template = build_template()
    directory.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(directory)
    old = manifest.get("templates", {}).get(template.version, {})
    published = _published(old)
    for variant in template.files:
        path = directory / variant.file_name
        recorded = _recorded_digest(directory, _variant_entry(old, variant), variant)
        if recorded not in (None, variant.sha256) and (not amend or published):
            assert recorded is not None
            where = f" and published to {', '.join(published)}" if published else ""
            raise PipelineError(
                f"version {template.version} is already compiled in {path}{where} with other"
                f" content (sha256 {recorded[:12]}; the sources now give"
                f" {variant.sha256[:12]}): a version is never rewritten",
                hint=BUMP_HINT,
            )
    manifest["pipeline"] = template.name
    manifest["current"] = template.version
    manifest.setdefault("templates", {})[template.version] = _merged_entry(
        old, manifest_entry(template)
    )
    manifest_text = _manifest_text(manifest)
    changed = False
    for variant in template.files:
        path = directory / variant.file_name
        if not path.is_file() or path.read_text(encoding="utf-8") != variant.text:
            _write_atomically(path, variant.text)
            changed = True
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file() or manifest_path.read_text(encoding="utf-8") != manifest_text:
        _write_atomically(manifest_path, manifest_text)
        changed = True
    return template, changed


def stale_problems(directory: Path) -> list[str]:
    """Compares ``compiled/`` with a fresh compile of the sources.

    Also checks that every earlier version's files still have the digests recorded.

    Args:
        directory: usually ``compiled/``.

    Returns:
        What is out of date, each with its fix; empty when ``compiled/`` matches.
    """
    template = build_template()
    problems = []
    manifest = read_manifest(directory)
    fresh = True
    for variant in template.files:
        path = directory / variant.file_name
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current is None:
            problems.append(f"{path} is missing; run `make compile`")
        elif current != variant.text:
            problems.append(
                f"{path} differs from a fresh compile of the sources: the pipeline changed but"
                f" PIPELINE_VERSION is still {template.version}; {BUMP_HINT}"
            )
        fresh = fresh and current == variant.text
    entry = manifest.get("templates", {}).get(template.version, {})
    for key, value in manifest_entry(template).items():
        recorded = entry.get(key)
        if isinstance(value, dict) and isinstance(recorded, dict):
            recorded = {k: recorded.get(k) for k in value}
        if fresh and recorded != value:
            problems.append(
                f"{directory / MANIFEST}: templates.{template.version}.{key} is"
                f" {recorded!r}, expected {value!r}"
            )
    for earlier, old in sorted(manifest.get("templates", {}).items()):
        if earlier == template.version:
            continue
        for recorded in variant_entries(old):
            old_path = directory / str(recorded.get("file", ""))
            if not recorded.get("sha256"):
                continue
            if not old_path.is_file():
                problems.append(f"{old_path} (version {earlier}) is missing; restore it from git")
            elif hashlib.sha256(old_path.read_bytes()).hexdigest() != recorded["sha256"]:
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


def _stamp(directory: Path, file_names: list[str], fingerprint: str) -> dict[str, Any]:
    """What a no-op compile compares: the sources' fingerprint and compiled/'s digests."""

    def digest(name: str) -> str:
        return hashlib.sha256((directory / name).read_bytes()).hexdigest()

    return {
        "fingerprint": fingerprint,
        "file": file_names[0],
        "sha256": digest(file_names[0]),
        "variants": {name: digest(name) for name in file_names[1:]},
        "manifest_sha256": digest(MANIFEST),
    }


def write_stamp(directory: Path, template: Template, fingerprint: str) -> None:
    """Records that ``directory`` holds the compile of sources with ``fingerprint``.

    Args:
        directory: usually ``compiled/``, just compiled.
        template: the template compiled into it.
        fingerprint: ``source_fingerprint()`` taken before compiling.
    """
    names = [variant.file_name for variant in template.files]
    text = json.dumps(_stamp(directory, names, fingerprint), indent=2) + "\n"
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
        names = [str(stamp["file"]), *stamp["variants"]]
        if _stamp(directory, names, fingerprint) != stamp:
            return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return str(stamp["file"]), str(stamp["sha256"])


def record_publication(
    directory: Path, version: str, host: str, digest: str, variant: str = ""
) -> None:
    """Notes in the manifest that a template version was published to a registry.

    Args:
        directory: usually ``compiled/``.
        version: the template version.
        host: the registry it was published to.
        digest: the ``sha256:`` digest the registry returned.
        variant: which file of the version (``notify``); empty for its own.
    """
    manifest = read_manifest(directory)
    entry = manifest.setdefault("templates", {}).setdefault(version, {})
    if variant:
        entry = entry.setdefault(variant, {})
    entry.setdefault("published", {})[host] = digest
    _write_atomically(directory / MANIFEST, _manifest_text(manifest))
