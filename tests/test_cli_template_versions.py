"""Which template version a command uses or rewrites, and what it says about it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CURRENT_VERSION, REPO
from vertex_rlhf import cli
from vertex_rlhf.errors import PipelineError
from vertex_rlhf.usecases import templates


def git(cwd: Path, *argv: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *argv],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def repository(tmp_path: Path, branch: str, committed: bool) -> Path:
    """A repository holding a copy of compiled/, committed on ``branch`` (or not at all)."""
    root = tmp_path / "repo"
    shutil.copytree(REPO / "compiled", root / "compiled")
    git(root, "init", "-q", "-b", branch)
    (root / "README").write_text("x")
    git(root, "add", "README")
    if committed:
        git(root, "add", "compiled")
    git(root, "commit", "-qm", "start")
    return root / "compiled"


@pytest.mark.parametrize("branch", ["main", "master"])
def test_amend_refuses_a_version_committed_on_the_main_branch(tmp_path: Path, branch: str) -> None:
    compiled = repository(tmp_path, branch, committed=True)
    with pytest.raises(PipelineError) as caught:
        templates.refuse_amending_main(compiled)
    assert f"version {CURRENT_VERSION} is committed on the {branch} branch" in caught.value.message
    assert "bump PIPELINE_VERSION" in caught.value.hint


def test_amend_refuses_it_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    compiled = repository(tmp_path, "main", committed=True)
    before = {p.name: p.read_bytes() for p in compiled.iterdir()}
    assert cli.main(["compile", "--amend", "--compiled-dir", str(compiled)]) == 13
    err = capsys.readouterr().err
    assert err.startswith("error[PIPELINE_003]: version ") and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in compiled.iterdir()} == before


@pytest.mark.parametrize(
    ("branch", "committed"), [("main", False), ("feature", True), ("feature", False)]
)
def test_amend_goes_on_for_a_version_not_on_the_main_branch(
    tmp_path: Path, branch: str, committed: bool
) -> None:
    compiled = repository(tmp_path, branch, committed)
    templates.refuse_amending_main(compiled)  # no error


def test_amend_goes_on_outside_a_repository(tmp_path: Path) -> None:
    shutil.copytree(REPO / "compiled", tmp_path / "compiled")
    templates.refuse_amending_main(tmp_path / "compiled")


@pytest.mark.usefixtures("project_env")
@pytest.mark.parametrize(
    "how", [["--version", CURRENT_VERSION], [f"vertex_ai.template_version={CURRENT_VERSION}"]]
)
def test_a_version_without_a_registry_says_it_is_compiled_s(
    how: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["submit", "dev", "--dry-run", *how]) == 0
    captured = capsys.readouterr()
    assert "vertex_ai.template_registry is not set, so version" in captured.err
    assert f"rlhf-tuning-{CURRENT_VERSION}.yaml), not a published one" in captured.err
    assert f"rlhf-tuning-{CURRENT_VERSION}.yaml" in captured.out


@pytest.mark.usefixtures("project_env")
def test_no_note_without_a_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["submit", "dev", "--dry-run"]) == 0
    assert "template_registry is not set" not in capsys.readouterr().err


def test_amend_refuses_a_version_on_the_remote_main_branch(tmp_path: Path) -> None:
    origin = repository(tmp_path, "main", committed=True).parent
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(origin), str(clone)], check=True)
    git(clone, "checkout", "-q", "-b", "feature")
    git(clone, "branch", "-q", "-D", "main")
    with pytest.raises(PipelineError) as caught:
        templates.refuse_amending_main(clone / "compiled")
    assert "committed on the origin/main branch" in caught.value.message
