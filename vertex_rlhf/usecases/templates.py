"""Use cases over the pipeline template: compile, reference, publish, versions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vertex_rlhf.errors import ConfigError, PipelineError
from vertex_rlhf.usecases.setting import Setting

if TYPE_CHECKING:
    from vertex_rlhf.cloud.registry import RegistryVersion

# The branches a committed version may not be rewritten on (``compile --amend``).
MAIN_BRANCHES = ("main", "master", "origin/main", "origin/master")


@dataclass(frozen=True)
class CompiledFile:
    """One compiled template file and what compiling did to it."""

    path: Path
    sha256: str
    state: str  # "written", "unchanged", or "unchanged since the last compile"


def compile_templates(directory: Path, amend: bool = False) -> list[CompiledFile]:
    """Compiles the pipeline into ``directory`` (both variants of the current version).

    Raises:
        PipelineError: ``amend`` of a version committed on the main branch, or a version
            whose compiled bytes would change without a new version number.
    """
    from vertex_rlhf.template import compiler

    if amend:
        refuse_amending_main(directory)
    fingerprint = compiler.source_fingerprint()
    unchanged = None if amend else compiler.unchanged_since_stamp(directory, fingerprint)
    if unchanged:  # the same sources and pins as the last compile: its answer holds
        return [CompiledFile(directory / unchanged[0], unchanged[1], "unchanged")]
    template, changed = compiler.compile_to(directory, amend=amend)
    compiler.write_stamp(directory, template, fingerprint)
    state = "written" if changed else "unchanged"
    return [CompiledFile(directory / v.file_name, v.sha256, state) for v in template.files]


def check_compiled(directory: Path) -> None:
    """Fails when ``compiled/`` is stale against the sources.

    Raises:
        PipelineError: listing each stale file and its fix.
    """
    from vertex_rlhf.template import compiler

    problems = compiler.stale_problems(directory)
    if problems:
        raise PipelineError(
            "compiled/ is stale: " + "; ".join(problems),
            hint="as each problem says, then commit compiled/",
        )


def refuse_amending_main(directory: Path) -> None:
    """``compile --amend`` rewrites a version only while it is not on the main branch.

    Raises:
        PipelineError: the current version's template is committed on the main branch
            (others may have pulled, published or released it).
    """
    import subprocess

    from pipelines.rlhf_tuning import PIPELINE_VERSION
    from vertex_rlhf.template import compiler

    name = compiler.read_manifest(directory).get("pipeline") or "rlhf-tuning"
    template = directory.resolve() / f"{name}-{PIPELINE_VERSION}.yaml"

    def git(*argv: str) -> bool:
        try:
            done = subprocess.run(
                ["git", *argv], cwd=template.parent, capture_output=True, timeout=30
            )
        except (OSError, subprocess.SubprocessError):
            return False
        return done.returncode == 0

    for branch in MAIN_BRANCHES:
        if git("rev-parse", "--verify", "--quiet", f"{branch}^{{commit}}") and git(
            "cat-file", "-e", f"{branch}:./{template.name}"
        ):
            raise PipelineError(
                f"version {PIPELINE_VERSION} is committed on the {branch} branch"
                f" ({directory / template.name}): --amend rewrites only a version that is"
                " not yet on the main branch",
                hint=compiler.BUMP_HINT,
            )


@dataclass(frozen=True)
class Reference:
    """What the parameter reference lists.

    Attributes:
        rows: every key: ``key``, ``type``, ``default``, ``base``, ``description``,
            ``allowed`` (Markdown cells).
        notes: what each key of the original layout became.
    """

    rows: list[dict[str, str]]
    notes: dict[str, str]


def reference(compiled: Path, params_dir: Path) -> Reference:
    """The parameter reference's rows, from the schema, the current compiled template's
    input descriptions and ``params/base.yaml``."""
    import vertex_rlhf.original.layout as legacy
    from vertex_rlhf.template import signature
    from vertex_rlhf.template.reference import rows

    template = signature.current_template_path(compiled)
    return Reference(rows(template, params_dir / "base.yaml"), dict(legacy.NOTES))


def write_reference(text: str, output: Path, check: bool) -> bool:
    """Writes the parameter reference (``views.reference.render``'s text) atomically.

    Returns:
        Whether the file changed (with ``check``, nothing is written).

    Raises:
        PipelineError: with ``check``, the file is stale.
    """
    from vertex_rlhf.data.writes import replace_whole

    current = output.read_text(encoding="utf-8") if output.is_file() else None
    if check:
        if current != text:
            raise PipelineError(
                f"{output} is stale against the schema", hint="run `make docs` and commit it"
            )
        return False
    if current != text:
        replace_whole(output, text.encode("utf-8"), PipelineError)
    return current != text


@dataclass(frozen=True)
class Publication:
    """One variant of a version in the registry after ``publish``."""

    package: str
    version: str
    uri: str
    digest: str
    uploaded: bool


def registry_host(setting: Setting) -> str:
    """The registry the parameters name.

    Raises:
        ConfigError: ``vertex_ai.template_registry`` is not set.
    """
    host = setting.params.vertex_ai.template_registry
    if not host:
        raise ConfigError(
            [
                "vertex_ai.template_registry: not set; set it in params/ to"
                " https://REGION-kfp.pkg.dev/PROJECT/REPO"
            ]
        )
    return host


def publish(setting: Setting) -> list[Publication]:
    """Publishes the current compiled version (and its e-mail variant) to the registry.

    Raises:
        PipelineError: a version tag that already holds other content, or a registry fault.
    """
    from vertex_rlhf.cloud import registry, submission
    from vertex_rlhf.template.compiler import record_publication

    host = registry_host(setting)
    done = []
    for notify in (False, True):  # the version, then its e-mail variant
        template = submission.local_template(setting.compiled, notify=notify)
        assert template.path is not None
        if notify and not template.version.endswith(submission.NOTIFY_SUFFIX):
            break  # a version compiled before variants: one file, published above
        latest = submission.variant_tag(registry.LATEST, notify)
        published, uploaded = registry.publish(host, template.path, template.version, latest)
        variant = "notify" if template.version.endswith(submission.NOTIFY_SUFFIX) else ""
        version = template.version.removesuffix(submission.NOTIFY_SUFFIX)
        record_publication(setting.compiled, version, host, published.digest, variant)
        done.append(
            Publication(template.name, template.version, published.uri, published.digest, uploaded)
        )
    return done


@dataclass(frozen=True)
class Versions:
    """The published versions of the pipeline's package."""

    host: str
    package: str
    versions: list[RegistryVersion]


def versions(setting: Setting) -> Versions:
    """Lists the published versions and their tags."""
    from vertex_rlhf.cloud import registry, submission

    host = registry_host(setting)
    package = submission.local_template(setting.compiled).name
    return Versions(host, package, registry.list_versions(host, package))
