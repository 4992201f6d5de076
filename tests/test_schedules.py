"""Schedules end to end: the ``rlhf`` CLI and the real aiplatform SDK against the Vertex AI
stand-in (``projects.locations.schedules``) and the registry stand-in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from tests.conftest import REPO, TEST_PROJECT
from tests.standins.registry import RegistryStandIn
from tests.standins.vertex import VertexStandIn
from vertex_rlhf import cli
from vertex_rlhf.cloud import registry

SERVICE_ACCOUNT = "rlhf-runner@rlhf-test-project.iam.gserviceaccount.com"
KMS_KEY = "projects/rlhf-test-project/locations/us-central1/keyRings/rlhf/cryptoKeys/runs"
PARENT = f"projects/{TEST_PROJECT}/locations/us-central1"
ROOT = "vertex_ai.pipeline_root=gs://rlhf-schedules-test/root"


@dataclass
class World:
    vertex: VertexStandIn
    registry: RegistryStandIn
    digests: dict[str, str]  # tag -> digest the registry holds

    def overrides(self, *extra: str) -> list[str]:
        return [
            f"vertex_ai.api_endpoint={self.vertex.url}",
            f"vertex_ai.service_account={SERVICE_ACCOUNT}",
            f"vertex_ai.template_registry={self.registry.url}",
            ROOT,
            *extra,
        ]

    def schedule(self, cron: str, *extra: str, version: str = "1.2.0") -> int:
        return cli.main(
            ["schedule", "dev", "--cron", cron, "--version", version, *self.overrides(*extra)]
        )

    def only_schedule(self) -> dict[str, Any]:
        [schedule] = self.vertex.schedules.values()
        return schedule


@pytest.fixture
def world(project_env: str) -> Iterator[World]:
    vertex = VertexStandIn().start()
    standin = RegistryStandIn().start()
    digests = {}
    for version in ("1.1.1", "1.2.0"):
        published, _ = registry.publish(
            standin.url, REPO / "compiled" / f"rlhf-tuning-{version}.yaml", version
        )
        digests[version] = published.digest
    standin.requests.clear()
    yield World(vertex, standin, digests)
    vertex.stop()
    standin.stop()


def _numbers_as_floats(values: dict[str, Any]) -> dict[str, Any]:
    return {
        k: float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
        for k, v in values.items()
    }


def test_a_schedule_runs_the_published_version_pinned_by_digest_with_the_submit_request(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = ("training.kl_coeff=0.3", f"training.encryption_spec_key_name={KMS_KEY}")
    assert cli.main(["submit", "dev", "--dry-run", *world.overrides(*extra)]) == 0
    submitted = yaml.safe_load(capsys.readouterr().out)["pipelineJob"]
    world.vertex.requests.clear()

    assert world.schedule("TZ=Europe/Paris 0 3 * * mon", *extra) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    [create] = world.vertex.calls("POST", "/schedules")
    body = create["body"]
    assert body["displayName"] == "rlhf-tuning:dev:default"
    assert body["cron"] == "TZ=Europe/Paris 0 3 * * MON"
    assert int(body["maxConcurrentRunCount"]) == 1
    request = body["createPipelineJobRequest"]
    assert request["parent"] == PARENT
    job = request["pipelineJob"]
    # Pinned by digest, and the digest is the one the registry's tag names.
    digest = world.registry.packages["rlhf-tuning"]["tags"]["1.2.0"]
    assert digest == world.digests["1.2.0"]
    assert job["templateUri"] == f"{world.registry.url}/rlhf-tuning/{digest}"
    assert ("GET", "/packages/rlhf-tuning/tags/1.2.0") in world.registry.requests
    assert ("GET", f"/rlhf-tuning/{digest}") in world.registry.requests
    # What `make submit` sends: parameters, labels, service account, CMEK, output folder.
    assert _numbers_as_floats(job["runtimeConfig"]["parameterValues"]) == _numbers_as_floats(
        submitted["runtimeConfig"]["parameterValues"]
    )
    assert job["runtimeConfig"]["parameterValues"]["kl_coeff"] == 0.3
    assert (
        job["runtimeConfig"]["gcsOutputDirectory"]
        == submitted["runtimeConfig"]["gcsOutputDirectory"]
    )
    assert job["serviceAccount"] == SERVICE_ACCOUNT == submitted["serviceAccount"]
    assert job["encryptionSpec"] == {"kmsKeyName": KMS_KEY} == submitted["encryptionSpec"]
    assert job["labels"] == {**submitted["labels"], "pipeline-version": "1-2-0"}
    assert job["pipelineSpec"]["pipelineInfo"]["name"] == "rlhf-tuning"
    # Nothing runs now: the schedule starts the runs.
    assert world.vertex.calls("POST", "/pipelineJobs") == []
    assert "created" in out and digest in out and "at most 1 run at a time" in out


def test_scheduling_again_updates_the_one_schedule(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    assert world.schedule("0 3 * * 1", version="1.1.1") == 0
    first = dict(world.only_schedule())
    assert world.schedule("CRON_TZ=America/New_York 30 4 * * 2", "training.kl_coeff=0.2") == 0
    assert "updated" in capsys.readouterr().out
    schedule = world.only_schedule()  # still one
    assert schedule["name"] == first["name"]
    assert schedule["cron"] == "CRON_TZ=America/New_York 30 4 * * 2"
    job = schedule["createPipelineJobRequest"]["pipelineJob"]
    assert job["templateUri"].endswith(world.digests["1.2.0"])
    assert job["runtimeConfig"]["parameterValues"]["kl_coeff"] == 0.2
    [patch] = world.vertex.calls("PATCH")
    mask = set(patch["query"]["updateMask"][0].split(","))
    assert mask == {"cron", "maxConcurrentRunCount", "createPipelineJobRequest"}
    assert len(world.vertex.calls("POST", "/schedules")) == 1
    # Another name is another schedule.
    assert world.schedule("0 5 * * *", "--name", "nightly") == 0
    shown = sorted(s["displayName"] for s in world.vertex.schedules.values())
    assert shown == ["rlhf-tuning:dev:default", "rlhf-tuning:dev:nightly"]


def test_an_update_that_would_clear_the_service_account_is_refused_before_sending(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    assert world.schedule("0 3 * * 1") == 0
    world.vertex.requests.clear()
    assert world.schedule("0 4 * * 1", "vertex_ai.service_account=null") == 12
    err = capsys.readouterr().err
    assert "an update cannot clear it" in err and "make schedule-delete ENV=dev NAME=default" in err
    assert world.vertex.calls("PATCH") == []


def test_listing_pause_resume_and_delete_by_name(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    assert world.schedule("TZ=Europe/Paris 0 3 * * 1") == 0
    schedule = world.only_schedule()
    job = world.vertex.fire(schedule["name"])
    capsys.readouterr()
    overrides = world.overrides()
    assert cli.main(["schedules", "dev", *overrides]) == 0
    listing = capsys.readouterr().out
    line = listing.splitlines()[1]
    for shown in ("default", "ACTIVE", "TZ=Europe/Paris 0 3 * * 1", "1.2.0"):
        assert shown in line
    assert world.digests["1.2.0"] in line and schedule["nextRunTime"] in line
    assert "PENDING" in line and job.rsplit("/", 1)[-1] in line

    assert cli.main(["schedule-pause", "dev", "--name", "default", *overrides]) == 0
    assert world.only_schedule()["state"] == "PAUSED"
    assert cli.main(["schedule-pause", "dev", "--name", "default", *overrides]) == 0
    assert "already paused" in capsys.readouterr().out
    assert len(world.vertex.calls("POST", ":pause")) == 1
    assert cli.main(["schedules", "dev", "--json", *overrides]) == 0
    [row] = json.loads(capsys.readouterr().out)["schedules"]
    assert row["state"] == "PAUSED" and row["digest"] == world.digests["1.2.0"]
    assert cli.main(["schedule-resume", "dev", "--name", "default", *overrides]) == 0
    assert world.only_schedule()["state"] == "ACTIVE"
    assert cli.main(["schedule-delete", "dev", "--name", "default", *overrides]) == 0
    assert world.vertex.schedules == {}
    assert cli.main(["schedule-delete", "dev", "--name", "default", *overrides]) == 12
    assert "no schedule named 'default'" in capsys.readouterr().err
    assert cli.main(["schedules", "dev", *overrides]) == 0
    assert f"(no schedules of environment dev in {PARENT})" in capsys.readouterr().out


def test_the_listing_holds_only_this_pipeline_and_environment(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    request = {"parent": PARENT, "pipelineJob": {"labels": {}}}
    for display in ("rlhf-tuning:prod:weekly", "other-pipeline:dev:x", "rlhf-tuning:dev:mine"):
        world.vertex.add_schedule(
            PARENT,
            {"displayName": display, "cron": "0 3 * * 1", "createPipelineJobRequest": request},
        )
    assert cli.main(["schedules", "dev", *world.overrides()]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert [row.split()[0] for row in rows] == ["mine"]


@pytest.mark.parametrize(
    ("extra", "version", "fix"),
    [
        (("vertex_ai.template_registry=null",), "1.2.0", "`make publish ENV=dev`"),  # local
        ((), "9.9.9", "`make publish ENV=dev`"),  # a version never published
        # A digest names bytes: publishing cannot make it; only the listed ones can run.
        ((), "sha256:" + "0" * 64, "fix: pick one that `make versions ENV=dev` lists"),
    ],
)
def test_an_unpublished_template_is_refused_with_the_fix_that_can_work(
    world: World,
    capsys: pytest.CaptureFixture[str],
    extra: tuple[str, ...],
    version: str,
    fix: str,
) -> None:
    assert world.schedule("0 3 * * 1", *extra, version=version) == 12
    err = capsys.readouterr().err
    assert "error[CONFIG_002]" in err and fix in err
    if version.startswith("sha256:"):
        assert "make publish" not in err
    assert world.vertex.requests == []


def test_a_schedule_with_caching_on_is_refused_before_any_request(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    assert world.schedule("0 3 * * 1", "vertex_ai.enable_caching=true") == 12
    err = capsys.readouterr().err
    assert "vertex_ai.enable_caching=true" in err and "never trained on" in err
    assert world.vertex.requests == [] and world.registry.requests == []
    assert world.schedule("0 3 * * 1", "vertex_ai.enable_caching=false") == 0


def test_two_schedules_of_one_name_are_refused_not_made_three(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    request = {"parent": PARENT, "pipelineJob": {"labels": {}}}
    for _ in (0, 1):
        world.vertex.add_schedule(
            PARENT,
            {
                "displayName": "rlhf-tuning:dev:default",
                "cron": "0 3 * * 1",
                "createPipelineJobRequest": request,
            },
        )
    assert world.schedule("0 3 * * 1") == 13
    assert "make schedule-delete ENV=dev NAME=default" in capsys.readouterr().err
    assert len(world.vertex.schedules) == 2
    assert cli.main(["schedule-delete", "dev", "--name", "default", *world.overrides()]) == 0
    assert world.vertex.schedules == {}


def test_two_commands_racing_leave_one_schedule_the_older(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    request = {"parent": PARENT, "pipelineJob": {"labels": {}}}
    fields = {
        "displayName": "rlhf-tuning:dev:default",
        "cron": "0 1 * * *",
        "createPipelineJobRequest": request,
    }
    rival: dict[str, Any] = {}
    world.vertex.before_schedule_create = lambda: rival.update(
        world.vertex.add_schedule(PARENT, fields)
    )
    assert world.schedule("0 3 * * 1") == 13
    assert "created by someone else at the same time" in capsys.readouterr().err
    assert list(world.vertex.schedules) == [rival["name"]]
    assert world.schedule("0 3 * * 1") == 0  # the same command again updates that one
    assert world.only_schedule()["cron"] == "0 3 * * 1"


@pytest.mark.parametrize(
    ("mode", "command"),
    [
        ("truncated", "schedules"),
        ("wrong-types", "schedules"),
        ("repeat-page-token", "schedules"),
        ("endless-pages", "schedules"),
        ("nameless", "schedules"),
        ("other-job", "schedule"),  # the update's answer is about another schedule
    ],
)
def test_malformed_answers_are_coded_errors(
    world: World, capsys: pytest.CaptureFixture[str], mode: str, command: str
) -> None:
    assert world.schedule("0 3 * * 1") == 0
    capsys.readouterr()
    world.vertex.hostile = mode
    if command == "schedules":
        status = cli.main(["schedules", "dev", *world.overrides()])
    else:
        status = world.schedule("0 4 * * 1")
    err = capsys.readouterr().err
    assert status == 13, err
    assert "error[PIPELINE_003]" in err and "Traceback" not in err


def test_duplicated_list_items_are_shown_once(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    assert world.schedule("0 3 * * 1") == 0
    capsys.readouterr()
    world.vertex.hostile = "duplicates"
    assert cli.main(["schedules", "dev", *world.overrides()]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_a_create_lost_on_the_network_is_not_made_twice(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.vertex.fail_next(1, 0, "POST")  # the create's connection drops
    assert world.schedule("0 3 * * 1") == 16
    assert "error[NETWORK_006]" in capsys.readouterr().err
    assert world.vertex.schedules == {}
    assert world.schedule("0 3 * * 1") == 0  # the same command again
    assert len(world.vertex.schedules) == 1


@pytest.mark.parametrize(
    ("command", "state"),
    [("schedule-pause", "PAUSED"), ("schedule-delete", None)],
)
def test_an_action_whose_answer_was_lost_is_done_not_an_error(
    world: World, capsys: pytest.CaptureFixture[str], command: str, state: str | None
) -> None:
    assert world.schedule("0 3 * * 1") == 0
    world.vertex.lose_answers = 1  # it takes effect, then the service answers 503
    status = cli.main([command, "dev", "--name", "default", *world.overrides()])
    assert status == 0, capsys.readouterr().err
    if state is None:
        assert world.vertex.schedules == {}
    else:
        assert world.only_schedule()["state"] == state
    # The call was retried once (the retry met "already paused" or "not found").
    sent = world.vertex.calls("POST", ":pause") if state else world.vertex.calls("DELETE")
    assert len(sent) == 2


HOSTILE_NAME = "\x1b[2J<script>alert(1)</script>\u202eevil" + "x" * 5000


def test_hostile_text_from_the_server_is_escaped_in_the_listing(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    request = {
        "parent": PARENT,
        "pipelineJob": {
            "labels": {"pipeline-version": "\u202e0.2.1\x07"},
            "templateUri": "http://x/\x1b]0;pwned\x07",
        },
    }
    world.vertex.add_schedule(
        PARENT,
        {
            "displayName": "rlhf-tuning:dev:" + HOSTILE_NAME,
            "cron": "0 3 * * 1\x1b]0;title\x07\n\r" + "9" * 10_000,
            "state": 7,  # a state the installed client does not know
            "createPipelineJobRequest": request,
        },
    )
    assert cli.main(["schedules", "dev", *world.overrides()]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out and "\r" not in out
    assert "\\x1b[2J<script>" in out and "\\u202e" in out
    assert "UNKNOWN(7)" in out and "(not pinned)" in out
    assert len(out.splitlines()) == 2 and len(out) < 2_000


def test_make_schedule_and_make_schedules_end_to_end(world: World) -> None:
    import os
    import shutil
    import subprocess

    def make(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [shutil.which("make") or "make", "-s", "--no-print-directory", *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=180,
            env={**os.environ, "GOOGLE_CLOUD_PROJECT": TEST_PROJECT},
        )

    overrides = "OVERRIDES=" + " ".join(world.overrides())
    dry = make("schedule", "ENV=dev", "CRON=0 3 * * 1", "DRY_RUN=yes", overrides)
    assert dry.returncode == 0, dry.stderr
    assert "This schedule books a run" in dry.stdout and "dry run: nothing was sent" in dry.stderr
    assert world.vertex.schedules == {}
    made = make("schedule", "ENV=dev", "CRON=TZ=Europe/Paris 0 3 * * 1", "VERSION=1.1.1", overrides)
    assert made.returncode == 0, made.stderr
    again = make("schedule", "ENV=dev", "CRON=0 4 * * 2", "VERSION=1.2.0", overrides)
    assert again.returncode == 0, again.stderr
    assert "updated" in again.stdout
    listed = make("schedules", "ENV=dev", overrides)
    assert listed.returncode == 0, listed.stderr
    [row] = listed.stdout.splitlines()[1:]
    assert row.split()[:3] == ["default", "ACTIVE", "0"]
    assert "1.2.0" in row and world.digests["1.2.0"] in row
    paused = make("schedule-pause", "ENV=dev", "NAME=default", overrides)
    assert paused.returncode == 0 and world.only_schedule()["state"] == "PAUSED"


class _Terminal:
    """A stdin that is a terminal and answers one line."""

    def __init__(self, answer: str) -> None:
        self.answer = answer

    def isatty(self) -> bool:
        return True

    def readline(self) -> str:
        return self.answer


def test_a_dry_run_shows_what_each_run_books_and_sends_nothing(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli.main(["schedule", "dev", "--cron", "*/5 * * * *", "--dry-run", *world.overrides()])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "This schedule books a run in project" in out and "at every */5 * * * *" in out
    assert "  steps:" in out and "pinned to its registry digest when scheduled" in out
    assert "dry run: nothing was sent" in err
    assert world.vertex.requests == [] and world.registry.requests == []


@pytest.mark.parametrize(("answer", "status", "made"), [("n\n", 1, 0), ("\n", 1, 0), ("y\n", 0, 1)])
def test_a_terminal_confirms_what_each_run_books_before_scheduling(
    world: World,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    answer: str,
    status: int,
    made: int,
) -> None:
    import sys

    monkeypatch.setattr(sys, "stdin", _Terminal(answer))
    assert world.schedule("0 3 * * 1") == status
    err = capsys.readouterr().err
    assert "This schedule books a run" in err and "Schedule it? [y/N]" in err
    assert len(world.vertex.schedules) == made
    if not made:
        assert "not scheduled: nothing was sent" in err and world.vertex.requests == []


def test_yes_schedules_from_a_terminal_without_asking(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setattr(sys, "stdin", _Terminal("n\n"))
    assert world.schedule("0 3 * * 1", "--yes") == 0
    assert "Schedule it?" not in capsys.readouterr().err
    assert len(world.vertex.schedules) == 1
