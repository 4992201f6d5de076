"""The environment argument: a strict name or a parameter file's path, from any directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, TEST_PROJECT
from vertex_rlhf.config import environment
from vertex_rlhf.config.environment import find_project_root, resolve_environment
from vertex_rlhf.errors import ConfigError

SEED_LINE = (
    "Optimal training steps:"
    " TrainingSteps(reward_model_steps=1410, reinforcement_learning_steps=320)"
)


def rlhf(*args: str, cwd: Path = REPO, project: str | None = TEST_PROJECT, **env: str):  # type: ignore[no-untyped-def]
    environ = {k: v for k, v in os.environ.items() if k != "GOOGLE_CLOUD_PROJECT"}
    if project:
        environ["GOOGLE_CLOUD_PROJECT"] = project
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "vertex_rlhf", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environ,
        timeout=120,
    )


@pytest.mark.parametrize(
    "spec", ["params/dev.yaml", "./params/dev.yaml", str(REPO / "params/dev.yaml")]
)
@pytest.mark.parametrize("command", ["steps", "check"])
def test_a_parameter_file_path_works_wherever_a_name_does(spec: str, command: str) -> None:
    result = rlhf(command, spec)
    assert result.returncode == 0, result.stderr
    if command == "steps":
        assert result.stdout.strip() == SEED_LINE
    else:
        assert "valid for rlhf-tuning-" in result.stderr


def test_the_path_form_layers_the_base_beside_the_file(tmp_path: Path) -> None:
    shutil.copy(REPO / "params/base.yaml", tmp_path / "base.yaml")
    (tmp_path / "team-a.yaml").write_text(
        "dataset:\n  preference_dataset: gs://my-bucket/p.jsonl\n  prompt_dataset: gs://my-bucket/q.jsonl\n"
        "  preference_size: 640\n  prompt_size: 64\n",
        encoding="utf-8",
    )
    env = resolve_environment(str(tmp_path / "team-a.yaml"))
    assert env.name == "team-a"
    assert env.files == (tmp_path / "base.yaml", tmp_path / "team-a.yaml")
    result = rlhf("steps", str(tmp_path / "team-a.yaml"))
    assert result.returncode == 0, result.stderr
    # base.yaml's 30 and 10 epochs: 10 batches x 30, 1 batch x 10
    assert "reward_model_steps=300, reinforcement_learning_steps=10" in result.stdout


def test_a_dry_run_from_a_path_uses_the_checked_name_in_job_id_and_labels() -> None:
    result = rlhf("submit", "params/dev.yaml", "--dry-run")
    assert result.returncode == 0, result.stderr
    request = yaml.safe_load(result.stdout)
    assert "pipelineJobId=rlhf-tuning-dev-" in request["create"]
    assert request["pipelineJob"]["labels"]["environment"] == "dev"


@pytest.mark.parametrize("spec", ["params", "params/", ".", str(REPO / "params")])
def test_a_directory_is_not_an_environment(spec: str) -> None:
    result = rlhf("check", spec)
    assert result.returncode == 12
    assert "is a directory, not an environment" in result.stderr
    if spec != ".":
        assert "environments there: dev, local, prod" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "name", ["Dev", "dév", "dev_1", "-dev", "1dev", "a" * 31, "dev env", "dev;rm", "x\u200b"]
)
def test_environment_names_are_strict_and_the_error_states_the_rule(name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_environment(name, REPO / "params")
    assert "1-30 of a-z, 0-9 and -, starting with a letter" in caught.value.problems[0]
    assert "params/dev.yaml" in caught.value.problems[0]  # the path form, as the way out


@pytest.mark.parametrize("stem", ["Team A", "équipe", "dev_2", "UPPER"])
def test_a_file_whose_name_is_not_a_valid_environment_is_refused(tmp_path: Path, stem: str) -> None:
    path = tmp_path / f"{Path(stem).name}.yaml"
    path.write_text("{}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        resolve_environment(str(path))
    assert "not a valid environment name" in caught.value.problems[0]


@pytest.mark.parametrize("spec", ["../x", "/etc/passwd", "params/nope.yaml", "nope.yaml"])
def test_paths_that_are_not_parameter_files(spec: str) -> None:
    result = rlhf("check", spec)
    assert result.returncode == 12
    assert result.stderr.startswith("error[CONFIG_002]: ")
    assert "Traceback" not in result.stderr


def test_a_name_that_is_not_a_file_lists_the_environments() -> None:
    result = rlhf("check", "staging")
    assert result.returncode == 12
    assert "params/staging.yaml: no such parameter file" in result.stderr
    assert "dev, local, prod" in result.stderr


def test_commands_run_from_another_directory_find_params_and_compiled(tmp_path: Path) -> None:
    steps = rlhf("steps", "dev", cwd=tmp_path)
    assert steps.returncode == 0, steps.stderr
    assert steps.stdout.strip() == SEED_LINE
    check = rlhf("check", "dev", "--print", cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    assert f"template: {REPO}/compiled/rlhf-tuning-" in check.stdout
    compiled = rlhf("compile", "--check", cwd=tmp_path)
    assert compiled.returncode == 0, compiled.stderr


def test_a_project_below_the_current_directory_is_found_first(tmp_path: Path) -> None:
    (tmp_path / "params").mkdir()
    (tmp_path / "params/base.yaml").write_text("{}\n", encoding="utf-8")
    (tmp_path / "sub/dir").mkdir(parents=True)
    assert find_project_root(tmp_path / "sub/dir") == tmp_path


def test_no_project_anywhere_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(environment, "PACKAGE_ROOT", tmp_path / "site-packages")
    with pytest.raises(ConfigError) as caught:
        find_project_root(tmp_path)
    message = caught.value.problems[0]
    assert f"looked in: {tmp_path}/params, " in message
    assert f"{tmp_path}/site-packages/params" in message
    assert "--params-dir" in message


# --- environment arguments ------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["dev.yaml", "prod.yml"])
def test_a_bare_file_name_suggests_the_environment_meant(
    typed: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # not where params/ is: the project is found from the package
    with pytest.raises(ConfigError) as raised:
        resolve_environment(typed)
    stem = typed.split(".")[0]
    assert f"did you mean `{stem}`" in raised.value.render()
    assert raised.value.exit_status == 12


def test_no_suggestion_for_a_name_that_is_not_an_environment(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        resolve_environment("nosuchenv.yaml")
    assert "did you mean" not in raised.value.render()
