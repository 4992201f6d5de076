"""Step maths: ceil(rows / 64) * epochs, overrides, guidance warnings, errors."""

from __future__ import annotations

import pytest

from vertex_rlhf.steps import TrainingSteps, calculate_training_steps, compute_training_steps


def test_published_worked_example() -> None:
    steps, warnings = calculate_training_steps(3000, 2000, 30, 10)
    assert steps == TrainingSteps(reward_model_steps=1410, reinforcement_learning_steps=320)
    assert repr(steps) == (
        "TrainingSteps(reward_model_steps=1410, reinforcement_learning_steps=320)"
    )
    assert warnings == []


@pytest.mark.parametrize(
    ("rows", "epochs", "expected"),
    [(64, 1, 1), (65, 1, 2), (1, 20, 20), (3008, 30, 47 * 30), (3009, 30, 48 * 30), (128, 10, 20)],
)
def test_partial_batches_round_up(rows: int, epochs: int, expected: int) -> None:
    reward, rl, _ = compute_training_steps(rows, rows, epochs, epochs)
    assert reward == rl == expected


def test_explicit_steps_override_and_skip_epoch_checks() -> None:
    reward, rl, warnings = compute_training_steps(3000, 2000, 0, -1, 10000, 7)
    assert (reward, rl) == (10000, 7)
    assert not any("epochs" in w for w in warnings)


def test_one_override_leaves_the_other_computed() -> None:
    reward, rl, _ = compute_training_steps(3000, 2000, 30, 10, reward_model_train_steps=5)
    assert (reward, rl) == (5, 320)


def test_warnings_outside_guidance() -> None:
    _, _, warnings = compute_training_steps(500, 2000, 40, 25)
    text = "\n".join(warnings)
    assert "reward_model_epochs=40" in text and "20-30" in text
    assert "reinforcement_learning_epochs=25" in text and "10-20" in text
    assert "only 500 preference pairs" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, 2000, 30, 10), "preference dataset has no rows"),
        ((3000, 0, 30, 10), "prompt dataset has no rows"),
        ((3000, 2000, 0, 10), "reward_model_epochs must be a positive"),
        ((3000, 2000, 30, -2), "reinforcement_learning_epochs must be a positive"),
        ((3000, 2000, 30, 10, -5), "explicit step counts must be positive"),
    ],
)
def test_errors(args: tuple[int, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compute_training_steps(*args)
