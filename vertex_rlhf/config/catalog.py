"""The one table of what GCPC 2.22's RLHF pipeline supports: models, accelerators, regions.

Sources (google-cloud-pipeline-components 2.22.0):
- models: ``_implementation/llm/function_based.py`` (``is_supported=True`` entries);
- accelerators per model: the ``large_model_reference`` docstring of
  ``preview/llm/rlhf/component.py`` (t5-large/xl/xxl only in europe-west4, i.e. TPU);
- regions: ``_implementation/llm/validate_pipeline.py``;
- hardware and CMEK: ``resolve_machine_spec`` and ``validate_pipeline``.
"""

from __future__ import annotations

from dataclasses import dataclass

GPU = "GPU"
TPU = "TPU"
ACCELERATORS = (GPU, TPU)

# What each accelerator type books, and where tuning runs (GCPC's resolve_machine_spec).
HARDWARE = {
    GPU: "a2-ultragpu-8g, 8x NVIDIA A100 80GB, tuning in us-central1",
    TPU: "64x TPU v3, tuning in europe-west4",
}

# Pipeline regions GCPC's validate_pipeline accepts.
REGIONS = (
    "asia-northeast1",
    "asia-northeast3",
    "asia-southeast1",
    "europe-west1",
    "europe-west2",
    "europe-west3",
    "europe-west4",
    "europe-west9",
    "northamerica-northeast1",
    "us-central1",
    "us-east4",
    "us-west1",
    "us-west4",
)

# CMEK works only for GPU tuning with the pipeline in this region.
CMEK_REGION = "us-central1"


@dataclass(frozen=True)
class Model:
    """A base model GCPC's RLHF pipeline can tune.

    Attributes:
        name: the canonical ``large_model_reference``.
        chat: whether GCPC reformats the data as chat (``messages`` rows).
        accelerators: accelerator types the model can be tuned on.
        deploys: whether GCPC uploads and deploys the tuned model (bison only).
    """

    name: str
    chat: bool
    accelerators: tuple[str, ...]
    deploys: bool


MODELS: dict[str, Model] = {
    m.name: m
    for m in (
        Model("t5-small", chat=False, accelerators=(GPU, TPU), deploys=False),
        Model("t5-large", chat=False, accelerators=(TPU,), deploys=False),
        Model("t5-xl", chat=False, accelerators=(TPU,), deploys=False),
        Model("t5-xxl", chat=False, accelerators=(TPU,), deploys=False),
        Model("text-bison@001", chat=False, accelerators=(GPU, TPU), deploys=True),
        Model("text-bison@002", chat=False, accelerators=(GPU, TPU), deploys=True),
        Model("chat-bison@001", chat=True, accelerators=(GPU, TPU), deploys=True),
        Model("llama-2-7b", chat=False, accelerators=(GPU, TPU), deploys=False),
        Model("llama-2-13b", chat=False, accelerators=(GPU, TPU), deploys=False),
        Model("llama-2-7b-chat", chat=True, accelerators=(GPU, TPU), deploys=False),
        Model("llama-2-13b-chat", chat=True, accelerators=(GPU, TPU), deploys=False),
    )
}


def canonical_model_name(reference: str) -> str:
    """Normalizes a model reference the way GCPC does (lower case, ``_`` -> ``-``).

    Args:
        reference: a user-supplied ``large_model_reference`` such as ``Llama_2_7B``.

    Returns:
        The key to look up in ``MODELS``.
    """
    return reference.strip().lower().replace("_", "-")
