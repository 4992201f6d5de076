"""Names a user hands us for Google Cloud resources, checked before any use.

A project, region or job id becomes part of an API host or URL path, a version part of
a registry URL. Each is matched against a closed grammar (never cleaned up), so that
nothing built from it can point anywhere else:

- project: an id (6-30 of ``a-z0-9-``, starting with a letter) or a project number;
- location: a region in ``catalog.REGIONS`` (where GCPC's RLHF pipeline runs; a run of
  this pipeline cannot live anywhere else, and the list needs no network);
- job id: Vertex's form, ``[a-z][-a-z0-9]{0,127}``, or a number the service assigned;
- version tag: ``[A-Za-z0-9][A-Za-z0-9._-]{0,127}`` without ``..`` (so never a path
  segment, never digest-like); a digest is only ever ``sha256:`` and 64 hex digits.
"""

from __future__ import annotations

import re

from vertex_rlhf.config import catalog
from vertex_rlhf.errors import ConfigError

# What Vertex AI takes as the project of a resource name: a project id (6-30 of a-z,
# 0-9 and -, starting with a letter, not ending with -), a domain-scoped id
# (example.com:my-project) or a project number.
PROJECT = re.compile(
    r"^(?:(?:[a-z0-9][-a-z0-9.]{0,61}[a-z0-9]:)?[a-z][-a-z0-9]{4,28}[a-z0-9]|[1-9][0-9]{0,19})$"
)
PROJECT_RULE = (
    "a project id (6-30 of a-z, 0-9 and -, starting with a letter, not ending with -),"
    " a domain-scoped id (example.com:my-project) or a project number"
)
JOB_ID = re.compile(r"^(?:[a-z][-a-z0-9]{0,127}|[1-9][0-9]{0,19})$")
NEW_JOB_ID = re.compile(r"^[a-z][-a-z0-9]{0,127}$")  # an id we choose; the SDK's form
TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
ENDPOINT = re.compile(r"^(?:https?://)?[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?(?::[0-9]{1,5})?$")
JOB_NAME_FORM = "projects/PROJECT/locations/REGION/pipelineJobs/JOB_ID"
TAG_FORM = "1-128 of A-Z a-z 0-9 . _ -, starting with a letter or digit, no '..'"


def project_problem(project: str) -> str | None:
    """Why ``project`` is not a project id or number, or None if it is one."""
    if PROJECT.fullmatch(project):
        return None
    return f"project {project!r} is not {PROJECT_RULE}"


def location_problem(location: str) -> str | None:
    """Why ``location`` is not a region the pipeline runs in, or None."""
    if location in catalog.REGIONS:
        return None
    regions = ", ".join(catalog.REGIONS)
    return f"location {location!r} is not a region the pipeline runs in ({regions})"


def job_id_problem(job_id: str) -> str | None:
    """Why ``job_id`` is not a Vertex pipeline job id, or None."""
    if JOB_ID.fullmatch(job_id):
        return None
    return (
        f"job id {job_id!r} is not a Vertex AI pipeline job id (1-128 of a-z, 0-9 and -,"
        " starting with a letter)"
    )


def new_job_id_problem(job_id: str) -> str | None:
    """Why ``job_id`` cannot name a new job (what the SDK and Vertex accept), or None."""
    if NEW_JOB_ID.fullmatch(job_id):
        return None
    return (
        f"job id {job_id!r} cannot name a new Vertex AI pipeline job (1-128 of a-z, 0-9"
        " and -, starting with a letter)"
    )


def endpoint_problem(endpoint: str) -> str | None:
    """Why ``endpoint`` is not ``[http[s]://]host[:port]``, or None."""
    if ENDPOINT.fullmatch(endpoint):
        return None
    return f"API endpoint {endpoint!r} is not [https://]host[:port]"


def check_target(project: str, location: str, endpoint: str | None = None) -> None:
    """Raises ConfigError unless every part of a Vertex AI target is well formed."""
    problems = [project_problem(project), location_problem(location)]
    if endpoint is not None:
        problems.append(endpoint_problem(endpoint))
    found = [p for p in problems if p]
    if found:
        raise ConfigError(found)


def parse_job_name(name: str) -> tuple[str, str, str]:
    """Splits ``projects/P/locations/L/pipelineJobs/ID`` into checked parts.

    Raises:
        ConfigError: not that form, or a part is not well formed (each one is named).
    """
    parts = name.split("/")
    if len(parts) != 6 or parts[0::2] != ["projects", "locations", "pipelineJobs"]:
        raise ConfigError(
            [
                f"JOB={name!r} is neither a job id (lower-case letters, digits and -, starting"
                f" with a letter) nor {JOB_NAME_FORM}"
            ]
        )
    project, location, job_id = parts[1::2]
    found = [
        p
        for p in (project_problem(project), location_problem(location), job_id_problem(job_id))
        if p
    ]
    if len(found) == 1:
        raise ConfigError([f"job {name!r}: {found[0]}"])
    if found:
        raise ConfigError(found, source=f"job {name!r}")
    return project, location, job_id


def tag_problem(tag: str, digest_ok: bool = False) -> str | None:
    """Why ``tag`` is not a version tag (or, with ``digest_ok``, a sha256 digest), or None."""
    # fullmatch: a pattern's ``$`` also matches before a final newline ("1.2.0\n").
    if digest_ok and DIGEST.fullmatch(tag):
        return None
    if TAG.fullmatch(tag) and ".." not in tag:
        return None
    also = " or sha256: and 64 hex digits" if digest_ok else ""
    return f"version {tag!r} is not a tag ({TAG_FORM}){also}"


def check_tag(tag: str, digest_ok: bool = False) -> None:
    """Raises ConfigError unless ``tag`` is a version tag (or an allowed digest)."""
    problem = tag_problem(tag, digest_ok)
    if problem:
        raise ConfigError([problem])


# A schedule's id is assigned by the service (a number); our own ids are never sent.
SCHEDULE_ID = re.compile(r"^(?:[1-9][0-9]{0,19}|[a-z][-a-z0-9]{0,127})$")
SCHEDULE_NAME_FORM = "projects/PROJECT/locations/REGION/schedules/ID"
# What a user calls a schedule (NAME=): one schedule per environment and name.
SCHEDULE_NAME = re.compile(r"^[a-z](?:[a-z0-9-]{0,28}[a-z0-9])?$")
SCHEDULE_NAME_RULE = "1-30 of a-z, 0-9 and -, starting with a letter, not ending with -"


def schedule_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a schedule of an environment (``NAME=``), or None."""
    if SCHEDULE_NAME.fullmatch(name):
        return None
    return f"schedule name {name!r} is not {SCHEDULE_NAME_RULE}"


def parse_schedule_name(name: str, parent: str) -> str:
    """The id of ``parent/schedules/ID`` (a schedule the service named), checked.

    Raises:
        ConfigError: not a schedule of ``parent``, or its id is not well formed.
    """
    prefix = f"{parent}/schedules/"
    schedule_id = name[len(prefix) :] if name.startswith(prefix) else ""
    if not SCHEDULE_ID.fullmatch(schedule_id):
        raise ConfigError([f"schedule {name!r} is not {prefix}ID (ID: a number)"])
    return schedule_id
