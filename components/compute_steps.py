"""Component: compute the training steps from validated row counts."""

from typing import NamedTuple

from kfp import dsl

from components import BASE_IMAGE
from vertex_rlhf.steps import compute_training_steps


@dsl.component(
    base_image=BASE_IMAGE, install_kfp_package=False, additional_funcs=[compute_training_steps]
)
def compute_steps(
    preference_rows: int,
    prompt_rows: int,
    reward_model_epochs: int,
    reinforcement_learning_epochs: int,
    reward_model_train_steps: int = 0,
    reinforcement_learning_train_steps: int = 0,
    job_uuid: str = "",
) -> NamedTuple(  # type: ignore[valid-type]
    "TrainingSteps",
    [("reward_model_train_steps", int), ("reinforcement_learning_train_steps", int)],
):
    """Computes ceil(rows / 64) * epochs for the reward model and for RL.

    Args:
        preference_rows: validated rows of the preference dataset.
        prompt_rows: validated rows of the prompt dataset.
        reward_model_epochs: passes over the preference data.
        reinforcement_learning_epochs: passes over the prompt data.
        reward_model_train_steps: explicit steps (> 0) override the computed ones.
        reinforcement_learning_train_steps: explicit steps (> 0) override the computed ones.
        job_uuid: the job's uuid; not read: it makes the task's cache key unique to the
            job, so the steps follow this job's row counts even with job-level caching.

    Returns:
        The step counts GCPC's rlhf_pipeline receives.
    """
    reward_steps, rl_steps, warnings = compute_training_steps(
        preference_rows,
        prompt_rows,
        reward_model_epochs,
        reinforcement_learning_epochs,
        reward_model_train_steps,
        reinforcement_learning_train_steps,
    )
    for warning in warnings:
        print(f"WARNING: {warning}")
    print(f"reward_model_train_steps={reward_steps} reinforcement_learning_train_steps={rl_steps}")
    TrainingSteps = NamedTuple(
        "TrainingSteps",
        [("reward_model_train_steps", int), ("reinforcement_learning_train_steps", int)],
    )
    return TrainingSteps(reward_steps, rl_steps)
