"""The original description's config layout: read as it is, migrated to params/<env>.yaml."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import vertex_rlhf.original.layout as legacy
from tests.conftest import REPO
from vertex_rlhf import cli
from vertex_rlhf.config.environment import ENV_NAME
from vertex_rlhf.config.params import load_params
from vertex_rlhf.errors import ConfigError

# The production configuration of the original description, verbatim.
PRODUCTION = """\
# configs/production_config.yaml
dataset:
  preference_dataset: "gs://your-bucket/rlhf/data/preferences/*.jsonl"
  prompt_dataset: "gs://your-bucket/rlhf/data/prompts/*.jsonl"
  eval_dataset: "gs://your-bucket/rlhf/data/evaluation/*.jsonl"
  preference_size: 50000
  prompt_size: 100000

training:
  large_model_reference: "llama-2-7b"
  reward_model_train_steps: 10000
  reinforcement_learning_train_steps: 8000
  reward_model_learning_rate_multiplier: 1.0
  reinforcement_learning_rate_multiplier: 0.2
  kl_coeff: 0.1
  instruction: "Summarize in less than 50 words"
  batch_size: 64

vertex_ai:
  project_id: "your-project-id"
  region: "us-central1"
  staging_bucket: "gs://your-project-rlhf-staging"
  pipeline_display_name: "rlhf-production-training"
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def production(tmp_path: Path) -> Path:
    return write(tmp_path / "configs" / "production_config.yaml", PRODUCTION)


def test_the_original_layout_is_recognised(production: Path, params_dir: Path) -> None:
    assert legacy.is_legacy_file(production)
    assert legacy.reads_as_legacy(production)
    assert not legacy.reads_as_legacy(params_dir / "dev.yaml")  # base.yaml beside it
    assert not legacy.is_legacy_file(params_dir / "prod.yaml")


def test_every_original_key_is_read_and_the_changed_ones_are_named(
    production: Path, params_dir: Path
) -> None:
    params, migration = legacy.load(production, params_dir=params_dir)
    assert params.vertex_ai.pipeline_root == "gs://your-project-rlhf-staging"
    assert params.vertex_ai.project_id == "your-project-id"
    assert params.vertex_ai.pipeline_display_name == "rlhf-production-training"
    assert params.dataset.preference_size == 50000 and params.dataset.prompt_size == 100000
    assert params.training.reward_model_train_steps == 10000
    assert params.training.reinforcement_learning_train_steps == 8000
    assert params.training.instruction == "Summarize in less than 50 words"
    assert params.training.reinforcement_learning_rate_multiplier == 0.2
    # base.yaml and the schema supply what the original file does not set
    assert params.training.reward_model_epochs == 30 and params.training.deploy_model is True
    notes = "\n".join(migration.notes)
    assert "vertex_ai.staging_bucket: became vertex_ai.pipeline_root" in notes
    assert "training.batch_size: dropped: GCPC's RLHF pipeline fixes the batch size at 64" in notes


@pytest.mark.parametrize("value", ["32", "128", "'64'", "true", "64.5", "null"])
def test_a_batch_size_other_than_64_is_a_config_error_at_its_line(
    tmp_path: Path, params_dir: Path, value: str
) -> None:
    config = write(
        tmp_path / "old.yaml", PRODUCTION.replace("batch_size: 64", f"batch_size: {value}")
    )
    with pytest.raises(ConfigError) as caught:
        legacy.load(config, params_dir=params_dir)
    [problem] = caught.value.problems
    assert problem.startswith(f"{config}:17: training.batch_size: ")
    assert "fixes the batch size at 64; remove the key" in problem


@pytest.mark.parametrize(
    ("old", "new", "line", "key", "says"),
    [
        ("kl_coeff: 0.1", "kl_coef: 0.1", 15, "training.kl_coef", "unknown key"),
        (
            'staging_bucket: "gs://your-project-rlhf-staging"',
            'staging_bucket: "/tmp/staging"',
            22,
            "vertex_ai.staging_bucket",
            "must be a gs://BUCKET/PATH",
        ),
        ('region: "us-central1"', 'region: "mars-1"', 21, "vertex_ai.region", "does not run in"),
        ("preference_size: 50000", "preference_size: -3", 6, "dataset.preference_size", "positive"),
        (
            'large_model_reference: "llama-2-7b"',
            'large_model_reference: "gpt-9"',
            10,
            "training.large_model_reference",
            "unsupported model",
        ),
    ],
)
def test_errors_name_the_original_file_line_and_key(
    tmp_path: Path, params_dir: Path, old: str, new: str, line: int, key: str, says: str
) -> None:
    assert old in PRODUCTION
    config = write(tmp_path / "old.yaml", PRODUCTION.replace(old, new))
    with pytest.raises(ConfigError) as caught:
        legacy.load(config, params_dir=params_dir)
    text = caught.value.render()
    assert f"{config}:{line}: {key}" in text and says in text, text
    assert "rlhf-legacy-" not in text  # never the scratch copy


def test_migrate_writes_an_environment_that_loads_the_same(
    production: Path, params_dir: Path
) -> None:
    before = production.read_bytes()
    target, _ = legacy.migrate(production, params_dir)
    assert target == params_dir / "production.yaml"
    assert production.read_bytes() == before  # the source is never modified
    text = target.read_text(encoding="utf-8")
    assert "staging_bucket" not in yaml.safe_load(text)["vertex_ai"]
    assert "batch_size" not in yaml.safe_load(text)["training"]
    assert "#   vertex_ai.staging_bucket: became vertex_ai.pipeline_root" in text
    migrated = load_params("production", params_dir=params_dir)
    read, _ = legacy.load(production, params_dir=params_dir)
    assert dataclasses.asdict(migrated) == dataclasses.asdict(read)


def test_migrate_refuses_to_overwrite(production: Path, params_dir: Path) -> None:
    existing = write(params_dir / "production.yaml", "# mine\n")
    with pytest.raises(ConfigError, match="already exists; not overwritten"):
        legacy.migrate(production, params_dir)
    assert existing.read_text() == "# mine\n"
    target, _ = legacy.migrate(production, params_dir, env="prod-eu")
    assert target.name == "prod-eu.yaml"


def test_migrate_writes_nothing_for_an_invalid_file(tmp_path: Path, params_dir: Path) -> None:
    config = write(tmp_path / "bad_config.yaml", PRODUCTION.replace("kl_coeff", "kl_coef"))
    before = sorted(p.name for p in params_dir.iterdir())
    with pytest.raises(ConfigError, match="unknown key"):
        legacy.migrate(config, params_dir)
    assert sorted(p.name for p in params_dir.iterdir()) == before


@pytest.mark.parametrize("env", ["Prod", "../escape", "base", "a b", "", "a_b", "x" * 31])
def test_migrate_refuses_bad_environment_names(
    production: Path, params_dir: Path, env: str
) -> None:
    with pytest.raises(ConfigError, match="environment name"):
        legacy.migrate(production, params_dir, env=env or "-")
    assert not (params_dir.parent / "escape.yaml").exists()


def test_a_parameter_file_is_not_migrated(params_dir: Path) -> None:
    with pytest.raises(ConfigError, match="already a parameter file"):
        legacy.migrate(params_dir / "prod.yaml", params_dir, env="again")


def test_a_standalone_partial_original_file_reads_over_base(
    tmp_path: Path, params_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The original "Development Configuration": dataset and training only, in configs/.
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "rlhf-test-project")
    config = write(
        tmp_path / "configs" / "development_config.yaml",
        "dataset:\n"
        '  preference_dataset: "gs://vertex-ai/generative-ai/rlhf/text_small/p/*.jsonl"\n'
        '  prompt_dataset: "gs://vertex-ai/generative-ai/rlhf/text_small/q/*.jsonl"\n'
        "  preference_size: 3000\n"
        "  prompt_size: 2000\n"
        "training:\n"
        "  reward_model_train_steps: 1410\n"
        "  reinforcement_learning_train_steps: 320\n",
    )
    params, _ = legacy.load(config, params_dir=params_dir)
    assert params.vertex_ai.pipeline_root == "gs://rlhf-test-project-rlhf/pipeline_root"
    assert legacy.default_env_name(config) == "development"
    assert legacy.default_env_name("configs/small_dataset_config.yaml") == "small-dataset"


def test_migrate_config_command(production: Path, params_dir: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert cli.main(["migrate-config", str(production), "--params-dir", str(params_dir)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"wrote {params_dir}/production.yaml from {production} (not modified)")
    assert "vertex_ai.staging_bucket: became vertex_ai.pipeline_root" in out
    assert cli.main(["migrate-config", str(production), "--params-dir", str(params_dir)]) == 12
    assert "already exists; not overwritten" in capsys.readouterr().err


def test_migrate_config_subprocess_has_no_traceback(tmp_path: Path, params_dir: Path) -> None:
    config = write(tmp_path / "old.yaml", PRODUCTION.replace("batch_size: 64", "batch_size: 8"))
    result = subprocess.run(
        [sys.executable, "-m", "vertex_rlhf", "migrate-config", str(config)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert result.returncode == 12
    assert result.stderr.startswith(f"error[CONFIG_002]: {config}:17: training.batch_size: 8")
    assert "Traceback" not in result.stderr
    assert not (REPO / "params" / "old.yaml").exists()


def make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-s", "--no-print-directory", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )


def test_make_migrate_config_passes_the_file_and_only_an_explicit_env() -> None:
    named = make("-n", "migrate-config", "CONFIG=configs/old.yaml", "ENV=prod-eu")
    assert ".venv/bin/rlhf migrate-config 'configs/old.yaml' --env 'prod-eu'" in named.stdout
    default = make("-n", "migrate-config", "CONFIG=configs/old.yaml")
    assert ".venv/bin/rlhf migrate-config 'configs/old.yaml'" in default.stdout
    assert "--env" not in default.stdout  # not the Makefile's default ENV=dev
    missing = make("migrate-config")
    assert missing.returncode == 2  # make's status for a failed recipe
    assert "error[CONFIG_002]: set CONFIG=<original config file>" in missing.stderr


@pytest.mark.parametrize(
    "file_name",
    [
        "base_config.yaml",  # the seed's own name: 'base' is reserved
        "base.yml",
        "2024_config.yaml",
        "my config.yaml",
        "prodé_config.yaml",
        "___.yaml",
        "a" * 80 + "_config.yaml",
        "config.yaml",
    ],
)
def test_original_file_names_give_a_valid_environment_name(file_name: str) -> None:
    name = legacy.default_env_name(f"configs/{file_name}")
    assert ENV_NAME.match(name) and name != "base", name
