"""Warnings about plausible-but-unusual parameters: one function, whatever command asks.

``steps``, ``check`` and ``submit`` (dry run or not) all print these, so a value that
warns in one warns in all. They are warnings, not errors: the values are valid.
"""

from __future__ import annotations

from vertex_rlhf.config.params import RLHFParams
from vertex_rlhf.steps import compute_training_steps

# More steps than this for either trainer is far outside any published recipe (GCPC's
# default is 1000, the original production configuration 10000) and days of 8 A100s.
MAX_PLAUSIBLE_STEPS = 100_000
# Stands in for an unknown row count: large enough that no row-count warning fires, so
# only the warnings that depend on the parameters themselves remain.
_ROWS_UNKNOWN = 1000


def run_warnings(
    params: RLHFParams, preference_rows: int | None, prompt_rows: int | None
) -> list[str]:
    """The guidance warnings for a run of these parameters.

    Args:
        params: checked parameters (the training section is used).
        preference_rows: rows of the preference dataset, or None when unknown.
        prompt_rows: rows of the prompt dataset, or None when unknown.

    Returns:
        Warning texts, empty when everything is within the guidance.
    """
    t = params.training
    explicit_reward = t.reward_model_train_steps or 0
    explicit_rl = t.reinforcement_learning_train_steps or 0
    try:
        reward_steps, rl_steps, warnings = compute_training_steps(
            preference_rows or _ROWS_UNKNOWN,
            prompt_rows or _ROWS_UNKNOWN,
            t.reward_model_epochs,
            t.reinforcement_learning_epochs,
            explicit_reward,
            explicit_rl,
        )
    except ValueError:  # reported as errors by the parameter checks
        return []
    counts = {
        "reward-model": (reward_steps, explicit_reward or preference_rows, "reward_model"),
        "reinforcement-learning": (rl_steps, explicit_rl or prompt_rows, "reinforcement_learning"),
    }
    for what, (steps, known, prefix) in counts.items():
        if known and steps > MAX_PLAUSIBLE_STEPS:
            warnings.append(
                f"{steps:,} {what} steps is implausibly many (more than"
                f" {MAX_PLAUSIBLE_STEPS:,}; GCPC's default is 1,000): check"
                f" training.{prefix}_epochs and training.{prefix}_train_steps"
            )
    return warnings
