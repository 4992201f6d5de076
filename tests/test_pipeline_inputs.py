"""Each pipeline input is declared once: schema keys, types and defaults equal the template's.

A key of ``config/params.py`` marked ``metadata=PIPELINE_INPUT`` is sent as the input of
the same name; everything else about the input (description, wiring into GCPC) is the
pipeline's signature in ``pipelines/rlhf_tuning.py``. ``params/base.yaml`` holds only
deliberate choices, never a default again.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from omegaconf import MISSING

from tests.conftest import REPO
from vertex_rlhf.cloud import submission
from vertex_rlhf.config import params
from vertex_rlhf.template import signature

COMPILED = REPO / "compiled"
BASE = REPO / "params" / "base.yaml"
VARIANTS = [False, True]
# Python type of a schema key -> the compiled input's parameterType.
KFP_TYPES = {
    str: "STRING",
    int: "NUMBER_INTEGER",
    float: "NUMBER_DOUBLE",
    bool: "BOOLEAN",
    list: "LIST",
}


def compiled_inputs(notify: bool) -> dict[str, dict[str, Any]]:
    path = submission.local_template(COMPILED, notify=notify).path
    assert path is not None
    return signature.template_inputs(path)


def schema_fields() -> dict[str, tuple[dataclasses.Field[Any], Any]]:
    """Input name -> (its schema field, its type hint)."""
    found = {}
    for section in dataclasses.fields(params.RLHFParams):
        schema: Any = section.default_factory
        hints = typing.get_type_hints(schema)
        for f in dataclasses.fields(schema):
            if f.metadata.get("pipeline_input"):
                found[f.name] = (f, hints[f.name])
    return found


def kfp_type(hint: Any) -> str:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    plain = typing.get_origin(hint) or hint
    if plain is typing.Union:
        plain = args[0]
    return KFP_TYPES[plain]


def schema_default(f: dataclasses.Field[Any]) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


@pytest.mark.parametrize("notify", VARIANTS, ids=["plain", "notify"])
def test_schema_inputs_are_the_templates_inputs(notify: bool) -> None:
    inputs = set(compiled_inputs(notify)) - set(signature.JOB_INPUTS)
    declared = {name for _, name, _ in signature.input_keys()}
    assert declared == set(schema_fields())
    expected = declared if notify else declared - {signature.NOTIFY_INPUT}
    assert inputs == expected


@pytest.mark.parametrize("notify", VARIANTS, ids=["plain", "notify"])
@pytest.mark.parametrize("name", sorted(schema_fields()))
def test_each_input_has_one_type_and_one_default(notify: bool, name: str) -> None:
    inputs = compiled_inputs(notify)
    if name not in inputs:
        assert name == signature.NOTIFY_INPUT and not notify
        return
    f, hint = schema_fields()[name]
    compiled = inputs[name]
    assert compiled["parameterType"] == kfp_type(hint), name
    default = schema_default(f)
    if default is MISSING:  # required in both
        assert not compiled.get("isOptional") and "defaultValue" not in compiled, name
    elif name == signature.NOTIFY_INPUT:
        # [] picks the variant without e-mail; the -notify variant cannot run without them.
        assert default == [] and not compiled.get("isOptional")
    elif default is None:
        # Unset: the value is left out and the template's own default or absence applies.
        assert compiled.get("isOptional") or "defaultValue" in compiled, name
        assert compiled.get("defaultValue") in (None, 0, ""), name
    else:
        assert compiled.get("defaultValue") == default, name


def every_input_set() -> params.RLHFParams:
    """Parameters with every input key set to a value that is not its default."""
    return params.RLHFParams(
        dataset=params.DatasetParams(
            preference_dataset="gs://bucket/prefs/*.jsonl",
            prompt_dataset="gs://bucket/prompts/*.jsonl",
            eval_dataset="gs://bucket/eval/*.jsonl",
        ),
        training=params.TrainingParams(
            large_model_reference="Llama_2_7B",
            reward_model_epochs=20,
            reinforcement_learning_epochs=12,
            reward_model_train_steps=100,
            reinforcement_learning_train_steps=200,
            reward_model_learning_rate_multiplier=2,  # an int written in a file
            reinforcement_learning_rate_multiplier=0.5,
            kl_coeff=0.0,
            instruction="Summarize.",
            prompt_sequence_length=1024,
            target_sequence_length=128,
            accelerator_type="TPU",
            deploy_model=False,
            model_display_name="tuned",
            tensorboard_resource_id="projects/1/locations/us-central1/tensorboards/2",
            encryption_spec_key_name="projects/p/locations/l/keyRings/r/cryptoKeys/k",
        ),
        vertex_ai=params.VertexParams(
            project_id="my-project", pipeline_root="gs://b/r", notify_emails=["a@example.com"]
        ),
    )


@pytest.mark.parametrize(
    ("set_all", "notify"),
    [(True, True), (False, False)],
    ids=["every-key-set", "only-required"],
)
def test_the_generated_values_fit_the_template(set_all: bool, notify: bool) -> None:
    if set_all:
        chosen = every_input_set()
    else:
        chosen = every_input_set()
        chosen.dataset = params.DatasetParams(
            preference_dataset="gs://b/p", prompt_dataset="gs://b/q"
        )
        chosen.training = params.TrainingParams(large_model_reference="t5-small")
        chosen.vertex_ai.notify_emails = []
    values = signature.pipeline_parameter_values(chosen)
    inputs = compiled_inputs(notify)
    signature.check_against_signature(values, inputs, "template.yaml")
    if set_all:
        assert set(values) == set(schema_fields())
        assert values["large_model_reference"] == "llama-2-7b"  # the catalog's spelling
        assert values["reward_model_learning_rate_multiplier"] == 2.0
        assert isinstance(values["reward_model_learning_rate_multiplier"], float)
    else:  # unset keys are left out; the schema's defaults are the template's
        required = {"preference_dataset", "prompt_dataset", "large_model_reference"}
        for name, value in values.items():
            assert name in required or value == inputs[name]["defaultValue"], name
        left_out = set(schema_fields()) - set(values)
        assert all(inputs.get(n, {}).get("isOptional") for n in left_out - {"notify_emails"})


def base_leaves() -> list[tuple[str, Any, int]]:
    """(dotted key, value, line) of every key params/base.yaml sets."""
    node = yaml.compose(BASE.read_text(encoding="utf-8"))
    found = []

    def walk(mapping: Any, prefix: str) -> None:
        for key, value in mapping.value:
            name = f"{prefix}{key.value}"
            if isinstance(value, yaml.MappingNode) and prefix == "":
                walk(value, name + ".")
            else:
                found.append((name, yaml.safe_load(yaml.serialize(value)), key.start_mark.line))

    walk(node, "")
    return found


@pytest.mark.parametrize("key, value, line", base_leaves(), ids=lambda v: str(v))
def test_base_yaml_holds_only_deliberate_choices(key: str, value: Any, line: int) -> None:
    lines = BASE.read_text(encoding="utf-8").splitlines()
    above = lines[line - 1].strip() if line else ""
    assert above.startswith("#") or "#" in lines[line], f"{key}: say why in a comment"
    section, name = key.split(".", 1)
    schema: Any = {f.name: f.default_factory for f in dataclasses.fields(params.RLHFParams)}[
        section
    ]
    f = {f.name: f for f in dataclasses.fields(schema)}[name]
    assert value != schema_default(f), f"{key}: the schema default already says {value!r}"


def test_base_yaml_does_not_repeat_a_pipeline_default() -> None:
    # The same rule, stated for the inputs: their one default is the template's.
    inputs = compiled_inputs(True)
    for key, value, _ in base_leaves():
        name = key.split(".", 1)[1]
        if name in inputs and "defaultValue" in inputs[name]:
            assert value != inputs[name]["defaultValue"], key


def test_adding_an_input_needs_the_schema_and_the_pipeline_only() -> None:
    # The parameter values are generated from the schema's marks: no list of names in
    # the mapping module to keep in step.
    source = Path(signature.__file__).read_text(encoding="utf-8")
    for name in schema_fields():
        # The one value rewritten on its way, and the one that picks the variant.
        if name not in ("large_model_reference", signature.NOTIFY_INPUT):
            assert not re.search(rf"\b{name}\b", source), name
