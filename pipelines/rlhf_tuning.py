"""The RLHF tuning pipeline: validate the datasets, compute the steps, run GCPC's RLHF graph.

``PIPELINE_VERSION`` is the one place the template version is set; ``make compile``
writes ``compiled/<PIPELINE_NAME>-<PIPELINE_VERSION>.yaml``.
"""

from typing import List, Optional

from google_cloud_pipeline_components.preview.llm import rlhf_pipeline
from google_cloud_pipeline_components.v1.vertex_notification_email import (
    VertexNotificationEmailOp,
)
from kfp import dsl

from components.compute_steps import compute_steps
from components.validate_dataset import validate_dataset
from vertex_rlhf.config.catalog import MODELS

PIPELINE_NAME = "rlhf-tuning"
PIPELINE_VERSION = "1.2.0"

# The layout each model reads (chat models: messages rows; text models: input_text),
# from the catalog; each dataset check refuses rows of the other layout before booking.
MODEL_LAYOUTS = {name: "chat" if model.chat else "text" for name, model in MODELS.items()}

# Resolved by Vertex AI at run time to the job's own project and region, so the
# template stays environment-agnostic (the same placeholders GCPC uses).
PROJECT_PLACEHOLDER = "{{$.pipeline_google_cloud_project_id}}"
LOCATION_PLACEHOLDER = "{{$.pipeline_google_cloud_location}}"
# Resolved per job (dsl.PIPELINE_JOB_ID_PLACEHOLDER) and given to our own tasks as an
# input: a task's cache key covers its resolved input values, so theirs never matches an
# earlier job's and they run every time, even when a job turns caching on (which the SDK
# applies to every task) to resume GCPC's training tasks.
JOB_UUID = dsl.PIPELINE_JOB_ID_PLACEHOLDER


@dsl.pipeline(
    name=PIPELINE_NAME,
    description=(
        f"RLHF tuning on Vertex AI, version {PIPELINE_VERSION}: validates the datasets,"
        " computes the training steps from their row counts, then runs GCPC's"
        " preview.llm.rlhf_pipeline; e-mails notify_emails when the run ends."
    ),
)
def rlhf_tuning(
    preference_dataset: str,
    prompt_dataset: str,
    large_model_reference: str,
    eval_dataset: Optional[str] = None,
    reward_model_epochs: int = 30,
    reinforcement_learning_epochs: int = 10,
    reward_model_train_steps: int = 0,
    reinforcement_learning_train_steps: int = 0,
    reward_model_learning_rate_multiplier: float = 1.0,
    reinforcement_learning_rate_multiplier: float = 1.0,
    kl_coeff: float = 0.1,
    instruction: Optional[str] = None,
    prompt_sequence_length: int = 512,
    target_sequence_length: int = 64,
    accelerator_type: str = "GPU",
    deploy_model: bool = True,
    model_display_name: Optional[str] = None,
    tensorboard_resource_id: str = "",
    encryption_spec_key_name: str = "",
    project: str = PROJECT_PLACEHOLDER,
    location: str = LOCATION_PLACEHOLDER,
    notify_emails: List[str] = [],  # noqa: B006 (kfp reads the default; never mutated)
) -> None:
    """Tunes a large model with RLHF after checking every row of its data.

    Args:
        preference_dataset: gs:// path or glob of the JSONL preference dataset (candidate_0, candidate_1, choice, and input_text or messages).
        prompt_dataset: gs:// path or glob of the JSONL prompt dataset (input_text or messages).
        large_model_reference: base model, e.g. llama-2-7b, t5-small, text-bison@002, chat-bison@001.
        eval_dataset: optional gs:// path or glob of an eval dataset (preference rows give reward-model metrics, prompt rows bulk inference).
        reward_model_epochs: passes over the preference data; steps = ceil(rows / 64) * epochs. Guidance 20-30.
        reinforcement_learning_epochs: passes over the prompt data; steps = ceil(rows / 64) * epochs. Guidance 10-20.
        reward_model_train_steps: explicit reward-model steps; 0 computes them from rows and epochs.
        reinforcement_learning_train_steps: explicit RL steps; 0 computes them from rows and epochs.
        reward_model_learning_rate_multiplier: multiplies the reward model's base learning rate.
        reinforcement_learning_rate_multiplier: multiplies the base learning rate during RL.
        kl_coeff: KL penalty that keeps the policy near the base model; 0 disables it.
        instruction: task instruction prepended to text inputs (default context for chat rows).
        prompt_sequence_length: maximum tokens of input text, at most 8192.
        target_sequence_length: maximum tokens of target text, at most 1024.
        accelerator_type: GPU (8x A100 80GB, us-central1) or TPU (64x v3, europe-west4).
        deploy_model: deploy the tuned model to an endpoint (bison models only).
        model_display_name: name of the tuned model in the Model Registry.
        tensorboard_resource_id: projects/NUMBER/locations/REGION/tensorboards/ID to upload metrics to.
        encryption_spec_key_name: CMEK key; only with GPU in us-central1.
        project: project for the custom jobs; defaults to the pipeline's project.
        location: region for non-tuning components; defaults to the pipeline's region.
        notify_emails: up to 3 e-mail addresses Vertex AI notifies when the run ends, succeeded or failed; [] sends none.

    The tuned model's and endpoint's resource names are outputs of the RLHF task
    (``model_resource_name``, ``endpoint_resource_name``; empty unless a bison model was
    deployed): kfp allows no pipeline outputs from inside an exit handler.
    """
    # Vertex runs the notification as the exit task, whatever the body's outcome. kfp
    # cannot put an exit task under a condition, so with [] it runs and mails no one.
    notify = VertexNotificationEmailOp(recipients=notify_emails)
    # Never cached: every run's end must be reported.
    notify.set_display_name("Notify by e-mail").set_caching_options(False)
    model = {"large_model_reference": large_model_reference, "model_layouts": MODEL_LAYOUTS}
    with dsl.ExitHandler(notify, name="rlhf-run"):
        preference = validate_dataset(
            kind="preference", dataset=preference_dataset, job_uuid=JOB_UUID, **model
        )
        preference.set_display_name("Validate preference dataset").set_caching_options(False)
        prompts = validate_dataset(
            kind="prompt", dataset=prompt_dataset, job_uuid=JOB_UUID, **model
        )
        prompts.set_display_name("Validate prompt dataset").set_caching_options(False)
        evals = validate_dataset(kind="eval", dataset=eval_dataset, job_uuid=JOB_UUID, **model)
        evals.set_display_name("Validate eval dataset").set_caching_options(False)

        steps = compute_steps(
            preference_rows=preference.outputs["rows"],
            prompt_rows=prompts.outputs["rows"],
            reward_model_epochs=reward_model_epochs,
            reinforcement_learning_epochs=reinforcement_learning_epochs,
            reward_model_train_steps=reward_model_train_steps,
            reinforcement_learning_train_steps=reinforcement_learning_train_steps,
            job_uuid=JOB_UUID,
        )
        # The eval check runs beside the others; nothing is booked until it passes.
        steps.set_display_name("Compute training steps").set_caching_options(False).after(evals)

        rlhf_pipeline(
            prompt_dataset=prompt_dataset,
            preference_dataset=preference_dataset,
            large_model_reference=large_model_reference,
            model_display_name=model_display_name,
            prompt_sequence_length=prompt_sequence_length,
            target_sequence_length=target_sequence_length,
            reward_model_learning_rate_multiplier=reward_model_learning_rate_multiplier,
            reinforcement_learning_rate_multiplier=reinforcement_learning_rate_multiplier,
            reward_model_train_steps=steps.outputs["reward_model_train_steps"],
            reinforcement_learning_train_steps=steps.outputs["reinforcement_learning_train_steps"],
            kl_coeff=kl_coeff,
            instruction=instruction,
            deploy_model=deploy_model,
            eval_dataset=eval_dataset,
            project=project,
            accelerator_type=accelerator_type,
            location=location,
            encryption_spec_key_name=encryption_spec_key_name,
            tensorboard_resource_id=tensorboard_resource_id,
        ).set_display_name("RLHF")
