"""The original description's interface, in one room: what its users already know.

- ``api``: ``ConfigManager``, ``TrainingCalculator``, ``VertexAIClient``,
  ``PipelineMonitor``, ``HealthChecker`` (exported from ``vertex_rlhf``), a face over
  ``vertex_rlhf.usecases`` beside the ``rlhf`` CLI.
- ``commands``: ``scripts/main.py --config FILE [--calculate-steps | --validate | ...]``.
- ``layout``: reading a config file in the original layout (``dataset``, ``training``,
  ``vertex_ai`` with the original key names) and migrating it to ``params/``.
"""
