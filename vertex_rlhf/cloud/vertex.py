"""Where the Vertex AI API is and who we are there: target, credentials, clients, errors.

Every call goes over REST (``api_transport="rest"``), in production and against the
local stand-ins the tests start, so both take the same code path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The retries live with the one door to Google APIs (which every wing may use); named here too.
from vertex_rlhf.cloud.calls import create_retry as create_retry
from vertex_rlhf.cloud.calls import read_retry as read_retry
from vertex_rlhf.cloud.calls import transient_retry as transient_retry
from vertex_rlhf.config import names
from vertex_rlhf.config.params import RLHFParams
from vertex_rlhf.errors import AuthError, ConfigError, RLHFError

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"


@dataclass(frozen=True)
class VertexTarget:
    """A project and region of Vertex AI, and optionally a non-default endpoint.

    Every part is checked when the target is made (``names.check_target``): the API
    host is built from the location, so a target that exists is safe to connect to.

    Attributes:
        project: the project id or number.
        location: the region (one of ``catalog.REGIONS``).
        api_endpoint: a private (PSC) endpoint; ``http://...`` is a local emulator.

    Raises:
        ConfigError: a part is not well formed.
    """

    project: str
    location: str
    api_endpoint: str | None = None

    def __post_init__(self) -> None:
        names.check_target(self.project, self.location, self.api_endpoint)
        if self.api_endpoint:
            # The caller's token goes there: a Google API host or a loopback stand-in only.
            from vertex_rlhf.config import endpoints

            problem = endpoints.vertex_endpoint_problem(self.api_endpoint)
            if problem:
                raise ConfigError([problem])

    @classmethod
    def from_params(cls, params: RLHFParams) -> VertexTarget:
        v = params.vertex_ai
        return cls(v.project_id, v.region, v.api_endpoint)

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.location}"

    @property
    def is_emulator(self) -> bool:
        from vertex_rlhf.config import endpoints

        return bool(self.api_endpoint and endpoints.is_local_standin(self.api_endpoint))

    def job_name(self, job: str) -> str:
        """Turns a job id or full resource name into the full resource name.

        Raises:
            ConfigError: neither form, or a part of it is not well formed.
        """
        if "/" in job:
            names.parse_job_name(job)
            return job
        if names.job_id_problem(job) is None:
            return f"{self.parent}/pipelineJobs/{job}"
        raise ConfigError(
            [
                f"JOB={job!r} is neither a job id (lower-case letters, digits and -, starting"
                f" with a letter) nor {names.JOB_NAME_FORM}"
            ]
        )

    def console_url(self, job_name: str) -> str:
        """Links to the run in the Google Cloud console."""
        try:
            project, location, job_id = names.parse_job_name(job_name)
        except ConfigError:
            project, location, job_id = self.project, self.location, ""
        return (
            f"https://console.cloud.google.com/vertex-ai/locations/{location}"
            f"/pipelines/runs/{job_id}?project={project}"
        )


def target_of(job_name: str, default: VertexTarget) -> VertexTarget:
    """The target a job lives in: a full resource name's own project and region.

    Raises:
        ConfigError: the name or a part of it is not well formed.
    """
    if "/" not in job_name:
        default.job_name(job_name)
        return default
    project, location, _ = names.parse_job_name(job_name)
    return VertexTarget(project, location, default.api_endpoint)


def credentials(target: VertexTarget) -> Any:
    """Application Default Credentials with a fresh token, or anonymous ones for an emulator.

    The token is fetched here, through the door, so that an unreachable token endpoint
    (NETWORK_006) is told from refused credentials (AUTH_001) before any request.

    Raises:
        AuthError: no credentials could be found, or they were refused.
        ConfigError: ``STORAGE_EMULATOR_HOST`` is neither loopback nor a Google host.
        NetworkError: the token endpoint could not be reached.
    """
    import google.auth
    from google.auth.credentials import AnonymousCredentials
    from google.auth.exceptions import DefaultCredentialsError

    from vertex_rlhf.config import endpoints

    # google-cloud-storage (and the SDK's bucket check) would send the token there.
    endpoints.storage_emulator()
    if target.is_emulator:
        return AnonymousCredentials()
    try:
        found, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    except DefaultCredentialsError as error:
        raise AuthError(f"no Google Cloud credentials found ({error})") from None
    return fresh(found)


def fresh(found: Any) -> Any:
    """Refreshes credentials through the door (retried while the endpoint is unreachable).

    Raises:
        AuthError, NetworkError: as ``calls.coded`` maps the failure.
    """
    from google.auth.transport.requests import Request

    from vertex_rlhf.cloud import calls

    if getattr(found, "valid", False) or not hasattr(found, "refresh"):
        return found
    transport = Request()

    def request(*args: Any, **kwargs: Any) -> Any:
        # google-auth waits 120 s for a token endpoint by default: bound it.
        kwargs.setdefault("timeout", calls.remaining(30.0))
        return transport(*args, **kwargs)

    calls.call("get an access token", found.refresh, request, budget=60.0)
    return found


def init_sdk(target: VertexTarget) -> None:
    """Points ``google.cloud.aiplatform`` at the target, over REST."""
    from google.cloud import aiplatform

    aiplatform.init(
        project=target.project,
        location=target.location,
        credentials=credentials(target),
        api_endpoint=target.api_endpoint,
        api_transport="rest",
    )


def pipeline_service(target: VertexTarget) -> Any:
    """A GAPIC ``PipelineServiceClient`` for the target's region, over REST."""
    from google.cloud.aiplatform_v1 import PipelineServiceClient

    endpoint = target.api_endpoint or f"{target.location}-aiplatform.googleapis.com"
    return PipelineServiceClient(
        credentials=credentials(target),
        client_options={"api_endpoint": endpoint},
        transport="rest",
    )


def schedule_service(target: VertexTarget) -> Any:
    """A GAPIC ``ScheduleServiceClient`` for the target's region, over REST."""
    from google.cloud.aiplatform_v1 import ScheduleServiceClient

    endpoint = target.api_endpoint or f"{target.location}-aiplatform.googleapis.com"
    return ScheduleServiceClient(
        credentials=credentials(target),
        client_options={"api_endpoint": endpoint},
        transport="rest",
    )


def is_transient(error: BaseException) -> bool:
    """Whether an API error is worth retrying (``calls.is_transient``)."""
    from vertex_rlhf.cloud import calls

    return calls.is_transient(error)


def domain_error(error: Exception, what: str) -> RLHFError:
    """Maps a Google API error to a coded error (``calls.coded``).

    Args:
        error: the exception from a client library.
        what: what was being done, for the message.
    """
    from vertex_rlhf.cloud import calls

    return calls.coded(error, what)
