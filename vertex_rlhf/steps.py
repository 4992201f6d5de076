"""Training-step maths: ``steps = ceil(rows / 64) * epochs``.

``compute_training_steps`` is shipped by source into the ``compute_training_steps``
component (kfp ``additional_funcs``), so it must stay self-contained: imports inside
the body, ``typing`` names only, no module-level names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple


def compute_training_steps(
    preference_rows: int,
    prompt_rows: int,
    reward_model_epochs: int,
    reinforcement_learning_epochs: int,
    reward_model_train_steps: int = 0,
    reinforcement_learning_train_steps: int = 0,
    batch_size: int = 64,
) -> Tuple[int, int, List[str]]:
    """Computes the reward-model and RL step counts from row counts and epochs.

    An explicit step count (> 0) overrides the computed one; its epochs are then
    not used. Outside the published guidance (20-30 reward epochs, 10-20 RL epochs,
    at least 1000 preference pairs) a warning is returned, not an error.

    Args:
        preference_rows: rows in the preference dataset.
        prompt_rows: rows in the prompt dataset.
        reward_model_epochs: passes over the preference data.
        reinforcement_learning_epochs: passes over the prompt data.
        reward_model_train_steps: explicit reward-model steps; 0 computes them.
        reinforcement_learning_train_steps: explicit RL steps; 0 computes them.
        batch_size: examples per step (fixed at 64 inside GCPC's pipeline).

    Returns:
        ``(reward_model_steps, reinforcement_learning_steps, warnings)``.

    Raises:
        ValueError: zero rows, a non-positive epoch count where steps are computed,
            or a negative explicit step count.
    """
    import math

    warnings: List[str] = []
    if reward_model_train_steps < 0 or reinforcement_learning_train_steps < 0:
        raise ValueError("explicit step counts must be positive (0 means: compute from epochs)")

    def steps_for(rows: int, epochs: int, dataset: str, epochs_name: str) -> int:
        if rows <= 0:
            raise ValueError(f"the {dataset} dataset has no rows: cannot compute training steps")
        if epochs <= 0:
            raise ValueError(f"{epochs_name} must be a positive whole number, got {epochs}")
        return math.ceil(rows / batch_size) * epochs

    if reward_model_train_steps > 0:
        reward_steps = reward_model_train_steps
    else:
        reward_steps = steps_for(
            preference_rows, reward_model_epochs, "preference", "reward_model_epochs"
        )
        if not 20 <= reward_model_epochs <= 30:
            warnings.append(
                f"reward_model_epochs={reward_model_epochs} is outside the published guidance"
                " of 20-30"
            )
    if reinforcement_learning_train_steps > 0:
        rl_steps = reinforcement_learning_train_steps
    else:
        rl_steps = steps_for(
            prompt_rows,
            reinforcement_learning_epochs,
            "prompt",
            "reinforcement_learning_epochs",
        )
        if not 10 <= reinforcement_learning_epochs <= 20:
            warnings.append(
                f"reinforcement_learning_epochs={reinforcement_learning_epochs} is outside the"
                " published guidance of 10-20 (more invites reward hacking)"
            )
    if 0 < preference_rows < 1000:
        warnings.append(
            f"only {preference_rows} preference pairs: the guidance is at least 1000"
            " (a few thousand for a stable reward model)"
        )
    return reward_steps, rl_steps, warnings


@dataclass(frozen=True)
class TrainingSteps:
    """Step counts for one run; the repr is the one the original description prints."""

    reward_model_steps: int
    reinforcement_learning_steps: int


def calculate_training_steps(
    preference_size: int,
    prompt_size: int,
    reward_epochs: int = 30,
    rl_epochs: int = 10,
    reward_model_train_steps: int = 0,
    reinforcement_learning_train_steps: int = 0,
) -> Tuple[TrainingSteps, List[str]]:
    """Typed wrapper around ``compute_training_steps`` for the CLI and library users.

    Args:
        preference_size: rows in the preference dataset.
        prompt_size: rows in the prompt dataset.
        reward_epochs: reward-model epochs.
        rl_epochs: reinforcement-learning epochs.
        reward_model_train_steps: explicit reward-model steps; 0 computes them.
        reinforcement_learning_train_steps: explicit RL steps; 0 computes them.

    Returns:
        The steps and the guidance warnings.
    """
    reward_steps, rl_steps, warnings = compute_training_steps(
        preference_size,
        prompt_size,
        reward_epochs,
        rl_epochs,
        reward_model_train_steps,
        reinforcement_learning_train_steps,
    )
    return TrainingSteps(reward_steps, rl_steps), warnings
