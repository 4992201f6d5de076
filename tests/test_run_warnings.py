"""Guidance warnings do not depend on the command: steps, check and a dry run agree."""

from __future__ import annotations

import pytest

from tests.test_environment_arg import rlhf
from vertex_rlhf.config.guidance import MAX_PLAUSIBLE_STEPS, run_warnings
from vertex_rlhf.config.params import load_params

COMMANDS = [["steps"], ["check"], ["submit", "--dry-run"], ["validate-data"]]


def warnings_of(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("warning: ")]


@pytest.mark.parametrize(
    ("env", "overrides"),
    [
        ("dev", ["training.reward_model_epochs=100000000"]),
        ("dev", ["training.reinforcement_learning_epochs=3"]),
        ("dev", ["training.reward_model_train_steps=5000000"]),
        ("dev", ["dataset.preference_size=200"]),
        ("local", []),
        ("local", ["training.reinforcement_learning_epochs=500000000"]),
    ],
)
def test_the_same_warnings_from_every_command(env: str, overrides: list[str]) -> None:
    seen = {}
    for command in COMMANDS:
        if env == "local" and command[0] == "submit":
            continue  # local paths cannot be submitted (tested elsewhere)
        if env != "local" and command[0] == "validate-data":
            continue  # it reads the datasets: gs:// ones are not reachable here
        result = rlhf(command[0], env, *overrides, *command[1:])
        assert result.returncode == 0, result.stderr
        seen[command[0]] = warnings_of(result.stdout + result.stderr)
    first = next(iter(seen.values()))
    assert first, "each case is meant to warn"
    assert all(found == first for found in seen.values()), seen


def test_billions_of_steps_warn_as_implausible() -> None:
    params = load_params("dev", ["training.reward_model_epochs=100000000"], sections=("training",))
    [guidance, implausible] = run_warnings(params, 3000, 2000)
    assert "outside the published guidance" in guidance
    assert implausible.startswith("4,700,000,000 reward-model steps is implausibly many")
    assert "training.reward_model_epochs" in implausible


def test_unknown_row_counts_still_warn_on_the_parameters() -> None:
    params = load_params("dev", ["training.reward_model_epochs=3"], sections=("training",))
    warnings = run_warnings(params, None, None)
    assert warnings == ["reward_model_epochs=3 is outside the published guidance of 20-30"]
    assert run_warnings(load_params("dev", sections=("training",)), None, None) == []


def test_the_bound_is_above_the_production_example() -> None:
    assert MAX_PLAUSIBLE_STEPS > 10_000
    prod = load_params("prod", sections=("dataset", "training"))
    assert run_warnings(prod, 100_000, 50_000) == []
