"""The parameter schema: each environment loads; every kind of mistake is a coded error."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO, TEST_PROJECT
from vertex_rlhf.config.params import load_params
from vertex_rlhf.errors import ConfigError


def overlay(params_dir: Path, name: str, text: str) -> str:
    (params_dir / f"{name}.yaml").write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return name


def problems(params_dir: Path, env: str, *overrides: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_params(env, overrides, params_dir)
    assert caught.value.code == "CONFIG_002"
    assert caught.value.exit_status == 12
    return caught.value.problems


@pytest.mark.usefixtures("project_env")
def test_dev_is_the_published_worked_example() -> None:
    params = load_params("dev", params_dir=REPO / "params")
    assert params.dataset.preference_size == 3000
    assert params.dataset.prompt_size == 2000
    assert params.training.reward_model_epochs == 30
    assert params.training.reinforcement_learning_epochs == 10
    assert "text_small" in params.dataset.preference_dataset
    assert params.vertex_ai.project_id == TEST_PROJECT
    assert params.vertex_ai.pipeline_root == f"gs://{TEST_PROJECT}-rlhf/pipeline_root"


@pytest.mark.usefixtures("project_env")
@pytest.mark.parametrize("env", ["dev", "prod", "local"])
def test_every_environment_loads(env: str) -> None:
    params = load_params(env, params_dir=REPO / "params")
    assert params.vertex_ai.pipeline_display_name == f"rlhf-{env}"


def test_local_points_at_shipped_samples_without_a_project(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    params = load_params("local", params_dir=REPO / "params", sections=("dataset", "training"))
    for path in (params.dataset.preference_dataset, params.dataset.prompt_dataset):
        assert Path(path).is_absolute() and Path(path).is_file()


def test_unset_environment_variable(monkeypatch: pytest.MonkeyPatch, params_dir: Path) -> None:
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    [problem] = problems(params_dir, "prod")
    assert f"{params_dir}/base.yaml:" in problem
    assert "environment variable GOOGLE_CLOUD_PROJECT is not set" in problem
    assert "vertex_ai.project_id, vertex_ai.pipeline_root" in problem


def test_steps_sections_need_no_project(monkeypatch: pytest.MonkeyPatch, params_dir: Path) -> None:
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    params = load_params("prod", (), params_dir, sections=("dataset", "training"))
    assert params.dataset.preference_size == 100000


@pytest.mark.usefixtures("project_env")
def test_typo_in_a_file_names_file_line_and_suggestion(params_dir: Path) -> None:
    env = overlay(
        params_dir,
        "typo",
        """
        training:
          reward_model_epochs: 25
          kl_coef: 0.2
        """,
    )
    [problem] = problems(params_dir, env)
    assert problem.startswith(f"{params_dir}/typo.yaml:3: training.kl_coef: unknown key")
    assert "did you mean 'kl_coeff'?" in problem
    assert "allowed here: large_model_reference" in problem


@pytest.mark.usefixtures("project_env")
def test_unknown_section(params_dir: Path) -> None:
    env = overlay(params_dir, "sect", "trainer:\n  epochs: 3\n")
    [problem] = problems(params_dir, env)
    assert problem.startswith(f"{params_dir}/sect.yaml:1: trainer: unknown key")
    assert "did you mean 'training'?" in problem


@pytest.mark.usefixtures("project_env")
def test_wrong_type_in_a_file(params_dir: Path) -> None:
    env = overlay(params_dir, "types", "dataset:\n  preference_size: lots\n")
    [problem] = problems(params_dir, env)
    assert problem.startswith(f"{params_dir}/types.yaml:2: dataset.preference_size:")
    assert "'lots'" in problem and "Integer" in problem


@pytest.mark.usefixtures("project_env")
def test_wrong_type_in_an_override(params_dir: Path) -> None:
    [problem] = problems(params_dir, "dev", "training.reward_model_epochs=1.5")
    assert problem.startswith("command-line override: training.reward_model_epochs:")


@pytest.mark.usefixtures("project_env")
def test_missing_required_values(params_dir: Path) -> None:
    found = problems(params_dir, "base")
    assert any(p.startswith("dataset.preference_dataset: required but not set") for p in found)
    assert any(p.startswith("dataset.prompt_dataset: required but not set") for p in found)


@pytest.mark.usefixtures("project_env")
def test_yaml_syntax_error_names_the_line(params_dir: Path) -> None:
    env = overlay(params_dir, "broken", "training:\n  kl_coeff: [0.1\n  x: 1\n")
    [problem] = problems(params_dir, env)
    assert problem.startswith(f"{params_dir}/broken.yaml:")
    assert "not valid YAML" in problem


def test_missing_environment_file_lists_the_others(params_dir: Path) -> None:
    [problem] = problems(params_dir, "staging")
    assert "staging.yaml: no such parameter file" in problem
    assert "dev, local, prod" in problem


@pytest.mark.usefixtures("project_env")
@pytest.mark.parametrize("item", ["training.kl_coeff", "=3", "kl_coeff 0.2"])
def test_malformed_override(params_dir: Path, item: str) -> None:
    [problem] = problems(params_dir, "dev", item)
    assert "write KEY=VALUE in OmegaConf dotlist form" in problem


@pytest.mark.usefixtures("project_env")
def test_out_of_range_values_are_all_reported_at_once(params_dir: Path) -> None:
    found = problems(
        params_dir,
        "dev",
        "training.reward_model_epochs=0",
        "training.reinforcement_learning_epochs=-3",
        "training.reward_model_learning_rate_multiplier=0",
        "training.reinforcement_learning_rate_multiplier=-0.5",
        "training.kl_coeff=-0.1",
        "training.prompt_sequence_length=8193",
        "training.target_sequence_length=1025",
        "training.reward_model_train_steps=0",
        "dataset.prompt_size=0",
    )
    assert len(found) == 9
    assert all(p.startswith("command-line override: ") for p in found)
    text = "\n".join(found)
    for expected in (
        "training.reward_model_epochs: must be a positive whole number, got 0",
        "training.reinforcement_learning_epochs: must be a positive whole number, got -3",
        "training.reward_model_learning_rate_multiplier: must be a number greater than 0",
        "training.reinforcement_learning_rate_multiplier: must be a number greater than 0",
        "training.kl_coeff: must be 0 or more",
        "training.prompt_sequence_length: must be between 1 and 8192",
        "training.target_sequence_length: must be between 1 and 1024",
        "training.reward_model_train_steps: must be positive, or null",
        "dataset.prompt_size: must be a positive row count",
    ):
        assert expected in text


@pytest.mark.usefixtures("project_env")
def test_limits_themselves_are_allowed(params_dir: Path) -> None:
    params = load_params(
        "dev",
        [
            "training.prompt_sequence_length=8192",
            "training.target_sequence_length=1024",
            "training.kl_coeff=0",
        ],
        params_dir,
    )
    assert params.training.prompt_sequence_length == 8192


@pytest.mark.usefixtures("project_env")
def test_unsupported_model_lists_the_supported_ones(params_dir: Path) -> None:
    [problem] = problems(params_dir, "dev", "training.large_model_reference=gemini-pro")
    assert "training.large_model_reference: unsupported model 'gemini-pro'" in problem
    assert "llama-2-13b-chat" in problem and "t5-xxl" in problem


@pytest.mark.usefixtures("project_env")
def test_model_names_normalize_like_gcpc(params_dir: Path) -> None:
    params = load_params("dev", ["training.large_model_reference=Llama_2_7B"], params_dir)
    assert params.training.large_model_reference == "Llama_2_7B"


@pytest.mark.usefixtures("project_env")
def test_unsupported_region(params_dir: Path) -> None:
    [problem] = problems(params_dir, "dev", "vertex_ai.region=us-south1")
    assert "vertex_ai.region: GCPC's RLHF pipeline does not run in 'us-south1'" in problem
    assert "europe-west4" in problem


@pytest.mark.usefixtures("project_env")
def test_model_that_gcpc_tunes_only_on_tpu(params_dir: Path) -> None:
    [problem] = problems(params_dir, "dev", "training.large_model_reference=t5-xl")
    assert "training.accelerator_type (default): t5-xl can only be tuned on TPU" in problem
    params = load_params(
        "dev",
        ["training.large_model_reference=t5-xl", "training.accelerator_type=TPU"],
        params_dir,
    )
    assert params.training.accelerator_type == "TPU"


@pytest.mark.usefixtures("project_env")
def test_unknown_accelerator(params_dir: Path) -> None:
    [problem] = problems(params_dir, "dev", "training.accelerator_type=gpu")
    assert "training.accelerator_type: must be GPU, TPU, got 'gpu'" in problem


KEY = "projects/p/locations/us-central1/keyRings/r/cryptoKeys/k"


@pytest.mark.usefixtures("project_env")
@pytest.mark.parametrize(
    "overrides",
    [
        ["training.accelerator_type=TPU"],
        ["vertex_ai.region=europe-west4"],
    ],
)
def test_cmek_outside_gpu_in_us_central1(params_dir: Path, overrides: list[str]) -> None:
    [problem] = problems(params_dir, "dev", f"training.encryption_spec_key_name={KEY}", *overrides)
    assert "training.encryption_spec_key_name: CMEK is only supported for GPU tuning" in problem


@pytest.mark.usefixtures("project_env")
def test_cmek_with_gpu_in_us_central1_is_fine(params_dir: Path) -> None:
    params = load_params("dev", [f"training.encryption_spec_key_name={KEY}"], params_dir)
    assert params.training.encryption_spec_key_name == KEY


@pytest.mark.usefixtures("project_env")
def test_local_path_outside_the_local_environment(params_dir: Path) -> None:
    [problem] = problems(params_dir, "dev", "dataset.prompt_dataset=/data/prompts.jsonl")
    assert "dataset.prompt_dataset: '/data/prompts.jsonl' is not a gs:// path" in problem
    assert "allow_local_paths" in problem


@pytest.mark.usefixtures("project_env")
@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("dataset.preference_dataset=gs://", "dataset.preference_dataset"),
        ("vertex_ai.pipeline_root=/tmp/root", "vertex_ai.pipeline_root"),
        ("vertex_ai.project_id=My_Project", "vertex_ai.project_id"),
        ("vertex_ai.service_account=not-an-email", "vertex_ai.service_account"),
        ("vertex_ai.labels.Team=ml", "vertex_ai.labels.Team"),
        ("vertex_ai.labels.team=ML Ops", "vertex_ai.labels.team"),
        ("training.tensorboard_resource_id=my-board", "training.tensorboard_resource_id"),
    ],
)
def test_malformed_identifiers(params_dir: Path, override: str, key: str) -> None:
    found = problems(params_dir, "dev", override)
    assert found[0].startswith(f"command-line override: {key}: ")


@pytest.mark.usefixtures("project_env")
def test_error_points_at_the_layer_that_set_the_value(params_dir: Path) -> None:
    dev = (params_dir / "dev.yaml").read_text(encoding="utf-8")
    env = overlay(params_dir, "tuned", dev.replace("training:\n", "training:\n  kl_coeff: -1.0\n"))
    line = 1 + dev.splitlines().index("training:") + 1
    [problem] = problems(params_dir, env)
    assert problem.startswith(f"{params_dir}/tuned.yaml:{line}: training.kl_coeff: must be 0")


@pytest.mark.usefixtures("project_env")
def test_overrides_win_over_files(params_dir: Path) -> None:
    params = load_params(
        "prod", ["training.kl_coeff=0.3", "training.reward_model_train_steps=null"], params_dir
    )
    assert params.training.kl_coeff == 0.3
    assert params.training.reward_model_train_steps is None
    assert params.training.reinforcement_learning_train_steps == 10000


# --- whole numbers Vertex AI cannot carry ---------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "dataset.preference_size",
        "dataset.prompt_size",
        "training.reward_model_epochs",
        "training.reinforcement_learning_epochs",
        "training.reward_model_train_steps",
        "training.reinforcement_learning_train_steps",
    ],
)
@pytest.mark.parametrize("value", ["9223372036854775808", "99999999999999999999999999"])
@pytest.mark.usefixtures("project_env")
def test_integers_beyond_what_vertex_carries_are_refused(key: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_params("local", [f"{key}={value}"], REPO / "params")
    assert f"{key}: {value} is too large" in raised.value.render()
    assert raised.value.exit_status == 12


@pytest.mark.usefixtures("project_env")
def test_the_largest_exact_integer_is_still_accepted() -> None:
    key = "training.reward_model_train_steps"
    params = load_params("local", [f"{key}={2**53 - 1}"], REPO / "params")
    assert params.training.reward_model_train_steps == 2**53 - 1
