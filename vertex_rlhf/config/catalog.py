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
from datetime import date

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
class Lifecycle:
    """When Google stops a model being tuned, and where it says so.

    Attributes:
        tuning_blocked: from this date no new tuning job of the model starts.
        inaccessible: from this date the model cannot be used at all.
        source: the page that announces it.
    """

    tuning_blocked: date
    inaccessible: date
    source: str


# Vertex AI's deprecation page for the PaLM models (text-bison, chat-bison).
PALM_RETIREMENT = Lifecycle(
    date(2024, 10, 9),
    date(2025, 4, 9),
    'Vertex AI\'s "Pathways Language Model (PaLM)" deprecation page',
)


@dataclass(frozen=True)
class Model:
    """A base model GCPC's RLHF pipeline knows.

    Attributes:
        name: the canonical ``large_model_reference``.
        chat: whether GCPC reformats the data as chat (``messages`` rows).
        accelerators: accelerator types the model can be tuned on.
        deploys: whether GCPC uploads and deploys the tuned model (bison only).
        retired: when Google stopped tuning it (None: it can be tuned).
    """

    name: str
    chat: bool
    accelerators: tuple[str, ...]
    deploys: bool
    retired: Lifecycle | None = None


MODELS: dict[str, Model] = {
    m.name: m
    for m in (
        Model("t5-small", chat=False, accelerators=(GPU, TPU), deploys=False),
        Model("t5-large", chat=False, accelerators=(TPU,), deploys=False),
        Model("t5-xl", chat=False, accelerators=(TPU,), deploys=False),
        Model("t5-xxl", chat=False, accelerators=(TPU,), deploys=False),
        Model("text-bison@001", False, (GPU, TPU), deploys=True, retired=PALM_RETIREMENT),
        Model("text-bison@002", False, (GPU, TPU), deploys=True, retired=PALM_RETIREMENT),
        Model("chat-bison@001", True, (GPU, TPU), deploys=True, retired=PALM_RETIREMENT),
        Model("llama-2-7b", chat=False, accelerators=(GPU, TPU), deploys=False),
        Model("llama-2-13b", chat=False, accelerators=(GPU, TPU), deploys=False),
        Model("llama-2-7b-chat", chat=True, accelerators=(GPU, TPU), deploys=False),
        Model("llama-2-13b-chat", chat=True, accelerators=(GPU, TPU), deploys=False),
    )
}


def tunable_models() -> list[str]:
    """The names of the models that can be tuned today, in catalog order."""
    return [m.name for m in MODELS.values() if m.retired is None]


def model_problem(reference: str) -> str | None:
    """Why ``reference`` cannot be tuned (unknown or retired), or None.

    Args:
        reference: a ``large_model_reference`` as the user wrote it.
    """
    tunable = ", ".join(tunable_models())
    model = MODELS.get(canonical_model_name(reference))
    if model is None:
        return f"unsupported model {reference!r}; models that can be tuned: {tunable}"
    if model.retired is not None:
        life = model.retired
        return (
            f"{model.name} can no longer be tuned: Google blocked new tuning on"
            f" {life.tuning_blocked.isoformat()} and made it inaccessible on"
            f" {life.inaccessible.isoformat()} ({life.source}); models that can be"
            f" tuned: {tunable}"
        )
    return None


def canonical_model_name(reference: str) -> str:
    """Normalizes a model reference the way GCPC does (lower case, ``_`` -> ``-``).

    Args:
        reference: a user-supplied ``large_model_reference`` such as ``Llama_2_7B``.

    Returns:
        The key to look up in ``MODELS``.
    """
    return reference.strip().lower().replace("_", "-")
