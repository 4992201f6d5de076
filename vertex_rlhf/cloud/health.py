"""The doctor: can this environment run, before anything is paid for?

One result per check, pass/fail/warn/skip, with the fix for each failure. Real Google
clients where one is installed (google-auth, google-cloud-resource-manager,
google-cloud-storage); for Service Usage, IAM, Artifact Registry and Cloud Quotas,
google-auth's ``AuthorizedSession`` against fixed endpoints. Every endpoint can be
pointed at a local stand-in (``RLHF_*_ENDPOINT``, ``STORAGE_EMULATOR_HOST``); no host is
ever built from a parameter value.
"""

from __future__ import annotations

import functools
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any
from urllib.parse import quote

from vertex_rlhf.cloud import calls
from vertex_rlhf.config import catalog, endpoints
from vertex_rlhf.config.params import RLHFParams, check_params
from vertex_rlhf.errors import (
    AuthError,
    ConfigError,
    DataError,
    NetworkError,
    PipelineError,
    RLHFError,
    TrainingError,
)
from vertex_rlhf.template import plan

PASS, FAIL, WARN, SKIP = "pass", "fail", "warn", "skip"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
_AR_REGISTRY = re.compile(
    r"^https://([a-z0-9-]+)-kfp\.pkg\.dev/([a-z][-a-z0-9]{4,28}[a-z0-9])/([a-z][-a-z0-9]*)$"
)
# Multi-regions and predefined dual-regions, and the regions they hold.
_MULTI_REGIONS = {"US": "us-", "EU": "europe-", "ASIA": "asia-"}
_DUAL_REGIONS = {
    "NAM4": ("us-central1", "us-east1"),
    "EUR4": ("europe-north1", "europe-west4"),
    "ASIA1": ("asia-northeast1", "asia-northeast2"),
}


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check.

    Attributes:
        name: what was checked.
        status: ``pass``, ``fail``, ``warn`` (cannot tell) or ``skip`` (does not apply).
        detail: what was found.
        fix: how to fix a failure.
        code: the error code a failure stands for (its exit status).
    """

    name: str
    status: str
    detail: str
    fix: str = ""
    code: str = ""


@dataclass(frozen=True)
class Endpoints:
    """Where the Google APIs the doctor calls are; tests point them at stand-ins."""

    resource_manager: str = "https://cloudresourcemanager.googleapis.com"
    service_usage: str = "https://serviceusage.googleapis.com"
    iam: str = "https://iam.googleapis.com"
    artifact_registry: str = "https://artifactregistry.googleapis.com"
    cloud_quotas: str = "https://cloudquotas.googleapis.com"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Endpoints:
        """Reads ``RLHF_<API>_ENDPOINT`` (e.g. ``RLHF_IAM_ENDPOINT``) overrides.

        ``STORAGE_EMULATOR_HOST`` is checked by the same rule (``endpoints``): the
        doctor's storage client sends it the credentials' token.

        Raises:
            ConfigError: an override is neither ``https://*.googleapis.com`` nor a
                loopback ``http://`` address.
        """
        values = {}
        problems = []
        for f in fields(cls):
            variable = f"RLHF_{f.name.upper()}_ENDPOINT"
            value = environ.get(variable)
            if value is None:
                continue
            problem = endpoints.endpoint_problem(variable, value)
            if problem:
                problems.append(problem)
            values[f.name] = value
        emulator = environ.get(endpoints.STORAGE_EMULATOR, "")
        if emulator:
            problem = endpoints.endpoint_problem(endpoints.STORAGE_EMULATOR, emulator)
            problems += [problem] if problem else []
        if problems:
            raise ConfigError(problems)
        return cls(**values)


_EXIT = {
    c.code: c.exit_status
    for c in (AuthError, ConfigError, PipelineError, TrainingError, DataError, NetworkError)
}
# Answers with an HTTP status that the checks read themselves (after retries).
_STATUS_ERRORS: tuple[type[BaseException], ...] = ()


def _status_errors() -> tuple[type[BaseException], ...]:
    global _STATUS_ERRORS
    if not _STATUS_ERRORS:
        import requests
        from google.api_core import exceptions

        _STATUS_ERRORS = (exceptions.GoogleAPICallError, requests.HTTPError)
    return _STATUS_ERRORS


def healthy(results: list[CheckResult]) -> bool:
    """True when no check failed."""
    return all(r.status != FAIL for r in results)


def exit_status(results: list[CheckResult]) -> int:
    """0 when healthy, else the exit status of the first failure's error code."""
    for r in results:
        if r.status == FAIL:
            return _EXIT.get(r.code, RLHFError.exit_status)
    return 0


def _api_error(error: Exception) -> tuple[int | None, str]:
    """HTTP status and message of a google-api-core or requests error."""
    status = getattr(error, "code", None)
    response = getattr(error, "response", None)
    if response is not None and getattr(response, "status_code", None):
        status = response.status_code
        try:
            message = response.json().get("error", {}).get("message", response.text)
        except ValueError:
            message = response.text
        return status, str(message)
    return (status if isinstance(status, int) else None), str(getattr(error, "message", error))


class _Checker:
    """Runs the checks in order; later checks use what earlier ones found."""

    def __init__(self, params: RLHFParams, compiled_dir: Path, endpoints: Endpoints) -> None:
        self.params = params
        self.v = params.vertex_ai
        self.compiled_dir = compiled_dir
        self.endpoints = endpoints
        self.credentials: Any = None
        self.principal = ""
        self.project_number: str | None = None
        self.results: list[CheckResult] = []

    def add(self, name: str, status: str, detail: str, fix: str = "", code: str = "") -> None:
        self.results.append(CheckResult(name, status, detail, fix, code))

    @functools.cached_property
    def session(self) -> Any:
        """One authorized HTTP session for the REST calls, with the found credentials."""
        from google.auth.transport.requests import AuthorizedSession

        return AuthorizedSession(self.credentials)

    def api(self, what: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Calls a Google API through the door; answers with an HTTP status come back raw."""
        return calls.call(what, function, *args, passthrough=_status_errors(), **kwargs)

    def get_json(self, base: str, path: str) -> dict[str, Any]:
        def get() -> dict[str, Any]:
            response = self.session.get(f"{base}{path}", timeout=calls.remaining(30.0))
            response.raise_for_status()
            body = response.json()
            if not isinstance(body, dict):
                raise TypeError(f"the answer is {type(body).__name__}, not an object")
            return body

        found: dict[str, Any] = self.api(f"GET {base}{path}", get)
        return found

    # -- credentials and project --------------------------------------------------

    def check_credentials(self) -> bool:
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError
        from google.auth.transport.requests import Request

        name = "credentials"
        fix = "run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS"
        try:
            credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
        except DefaultCredentialsError as error:
            self.add(name, FAIL, f"none found ({str(error).splitlines()[0]})", fix, AuthError.code)
            return False
        transport = Request()

        def request(*args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("timeout", calls.remaining(30.0))
            return transport(*args, **kwargs)

        try:
            calls.call("get an access token", credentials.refresh, request, budget=60.0)
        except NetworkError as error:
            self.add(
                name,
                FAIL,
                f"found, but the token endpoint could not be reached: {error.message}",
                error.hint,
                NetworkError.code,
            )
            return False
        except RLHFError as error:
            self.add(name, FAIL, f"found but refused: {error.message}", fix, AuthError.code)
            return False
        self.credentials = credentials
        email = getattr(credentials, "service_account_email", None)
        account = getattr(credentials, "account", None)
        self.principal = (
            f"serviceAccount:{email}" if email else f"user:{account}" if account else ""
        )
        self.add(name, PASS, f"found, for {self.principal or 'a user (account not recorded)'}")
        return True

    def check_project(self) -> bool:
        from google.api_core import exceptions
        from google.cloud import resourcemanager_v3

        name = "project"
        project = self.v.project_id
        client = resourcemanager_v3.ProjectsClient(
            credentials=self.credentials,
            client_options={"api_endpoint": self.endpoints.resource_manager},
            transport="rest",
        )
        try:
            found = self.api(
                f"get projects/{project}",
                client.get_project,
                name=f"projects/{project}",
                timeout=calls.remaining(30.0),
                retry=None,
            )
        except exceptions.GoogleAPICallError as error:
            status, message = _api_error(error)
            self.add(
                name,
                FAIL,
                f"{project} is not reachable (HTTP {status}: {message})",
                f"check vertex_ai.project_id / GOOGLE_CLOUD_PROJECT, and grant"
                f" {self.principal or 'the caller'} roles/viewer on {project}",
                ConfigError.code,
            )
            return False
        state = resourcemanager_v3.Project.State(found.state).name
        if state != "ACTIVE":
            self.add(
                name,
                FAIL,
                f"{project} is {state}",
                "use an active project",
                ConfigError.code,
            )
            return False
        self.project_number = found.name.rsplit("/", 1)[-1]
        self.add(name, PASS, f"{project} (number {self.project_number}) is active")
        return True

    def check_apis(self) -> None:
        apis = {"aiplatform.googleapis.com": "Vertex AI", "storage.googleapis.com": "Cloud Storage"}
        if self.v.template_registry and _AR_REGISTRY.fullmatch(self.v.template_registry):
            apis["artifactregistry.googleapis.com"] = "Artifact Registry"
        for service, title in apis.items():
            name = f"{title} API"
            fix = f"gcloud services enable {service} --project={self.v.project_id}"
            try:
                body = self.get_json(
                    self.endpoints.service_usage,
                    f"/v1/projects/{self.v.project_id}/services/{service}",
                )
            except RLHFError:
                raise
            except Exception as error:
                status, message = _api_error(error)
                self.add(
                    name,
                    WARN,
                    f"cannot tell whether {service} is enabled (HTTP {status}: {message})",
                    "grant serviceusage.services.get, or look with `gcloud services list"
                    f" --enabled --project={self.v.project_id}`",
                )
                continue
            if body.get("state") == "ENABLED":
                self.add(name, PASS, f"{service} is enabled")
            else:
                self.add(
                    name,
                    FAIL,
                    f"{service} is {body.get('state', 'not enabled')}",
                    fix,
                    ConfigError.code,
                )

    # -- bucket ---------------------------------------------------------------------

    def check_bucket(self) -> None:
        from google.api_core import exceptions
        from google.cloud import storage  # type: ignore[attr-defined]

        root = self.v.pipeline_root
        bucket_name, _, prefix = root[len("gs://") :].partition("/")
        client = storage.Client(project=self.v.project_id, credentials=self.credentials)
        create = (
            f"gcloud storage buckets create gs://{bucket_name} --location={self.v.region}"
            f" --project={self.v.project_id}"
        )
        try:
            bucket = self.api(
                f"look up gs://{bucket_name}",
                client.lookup_bucket,
                bucket_name,
                timeout=calls.remaining(30.0),
                retry=None,
            )
        except exceptions.GoogleAPICallError as error:
            status, message = _api_error(error)
            self.add(
                "pipeline root bucket",
                FAIL,
                f"gs://{bucket_name} cannot be read (HTTP {status}: {message})",
                f"grant {self.principal or 'the caller'} roles/storage.admin on gs://{bucket_name}",
                AuthError.code,
            )
            return
        if bucket is None:
            self.add(
                "pipeline root bucket",
                FAIL,
                f"gs://{bucket_name} does not exist (vertex_ai.pipeline_root={root})",
                create,
                ConfigError.code,
            )
            return
        self.add("pipeline root bucket", PASS, f"gs://{bucket_name} exists")
        self.check_bucket_location(bucket, create)
        self.check_writable(bucket, prefix)

    def check_bucket_location(self, bucket: Any, create: str) -> None:
        name = "bucket location"
        location = str(bucket.location or "").upper()
        region = self.v.region
        data_locations = [str(x).lower() for x in (bucket.data_locations or [])]
        if location.lower() == region:
            verdict = PASS, f"region {location}"
        elif re.fullmatch(r"^[A-Z]+-[A-Z]+\d+$", location):
            verdict = FAIL, f"region {location}"
        elif location in _MULTI_REGIONS:
            inside = region.startswith(_MULTI_REGIONS[location])
            verdict = (PASS if inside else FAIL), f"multi-region {location}"
        elif location in _DUAL_REGIONS or data_locations:
            regions = data_locations or list(_DUAL_REGIONS[location])
            verdict = (
                (PASS if region in regions else FAIL),
                f"dual-region {location} ({', '.join(regions)})",
            )
        else:
            self.add(
                name,
                WARN,
                f"cannot tell whether {location} holds {region}",
                f"keep the pipeline root in {region}",
            )
            return
        status, where = verdict
        if status == PASS:
            self.add(name, PASS, f"{where} holds the pipeline region {region}")
        else:
            self.add(
                name,
                FAIL,
                f"{where} does not hold the pipeline region {region}: Vertex AI Pipelines"
                " needs the pipeline root in the run's region",
                f"{create}, then set vertex_ai.pipeline_root to it",
                ConfigError.code,
            )

    def check_writable(self, bucket: Any, prefix: str) -> None:
        from google.api_core import exceptions

        name = "bucket writable"
        probe = "/".join(
            p for p in (prefix.strip("/"), f".rlhf-doctor-{secrets.token_hex(4)}") if p
        )
        blob = bucket.blob(probe)
        try:
            self.api(
                f"write gs://{bucket.name}/{probe}",
                blob.upload_from_string,
                b"rlhf doctor write probe\n",
                timeout=calls.remaining(30.0),
                retry=None,
            )
        except exceptions.GoogleAPICallError as error:
            status, message = _api_error(error)
            self.add(
                name,
                FAIL,
                f"cannot write to gs://{bucket.name}/{prefix} (HTTP {status}: {message})",
                f"grant {self.principal or 'the caller'} (and the run's service account)"
                f" roles/storage.objectAdmin on gs://{bucket.name}",
                AuthError.code,
            )
            return
        try:
            self.api(
                f"delete gs://{bucket.name}/{probe}",
                blob.delete,
                timeout=calls.remaining(30.0),
                retry=None,
            )
        except exceptions.GoogleAPICallError:
            self.add(
                name,
                WARN,
                f"wrote gs://{bucket.name}/{probe} but could not delete it",
                "delete the probe object by hand",
            )
            return
        self.add(name, PASS, f"wrote and deleted a probe object under gs://{bucket.name}/{prefix}")

    # -- service account, registry ------------------------------------------------

    def check_service_account(self) -> None:
        name = "service account"
        email = self.v.service_account
        if not email:
            if not self.project_number:
                self.add(name, SKIP, "not set, and the project number is unknown")
                return
            email = f"{self.project_number}-compute@developer.gserviceaccount.com"
        path = f"/v1/projects/-/serviceAccounts/{quote(email, safe='@')}"
        try:
            account = self.get_json(self.endpoints.iam, path)
        except RLHFError:
            raise
        except Exception as error:
            status, message = _api_error(error)
            if status == 404:
                self.add(
                    name,
                    FAIL,
                    f"{email} does not exist",
                    "create it (gcloud iam service-accounts create) or fix"
                    " vertex_ai.service_account",
                    ConfigError.code,
                )
            else:
                self.add(
                    name,
                    WARN,
                    f"cannot read {email} (HTTP {status}: {message})",
                    "grant iam.serviceAccounts.get to check it",
                )
            return
        if account.get("disabled"):
            self.add(
                name,
                FAIL,
                f"{email} is disabled",
                f"gcloud iam service-accounts enable {email}",
                ConfigError.code,
            )
            return
        self.add(name, PASS, f"{email} exists" + ("" if self.v.service_account else " (default)"))
        self.check_act_as(email, path)

    def check_act_as(self, email: str, path: str) -> None:
        name = "act as service account"
        wanted = "iam.serviceAccounts.actAs"
        try:
            url = f"{self.endpoints.iam}{path}:testIamPermissions"

            def post() -> Any:
                response = self.session.post(
                    url, json={"permissions": [wanted]}, timeout=calls.remaining(30.0)
                )
                response.raise_for_status()
                return response.json().get("permissions", [])

            granted = self.api(f"POST {url}", post)
            if not isinstance(granted, list):
                raise calls.malformed(f"POST {url}", "permissions is not a list")
        except RLHFError:
            raise
        except Exception as error:
            status, message = _api_error(error)
            self.add(name, WARN, f"cannot tell (HTTP {status}: {message})", "")
            return
        if wanted in granted:
            self.add(name, PASS, f"{self.principal or 'the caller'} may act as {email}")
        else:
            member = self.principal or "user:YOU@example.com"
            self.add(
                name,
                FAIL,
                f"{self.principal or 'the caller'} lacks {wanted} on {email}",
                f"gcloud iam service-accounts add-iam-policy-binding {email}"
                f" --member={member} --role=roles/iam.serviceAccountUser",
                AuthError.code,
            )

    def check_registry(self) -> None:
        name = "registry repository"
        host = self.v.template_registry
        if not host:
            self.add(
                name, SKIP, "vertex_ai.template_registry is not set (templates come from compiled/)"
            )
            return
        match = _AR_REGISTRY.fullmatch(host)
        if not match:
            self.add(name, SKIP, f"{host} is not an Artifact Registry repository")
            return
        region, project, repo = match.groups()
        path = f"/v1/projects/{project}/locations/{region}/repositories/{repo}"
        create = (
            f"gcloud artifacts repositories create {repo} --repository-format=KFP"
            f" --location={region} --project={project}"
        )
        try:
            body = self.get_json(self.endpoints.artifact_registry, path)
        except RLHFError:
            raise
        except Exception as error:
            status, message = _api_error(error)
            if status == 404:
                self.add(name, FAIL, f"{host} does not exist", create, ConfigError.code)
            else:
                self.add(
                    name,
                    FAIL,
                    f"{host} cannot be read (HTTP {status}: {message})",
                    f"grant {self.principal or 'the caller'} roles/artifactregistry.reader on it",
                    AuthError.code,
                )
            return
        if body.get("format") != "KFP":
            self.add(
                name,
                FAIL,
                f"{host} is a {body.get('format')} repository, not KFP",
                create,
                ConfigError.code,
            )
            return
        self.add(name, PASS, f"{host} exists (KFP)")

    # -- catalog, quota, SDK versions ------------------------------------------

    def check_catalog(self) -> plan.MachineSpec | None:
        name = "model/accelerator/region"
        keys = (
            "training.large_model_reference",
            "training.accelerator_type",
            "training.encryption_spec_key_name",
            "vertex_ai.region",
        )
        problems = [f"{k}: {p}" for k, p in check_params(self.params) if k in keys]
        if problems:
            self.add(
                name,
                FAIL,
                "; ".join(problems),
                "use a combination from vertex_rlhf/config/catalog.py",
                ConfigError.code,
            )
            return None
        t = self.params.training
        try:
            path, _ = plan.template_facts(self.compiled_dir)
            use_test_spec = plan.machine_wiring(plan.load_spec(path))["use_test_spec"]
        except PipelineError:
            use_test_spec = False  # no usable template: the version check says so
        machine = plan.gcpc_machine_spec(t.accelerator_type, use_test_spec)
        self.add(
            name,
            PASS,
            f"{catalog.canonical_model_name(t.large_model_reference)} on {t.accelerator_type}"
            f" ({machine}), pipeline in {self.v.region}",
        )
        return machine

    def check_quota(self, machine: plan.MachineSpec) -> None:
        name = "accelerator quota"
        token = machine.accelerator_type.lower().removeprefix("nvidia_")
        path = (
            f"/v1/projects/{self.v.project_id}/locations/global/services/"
            "aiplatform.googleapis.com/quotaInfos"
        )
        console = "see IAM & Admin > Quotas in the console (service Vertex AI API)"
        try:
            infos = []
            page = ""
            seen: set[str] = set()
            for _ in range(50):
                body = self.get_json(
                    self.endpoints.cloud_quotas,
                    path + (f"?pageToken={quote(page)}" if page else ""),
                )
                infos += body.get("quotaInfos", [])
                following = body.get("nextPageToken", "")
                if following and following in seen:
                    raise calls.malformed("list quotaInfos", "the page token repeats")
                if not following:
                    break
                page = following
                seen.add(page)
            else:
                raise calls.malformed("list quotaInfos", "more than 50 pages")
        except RLHFError:
            raise
        except Exception as error:
            status, message = _api_error(error)
            self.add(
                name, WARN, f"cannot tell: Cloud Quotas answered HTTP {status} ({message})", console
            )
            return
        metrics = [str(q.get("metric", "")) for q in infos]
        matching = [
            q
            for q, m in zip(infos, metrics, strict=True)
            if "training" in m and token in m and "preemptible" not in m
        ]
        # GCPC's tuning images live in vertex-ai-restricted: restricted-image quotas apply.
        restricted = [q for q in matching if "restricted_image" in q.get("metric", "")]
        limits = []
        for info in restricted or matching:
            value = _limit_in(info, machine.location)
            if value is not None:
                limits.append((info.get("quotaId", info.get("metric", "")), value))
        if not limits:
            self.add(
                name,
                WARN,
                f"cannot tell: no {token} training quota for {machine.location} in the answer",
                console,
            )
            return
        need = machine.accelerator_count
        shown = ", ".join(f"{q}={v}" for q, v in limits)
        best = max(limits, key=lambda item: item[1])
        short = [best] if best[1] < need else []
        if short:
            self.add(
                name,
                FAIL,
                f"needs {need}x {machine.accelerator_type} in {machine.location}; limit {shown}",
                f"request an increase of {short[0][0]} in {machine.location} to at least {need}",
                TrainingError.code,
            )
        else:
            self.add(
                name,
                PASS,
                f"limit {shown} in {machine.location} covers {need}"
                " (current use is not shown by the API)",
            )

    def check_versions(self) -> None:
        name = "installed kfp/GCPC"
        try:
            _, template = plan.template_facts(self.compiled_dir)
        except PipelineError as error:
            self.add(name, FAIL, error.message, error.hint, PipelineError.code)
            return
        wrong = []
        for package, key in (
            ("kfp", "kfp"),
            ("google-cloud-pipeline-components", "google_cloud_pipeline_components"),
        ):
            try:
                installed = version(package)
            except PackageNotFoundError:
                installed = "not installed"
            if installed != template[key]:
                wrong.append(
                    f"{package} {installed} installed, template compiled with {template[key]}"
                )
        if wrong:
            self.add(
                name,
                FAIL,
                "; ".join(wrong),
                "run `make setup` (pinned versions), or `make compile` and commit compiled/",
                PipelineError.code,
            )
        else:
            self.add(
                name,
                PASS,
                f"kfp {template['kfp']}, GCPC"
                f" {template['google_cloud_pipeline_components']} as {template['name']}"
                f" {template['version']} records",
            )


def _limit_in(info: dict[str, Any], region: str) -> int | None:
    """The quota value for a region (or the default), from a Cloud Quotas QuotaInfo."""
    default = None
    for dimension in info.get("dimensionsInfos", []):
        value = dimension.get("details", {}).get("value")
        if value is None:
            continue
        where = dimension.get("dimensions", {}).get("region")
        if where == region:
            return int(value)
        if where is None:
            default = int(value)
    return default


def run_checks(
    params: RLHFParams,
    compiled_dir: str | Path = "compiled",
    endpoints: Endpoints | None = None,
) -> list[CheckResult]:
    """Runs every check for an environment's parameters.

    Args:
        params: loaded parameters (``load_params``).
        compiled_dir: where the compiled template and manifest are.
        endpoints: where the Google APIs are; default from ``Endpoints.from_env()``.

    Returns:
        One result per check, in order; ``healthy(results)`` says whether to go on.
    """
    checker = _Checker(params, Path(compiled_dir), endpoints or Endpoints.from_env())
    # Values that go into API paths are checked first (callers may skip load_params).
    names = (
        "vertex_ai.project_id",
        "vertex_ai.pipeline_root",
        "vertex_ai.service_account",
        "vertex_ai.template_registry",
    )
    problems = [f"{key}: {problem}" for key, problem in check_params(params) if key in names]
    if problems:
        checker.add(
            "parameters", FAIL, "; ".join(problems), "fix them in params/", ConfigError.code
        )
        for name in ("credentials", "project"):
            checker.add(name, SKIP, "not checked: the parameters above are invalid")
    cloud_ok = (
        not problems
        and _guarded(checker, "credentials", checker.check_credentials)
        and _guarded(checker, "project", checker.check_project)
    )
    cloud_checks: list[tuple[str, Callable[[], Any]]] = [
        ("APIs", checker.check_apis),
        ("pipeline root bucket", checker.check_bucket),
        ("service account", checker.check_service_account),
        ("registry repository", checker.check_registry),
    ]
    for name, check in cloud_checks:
        if cloud_ok:
            _guarded(checker, name, check)
        else:
            checker.add(name, SKIP, "not checked: needs working credentials and project")
    machine = _guarded(checker, "model/accelerator/region", checker.check_catalog)
    if machine and cloud_ok:
        _guarded(checker, "accelerator quota", lambda: checker.check_quota(machine))
    elif machine:
        checker.add("accelerator quota", SKIP, "not checked: needs working credentials and project")
    _guarded(checker, "installed kfp/GCPC", checker.check_versions)
    return checker.results


def _guarded(checker: _Checker, name: str, check: Callable[[], Any]) -> Any:
    """Runs a check; an error no check expected (a dropped connection, an odd answer)
    becomes that check's failure instead of a traceback."""
    try:
        return check()
    except RLHFError as error:
        checker.add(name, FAIL, error.message, error.hint, error.code)
    except Exception as error:
        coded = calls.coded(error, f"could not be checked ({name})")
        checker.add(name, FAIL, coded.message, coded.hint, coded.code)
    return None
