"""RLHF tuning on Vertex AI, as code.

The library is grouped in wings by role; imports run one way, from the faces down:

    cli, api (faces) -> cloud -> template (+ pipelines, components) -> data -> config
    -> steps, errors

``steps`` (the step maths) and ``errors`` (the coded errors) are leaves any wing may use.
The original description's Python API is exported here and imported on first use, so
``import vertex_rlhf`` stays cheap (``rlhf steps`` never loads the cloud SDKs)::

    from vertex_rlhf import ConfigManager, TrainingCalculator, VertexAIClient
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # typing takes 2 ms to import (``rlhf validate-data``, the checks)

if TYPE_CHECKING:
    from typing import Any

    from vertex_rlhf.original.api import (
        ConfigManager,
        HealthChecker,
        PipelineMonitor,
        TrainingCalculator,
        VertexAIClient,
    )
    from vertex_rlhf.steps import TrainingSteps

# Exported name -> the module that defines it.
_EXPORTS = {
    "ConfigManager": "vertex_rlhf.original.api",
    "TrainingCalculator": "vertex_rlhf.original.api",
    "VertexAIClient": "vertex_rlhf.original.api",
    "PipelineMonitor": "vertex_rlhf.original.api",
    "HealthChecker": "vertex_rlhf.original.api",
    "TrainingSteps": "vertex_rlhf.steps",
}
__all__ = [
    "ConfigManager",
    "HealthChecker",
    "PipelineMonitor",
    "TrainingCalculator",
    "TrainingSteps",
    "VertexAIClient",
]


def __getattr__(name: str) -> Any:
    """Imports an exported name's module on first use (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vertex_rlhf' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
