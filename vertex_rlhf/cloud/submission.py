"""Turn checked parameters into a Vertex AI PipelineJob and create it, safely.

The request is built once (``build_request``) and then either described (dry run)
or submitted. A submit that times out or meets a transient error looks for the job
by its id before trying again, and "already exists" means the job it created, so a
retry never leaves two runs.
"""

from __future__ import annotations

import logging
import re
import secrets
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vertex_rlhf.cloud import calls, registry, vertex
from vertex_rlhf.cloud.vertex import VertexTarget, init_sdk, pipeline_service
from vertex_rlhf.config import names
from vertex_rlhf.config.params import RLHFParams, local_dataset_problems
from vertex_rlhf.errors import ConfigError, PipelineError, RLHFError
from vertex_rlhf.template import signature
from vertex_rlhf.template.compiler import read_manifest

if TYPE_CHECKING:
    from google.api_core.retry import Retry

LABEL_LIMIT = 63
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TemplateRef:
    """The exact template a run uses.

    Attributes:
        path: a local file holding the template (compiled, or downloaded by digest).
        name: the pipeline name.
        version: the version (a tag), or the digest when pinned by digest.
        digest: ``sha256:`` of the template bytes; empty until resolved.
        uri: the registry digest URL, or None for a local template.
    """

    path: Path | None
    name: str
    version: str
    digest: str
    uri: str | None = None


# The registry tag and file suffix of a version's variant that e-mails when the run ends
# (pipelines/rlhf_tuning.py NOTIFY_VARIANT; not imported: it would import kfp).
NOTIFY_SUFFIX = "-notify"


def variant_tag(ref: str, notify: bool) -> str:
    """The registry ref of a version's e-mail variant (``1.2.0-notify``, ``latest-notify``).

    A digest names one file and is kept; the signature check tells if it is the wrong one.
    """
    return ref + NOTIFY_SUFFIX if notify and not ref.startswith("sha256:") else ref


def local_template(
    compiled_dir: Path, version: str | None = None, notify: bool = False
) -> TemplateRef:
    """The compiled template of ``version`` (default: the current one) in ``compiled/``.

    Args:
        compiled_dir: usually ``compiled/``.
        version: a compiled version; default the manifest's current one.
        notify: the variant that e-mails when the run ends, where the version has one
            (versions before 1.2.0 are one file that always holds the e-mail task).

    Raises:
        PipelineError: that version was not compiled here.
    """
    manifest = read_manifest(compiled_dir)
    version = version or manifest.get("current", "")
    entry = manifest.get("templates", {}).get(version)
    variant = entry.get("notify") if notify and entry else None
    chosen = variant if isinstance(variant, dict) else entry
    if not chosen or not (compiled_dir / chosen["file"]).is_file():
        known = ", ".join(sorted(manifest.get("templates", {}))) or "none"
        raise PipelineError(
            f"no compiled template of version {version!r} in {compiled_dir}/ (compiled: {known})",
            hint="run `make compile`, or set vertex_ai.template_registry to use a published one",
        )
    path = compiled_dir / chosen["file"]
    shown = variant_tag(version, chosen is variant)
    return TemplateRef(path, manifest["pipeline"], shown, registry.file_digest(path))


def registry_template(
    host: str, package: str, ref: str, download_dir: Path, notify: bool = False
) -> TemplateRef:
    """Resolves a registry tag to its digest and downloads that exact template.

    With ``notify``, the version's e-mail variant (``ref-notify``) is used; a version
    published before variants existed has none, and its one file is used.
    """
    if variant_tag(ref, notify) != ref:
        try:
            version = registry.resolve(host, package, variant_tag(ref, notify))
            ref = variant_tag(ref, notify)
        except PipelineError:
            version = registry.resolve(host, package, ref)
    else:
        version = registry.resolve(host, package, ref)
    path = registry.download(version, download_dir)
    return TemplateRef(path, package, ref, version.digest, version.uri)


def sanitize_label(text: str) -> str:
    """Fits a value to Vertex's label rules: a-z, 0-9, ``_`` and ``-``, at most 63."""
    return re.sub(r"[^a-z0-9_-]", "-", text.lower())[:LABEL_LIMIT]


def git_commit(repo: Path) -> str:
    """The short commit of ``repo``, ``-dirty`` when it has uncommitted changes."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def run_labels(
    user_labels: dict[str, str], template: TemplateRef, env: str, commit: str
) -> dict[str, str]:
    """The labels of a run: the user's, plus pipeline, version, commit and environment."""
    labels = dict(user_labels)
    labels.update(
        {
            "pipeline": sanitize_label(template.name),
            "pipeline-version": sanitize_label(template.version),
            "git-commit": sanitize_label(commit),
            "environment": sanitize_label(env),
        }
    )
    return labels


JOB_ID_RANDOM_BYTES = 10  # 63 (a label) + 1 + 15 + 1 + 20 = 100 characters at most


def new_job_id(pipeline: str, env: str, now: datetime | None = None) -> str:
    """A unique, valid job id: pipeline, environment, UTC second and a random suffix.

    The SDK's default has one-second resolution, so two submits in a second collide.
    The suffix is 80 random bits (20 hex digits): ids drawn in the same second never
    meet in practice, and the whole id stays within Vertex's 128 characters.
    """
    now = now or datetime.now(timezone.utc)
    stem = sanitize_label(f"{pipeline}-{env}").strip("-_").replace("_", "-")
    return f"{stem[:90]}-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(JOB_ID_RANDOM_BYTES)}"


@dataclass(frozen=True)
class SubmitRequest:
    """Everything that goes into one PipelineJob create request."""

    target: VertexTarget
    template: TemplateRef
    job_id: str
    display_name: str
    labels: dict[str, str]
    parameter_values: dict[str, Any]
    pipeline_root: str
    enable_caching: bool | None
    encryption_spec_key_name: str | None
    service_account: str | None
    network: str | None
    experiment: str | None

    @property
    def job_name(self) -> str:
        return f"{self.target.parent}/pipelineJobs/{self.job_id}"


def build_request(
    params: RLHFParams, env: str, template: TemplateRef, commit: str, job_id: str | None = None
) -> SubmitRequest:
    """Assembles the create request; no network.

    Args:
        params: checked parameters.
        env: the environment name (a label and part of the job id).
        template: the template to run.
        commit: the git commit label value.
        job_id: reuse an id (for a manual retry); default a new unique one.

    Raises:
        ConfigError: a dataset is not in Cloud Storage, the parameters do not fit the
            template's signature, or ``job_id`` is not one Vertex accepts for a new job.
    """
    local = local_dataset_problems(params)
    if local:
        raise ConfigError(local)
    if job_id is not None:
        problem = names.new_job_id_problem(job_id)
        if problem:
            raise ConfigError([f"--job-id: {problem}"])
    values = signature.pipeline_parameter_values(params)
    if template.path is not None:
        inputs = signature.template_inputs(template.path)
        signature.check_against_signature(values, inputs, template.path.name)
    v = params.vertex_ai
    return SubmitRequest(
        target=VertexTarget.from_params(params),
        template=template,
        job_id=new_job_id(template.name, env) if job_id is None else job_id,
        display_name=v.pipeline_display_name,
        labels=run_labels(v.labels, template, env, commit),
        parameter_values=values,
        pipeline_root=v.pipeline_root,
        enable_caching=v.enable_caching,
        encryption_spec_key_name=params.training.encryption_spec_key_name,
        service_account=v.service_account,
        network=v.network,
        experiment=v.experiment,
    )


def describe(request: SubmitRequest) -> dict[str, Any]:
    """The request as the API receives it (without the pipeline spec), for a dry run."""
    t = request.template
    job: dict[str, Any] = {
        "displayName": request.display_name,
        "labels": request.labels,
        "runtimeConfig": {
            "gcsOutputDirectory": request.pipeline_root,
            "parameterValues": request.parameter_values,
        },
    }
    if request.service_account:
        job["serviceAccount"] = request.service_account
    if request.network:
        job["network"] = request.network
    if request.encryption_spec_key_name:
        job["encryptionSpec"] = {"kmsKeyName": request.encryption_spec_key_name}
    if t.uri:
        job["templateUri"] = t.uri
    return {
        "create": f"POST {request.target.parent}/pipelineJobs?pipelineJobId={request.job_id}",
        "template": {
            "name": t.name,
            "version": t.version,
            "digest": t.digest or "(resolved from the registry at submit time)",
            "source": t.uri or (str(t.path) if t.path else "registry"),
        },
        "enable_caching": request.enable_caching,
        "experiment": request.experiment,
        "pipelineJob": job,
    }


def pipeline_job(request: SubmitRequest) -> Any:
    """Builds the ``aiplatform.PipelineJob`` for a request (the SDK checks input names)."""
    from google.cloud import aiplatform

    if request.template.path is None:
        raise PipelineError("the template has not been resolved yet")
    job = aiplatform.PipelineJob(
        display_name=request.display_name,
        template_path=str(request.template.path),
        job_id=request.job_id,
        pipeline_root=request.pipeline_root,
        parameter_values=request.parameter_values,
        enable_caching=request.enable_caching,
        encryption_spec_key_name=request.encryption_spec_key_name,
        labels=request.labels,
        project=request.target.project,
        location=request.target.location,
    )
    if request.template.uri:
        # What the SDK records itself for a registry template_path; we download by
        # digest ourselves so that the run is pinned to exact bytes.
        job._gca_resource.template_uri = request.template.uri
    return job


def submit(
    request: SubmitRequest,
    retry: Retry | None = None,
    read_retry: Retry | None = None,
    create_timeout: float = 60.0,
) -> str:
    """Creates the job, retrying transient failures without ever creating two.

    Every attempt first looks the job up by its id (reads retried with ``read_retry``)
    and adopts it if it is this submit; only then is it created. The first lookup also
    proves the API answers: with the network down the submit ends there, in a coded
    error, having sent no create. When the attempts run out after a create was sent,
    the error names the job id and says that the job may exist.

    Args:
        request: from ``build_request``, with a resolved template.
        retry: backoff and total time for create attempts (default ``vertex.create_retry()``).
        read_retry: backoff and total time for each lookup (default ``vertex.read_retry()``).
        create_timeout: seconds one create request may take.

    Returns:
        The job's resource name.

    Raises:
        AuthError, ConfigError, NetworkError, PipelineError: as the API answered;
            PipelineError with the job id when it cannot be told whether the job was
            created.
    """
    from google.api_core import exceptions

    retry = retry or vertex.create_retry()
    read_retry = read_retry or vertex.read_retry()
    init_sdk(request.target)
    job = pipeline_job(request)
    attempts = 0
    sent = False

    def attempt() -> str:
        nonlocal attempts, sent
        attempts += 1
        try:
            existing = _find(request, read_retry)
        except RLHFError:
            raise
        except Exception as error:
            if sent:
                raise
            # Its reads were retried already; no create was sent: nothing to be unsure of.
            found = calls.coded(error, f"look up {request.job_name} before creating it")
            found.message += "; nothing was created"
            raise found from None
        if existing is not None:
            return _adopt(request, existing)
        sent = True
        try:
            job.submit(
                service_account=request.service_account,
                network=request.network,
                experiment=request.experiment,
                create_request_timeout=calls.remaining(create_timeout),
            )
        except exceptions.Conflict:
            return _adopt(request, _find(request, read_retry))
        if str(job.resource_name) != request.job_name:
            raise PipelineError(
                f"create {request.job_name}: the answer names another job"
                f" ({str(job.resource_name)[:200]!r}); refused, not followed",
                hint=calls.MALFORMED_HINT,
            )
        return str(job.resource_name)

    def on_error(error: Exception) -> None:
        log.warning(
            "create attempt %d failed (%s); checking for the job before retrying",
            attempts,
            type(error).__name__,
        )

    try:
        name: str = retry(attempt, on_error=on_error)()
    except RLHFError:
        raise
    except Exception as error:
        if not sent:
            found = calls.coded(error, f"look up {request.job_name} before creating it")
            found.message += "; nothing was created"
            raise found from None
        if not calls.is_transient(error):
            raise calls.coded(error, f"create {request.job_name}") from None
        raise PipelineError(
            f"create {request.job_name} did not complete after {attempts} attempt(s)"
            f" ({_last_error(error)}); the job may exist",
            hint=f"see whether it runs: `make monitor JOB={request.job_id}`; to try again"
            " without risking a second run, reuse the id:"
            f" `make submit ... JOB_ID={request.job_id}`",
        ) from None
    return name


def _last_error(error: Exception) -> str:
    cause = getattr(error, "cause", None) or error
    return type(cause).__name__


def _find(request: SubmitRequest, read_retry: Retry) -> Any | None:
    """Gets the job by id (transient errors retried); None if the service says it is absent.

    Raises:
        PipelineError: the answer is about another job, or malformed.
        google.api_core.exceptions.RetryError: the job could not be read in time.
    """
    from google.api_core import exceptions

    try:
        found = pipeline_service(request.target).get_pipeline_job(
            name=request.job_name, retry=read_retry, timeout=calls.remaining(30.0)
        )
    except exceptions.NotFound:
        return None
    calls.job_answer(found, request.job_name, f"look up {request.job_name}")
    return found


def _adopt(request: SubmitRequest, existing: Any | None) -> str:
    """Accepts an existing job with our id as ours if it is the same request.

    Only what we set is compared: the service adds labels of its own (such as
    ``vertex-ai-pipelines-run-billing-id``) and may echo parameters we did not send.
    """
    if existing is None:
        raise PipelineError(
            f"{request.job_name} was reported to exist but is not found yet; the job may exist",
            hint=f"see whether it runs: `make monitor JOB={request.job_id}`",
        )
    labels = dict(existing.labels)
    stored = _comparable(dict(existing.runtime_config.parameter_values))
    sent = _comparable(request.parameter_values)
    if any(labels.get(k) != v for k, v in request.labels.items()) or any(
        stored.get(k) != v for k, v in sent.items()
    ):
        raise PipelineError(
            f"job id {request.job_id} already exists with other labels or parameters:"
            " it is not this submit",
            hint="submit again without JOB_ID to get a fresh id",
        )
    return str(existing.name)


def _comparable(values: dict[str, Any]) -> dict[str, Any]:
    """Parameter values as the API echoes them (every number a float)."""
    return {
        key: float(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool)
        else value
        for key, value in values.items()
    }
