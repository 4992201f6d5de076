"""Each environment's parameters are accepted by the real aiplatform.PipelineJob, offline."""

from __future__ import annotations

from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials

from tests.conftest import REPO
from vertex_rlhf.config.params import load_params
from vertex_rlhf.errors import ConfigError
from vertex_rlhf.template import signature

TEMPLATE = signature.current_template_path(REPO / "compiled")


def build_job(values: dict[str, Any], env: str = "dev") -> Any:
    from google.cloud import aiplatform

    params = load_params(env, params_dir=REPO / "params")
    return aiplatform.PipelineJob(
        display_name=params.vertex_ai.pipeline_display_name,
        template_path=str(TEMPLATE),
        parameter_values=values,
        pipeline_root=params.vertex_ai.pipeline_root,
        enable_caching=params.vertex_ai.enable_caching,
        credentials=AnonymousCredentials(),
        project=params.vertex_ai.project_id,
        location=params.vertex_ai.region,
    )


@pytest.mark.usefixtures("project_env")
@pytest.mark.parametrize("env", ["dev", "prod", "local"])
def test_resolved_parameters_build_a_pipeline_job(env: str) -> None:
    params = load_params(env, params_dir=REPO / "params")
    values = signature.pipeline_parameter_values(params)
    signature.check_against_signature(values, signature.template_inputs(TEMPLATE), TEMPLATE.name)
    job = build_job(values, env)
    runtime = job._gca_resource.runtime_config
    assert runtime.gcs_output_directory == params.vertex_ai.pipeline_root
    sent = {key: value for key, value in runtime.parameter_values.items()}
    assert sent["preference_dataset"] == params.dataset.preference_dataset
    assert sent["reward_model_epochs"] == params.training.reward_model_epochs
    assert sent["kl_coeff"] == pytest.approx(params.training.kl_coeff)
    # caching stays as compiled: the dataset checks are not cached
    tasks = job._gca_resource.pipeline_spec["root"]["dag"]["tasks"]
    assert not tasks["validate-dataset"].get("cachingOptions", {}).get("enableCache")


@pytest.mark.usefixtures("project_env")
def test_dev_sends_the_worked_example_inputs() -> None:
    values = signature.pipeline_parameter_values(load_params("dev", params_dir=REPO / "params"))
    assert "reward_model_train_steps" not in values  # unset: computed in the pipeline
    assert values["large_model_reference"] == "llama-2-7b"
    assert "model_display_name" not in values  # unset: the template's default applies


@pytest.mark.usefixtures("project_env")
def test_the_sdk_itself_rejects_an_unknown_input() -> None:
    # For schema 2.1 templates the SDK checks names only, not types: hence our own
    # check_against_signature (below) before anything is submitted.
    values = signature.pipeline_parameter_values(load_params("dev", params_dir=REPO / "params"))
    with pytest.raises(ValueError, match="kl_coef is not found"):
        build_job({**values, "kl_coef": 0.2})


def test_signature_check_catches_unknown_wrong_and_missing_inputs() -> None:
    inputs = signature.template_inputs(TEMPLATE)
    with pytest.raises(ConfigError) as caught:
        signature.check_against_signature(
            {
                "prompt_dataset": "gs://b/p",
                "kl_coef": 0.1,
                "deploy_model": "yes",
                "reward_model_epochs": True,
            },
            inputs,
            TEMPLATE.name,
        )
    text = "\n".join(caught.value.problems)
    assert "has no input 'kl_coef'" in text
    assert "input 'deploy_model' takes BOOLEAN, got 'yes'" in text
    assert "input 'reward_model_epochs' takes NUMBER_INTEGER, got True" in text
    assert "required input 'preference_dataset' has no value" in text
    assert "required input 'large_model_reference' has no value" in text
