"""Findings of trying the project as a new user would, on inputs no other test used."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from vertex_rlhf.config import legacy
from vertex_rlhf.config.environment import ENV_NAME

# The seed's own development config, saved under the names users give such files.
SEED_DEVELOPMENT = """\
dataset:
  preference_dataset: "gs://vertex-ai/generative-ai/rlhf/text_small/summarize_from_feedback_tfds/comparisons/train/*.jsonl"
  prompt_dataset: "gs://vertex-ai/generative-ai/rlhf/text_small/reddit_tfds/train/*.jsonl"
  eval_dataset: "gs://vertex-ai/generative-ai/rlhf/text_small/reddit_tfds/val/*.jsonl"
  preference_size: 3000
  prompt_size: 2000

training:
  reward_model_train_steps: 1410
  reinforcement_learning_train_steps: 320
"""


def seed_main(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "GOOGLE_CLOUD_PROJECT"}
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "main.py"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environ,
        timeout=120,
    )


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


@pytest.mark.parametrize("where", ["repo", "elsewhere"])
def test_seed_calculate_steps_with_base_config(where: str, tmp_path: Path) -> None:
    """`python main.py --config configs/base_config.yaml --calculate-steps`, as the seed
    writes it, from the checkout and from a project folder of the user's."""
    cwd = tmp_path
    (cwd / "configs").mkdir()
    config = cwd / "configs" / "base_config.yaml"
    config.write_text(SEED_DEVELOPMENT, encoding="utf-8")
    if where == "repo":
        cwd = REPO
    result = seed_main("--config", str(config), "--calculate-steps", cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert (
        "TrainingSteps(reward_model_steps=1410, reinforcement_learning_steps=320)" in result.stdout
    )
