"""Every command a message tells the user to run works when run as printed.

Each case breaks a scratch copy of the checkout, runs a command that fails (or that
prints what to run next), collects the ``make``/``rlhf`` commands its output names (in
backticks, or on a ``fix:`` line), runs each as printed in the same copy, and checks it
is a command that runs (no CONFIG_002, no usage error) and, where it is meant to repair
something, that the first command no longer fails with the same problem.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REPO, TEST_PROJECT
from tests.standins.vertex import VertexStandIn, timeline_success

COMMAND = re.compile(r"`((?:make|rlhf|python) [^`]+)`")
FIX_LINE = re.compile(r"^\s*fix: .*?\b((?:make|rlhf) [a-z-]+(?: [A-Z_]+=\S+)*)", re.M)
ORIGINAL = (
    "dataset:\n  preference_dataset: gs://my-bucket/p.jsonl\n"
    "  prompt_dataset: gs://my-bucket/q.jsonl\n  preference_size: 3000\n  prompt_size: 2000\n"
    "training:\n  large_model_reference: llama-2-7b\n  batch_size: 64\n"
    f"vertex_ai:\n  project_id: {TEST_PROJECT}\n  region: us-central1\n"
    "  staging_bucket: gs://my-bucket/staging\n"
)


@dataclass
class Case:
    """A way to get a message that names a command."""

    argv: list[str]
    breaks: Callable[[Path], None] = lambda root: None
    problem: str = ""  # the first command's problem, which the fix must end
    repairs: bool = True  # the printed commands are meant to make argv pass
    expected: list[str] = field(default_factory=list)  # commands that must be printed


def remove_compiled(root: Path) -> None:
    shutil.rmtree(root / "compiled")


def stale_docs(root: Path) -> None:
    docs = root / "docs" / "parameters.md"
    docs.write_text(docs.read_text(encoding="utf-8") + "\nedited by hand\n", encoding="utf-8")


def original_config(root: Path) -> None:
    (root / "configs").mkdir()
    (root / "configs" / "production_config.yaml").write_text(ORIGINAL, encoding="utf-8")


CASES = {
    "no compiled template": Case(
        ["rlhf", "check", "dev"], remove_compiled, "no compiled template", expected=["make compile"]
    ),
    "stale parameter reference": Case(
        ["rlhf", "reference", "--check"], stale_docs, "is stale", expected=["make docs"]
    ),
    "layout of another model": Case(
        ["rlhf", "check", "local", "training.large_model_reference=llama-2-7b-chat"],
        problem="is a chat model",
        repairs=False,
        expected=["rlhf validate-data local training.large_model_reference=llama-2-7b-chat"],
    ),
    "original layout, storage out of reach": Case(
        [
            sys.executable,
            "scripts/main.py",
            "--config",
            "configs/production_config.yaml",
            "--validate",
        ],
        original_config,
        repairs=False,
        expected=[
            "rlhf migrate-config configs/production_config.yaml",
            "make validate-data ENV=production",
        ],
    ),
    "original layout migrated": Case(
        ["rlhf", "migrate-config", "configs/production_config.yaml"],
        original_config,
        repairs=False,
        expected=["make check ENV=params/production.yaml"],
    ),
    "a version that was not compiled": Case(
        ["rlhf", "submit", "dev", "--dry-run", "--version", "9.9.9"],
        problem="version '9.9.9'",
        repairs=False,
    ),
}


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """A copy of the checkout (its .venv linked), where printed commands may run."""
    root = tmp_path / "checkout"
    ignore = shutil.ignore_patterns(".venv", ".git", "*cache*", "runs", "__pycache__", "*.egg-info")
    shutil.copytree(REPO, root, ignore=ignore)  # copy2: the mtimes make keeps setup done
    (root / ".venv").symlink_to(REPO / ".venv")
    return root


def run(root: Path, argv: list[str]) -> subprocess.CompletedProcess[str]:
    environ = {
        **os.environ,
        "GOOGLE_CLOUD_PROJECT": TEST_PROJECT,
        "PATH": f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(root),  # no application-default credentials
    }
    environ.pop("STORAGE_EMULATOR_HOST", None)
    return subprocess.run(
        argv,
        cwd=root,
        capture_output=True,
        text=True,
        env=environ,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def not_a_usage_error(command: str, result: subprocess.CompletedProcess[str]) -> bool:
    """Whether the command was understood (make exits 2 for any failed recipe)."""
    said = result.stdout + result.stderr
    if command.startswith("make "):
        return "No rule to make target" not in said
    return result.returncode != 2 and "usage:" not in said


def printed_commands(text: str) -> list[str]:
    found = COMMAND.findall(text) + FIX_LINE.findall(COMMAND.sub("", text))
    return list(dict.fromkeys(c for c in found if c.split()[0] in ("make", "rlhf")))


@pytest.mark.parametrize("name", list(CASES))
def test_printed_commands_work_as_printed(scratch: Path, name: str) -> None:
    case = CASES[name]
    case.breaks(scratch)
    first = run(scratch, case.argv)
    output = first.stdout + first.stderr
    assert "Traceback" not in output
    assert "rlhf-legacy-" not in output  # names the user's file, never a scratch copy
    if case.problem:
        assert first.returncode != 0 and case.problem in first.stderr, output
    commands = printed_commands(output)
    for expected in case.expected:
        assert expected in commands, output
    for command in commands:
        result = run(scratch, shlex.split(command))
        said = result.stdout + result.stderr
        assert not_a_usage_error(command, result), f"{command}: {said}"
        assert "error[CONFIG_002]" not in said, f"{command}: {said}"
        assert "Traceback" not in said, f"{command}: {said}"
    if case.repairs and commands:
        again = run(scratch, case.argv)
        assert case.problem not in again.stderr, again.stderr
        assert again.returncode == 0, again.stderr


MAKE_CASES = [
    ("submit", "DRY_RUN=maybe", "not a yes/no value"),
    ("steps", "OVERRIDES=training.instruction='x", "close every quote"),
    ("monitor", "JOB=", "set JOB="),
    ("steps", "ENV=production", "no such parameter file"),
]


@pytest.mark.parametrize(("target", "variable", "problem"), MAKE_CASES)
def test_makefile_errors_name_only_commands_that_work(
    scratch: Path, target: str, variable: str, problem: str
) -> None:
    result = run(scratch, ["make", "-s", "--no-print-directory", target, variable])
    assert result.returncode != 0 and problem in result.stderr, result.stderr
    for command in printed_commands(result.stdout + result.stderr):
        again = run(scratch, shlex.split(command))
        assert not_a_usage_error(command, again), command
        assert "error[CONFIG_002]" not in again.stderr, command


def test_the_resume_command_follows_the_same_job_with_the_same_overrides(
    scratch: Path, vertex: VertexStandIn
) -> None:
    job = f"projects/{TEST_PROJECT}/locations/us-central1/pipelineJobs/rlhf-tuning-dev-1"
    # An hour's run: it outlives the first watch, however slowly that one starts.
    vertex.add_job(job, timeline_success())
    endpoint = f"vertex_ai.api_endpoint={vertex.url}"
    first = run(
        scratch,
        ["rlhf", "monitor", "rlhf-tuning-dev-1", "--env", "dev", endpoint, "--timeout", "0.5"],
    )
    assert first.returncode == 0, first.stderr
    assert "SUCCEEDED" not in first.stdout
    [command] = re.findall(r"resume with: (make monitor .*)$", first.stderr, re.M)
    assert f"OVERRIDES={endpoint}" in command
    # The hour passes between the watches, so the resumed one sees the end at its first
    # poll (not 15 s later, at its second).
    with vertex.lock:
        vertex.jobs[job].created_at -= 3600.0
    again = run(scratch, shlex.split(command))
    assert again.returncode == 0, again.stderr
    assert "SUCCEEDED (100%" in again.stdout


@pytest.mark.parametrize("target", ["check", "plan"])
def test_an_unset_project_names_the_make_override_that_sets_it(scratch: Path, target: str) -> None:
    """`pass vertex_ai.project_id=...` alone, given to make as written, is a make variable
    the CLI never sees: the message names the OVERRIDES= form, and it works."""
    environ = {**os.environ, "HOME": str(scratch)}
    environ.pop("GOOGLE_CLOUD_PROJECT", None)

    def make(*variables: str) -> subprocess.CompletedProcess[str]:
        argv = ["make", "-s", "--no-print-directory", target, "ENV=dev", *variables]
        return subprocess.run(
            argv, cwd=scratch, capture_output=True, text=True, env=environ, timeout=300
        )

    first = make()
    assert first.returncode != 0 and "GOOGLE_CLOUD_PROJECT is not set" in first.stderr
    [printed] = re.findall(r"\(make: (OVERRIDES='[a-z_.]+=)\.\.\.'\)", first.stderr)
    again = make(printed.replace("'", "") + "my-project-123")
    assert again.returncode == 0, again.stderr
    assert "GOOGLE_CLOUD_PROJECT" not in again.stderr
