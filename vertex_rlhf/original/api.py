"""The original description's Python API, as thin faces over the library.

    from vertex_rlhf import ConfigManager, TrainingCalculator, VertexAIClient, PipelineMonitor

Each class calls the same use cases (``vertex_rlhf.usecases``) as the ``rlhf`` CLI; domain problems
raise the coded errors of ``vertex_rlhf.errors`` (``run_pipeline_job`` returns them in its
result instead, as the description's examples expect). A job's status is a typed record
inside the library (``cloud.status.JobStatus``); this face hands it to its users as the
dict the description documents (``JobStatus.as_dict``).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import vertex_rlhf.original.layout as legacy
from vertex_rlhf.cloud import monitor as _monitor
from vertex_rlhf.cloud.status import JobStatus
from vertex_rlhf.cloud.vertex import VertexTarget
from vertex_rlhf.config.params import MAX_EXACT_INTEGER, RLHFParams
from vertex_rlhf.errors import ConfigError, PipelineError, RLHFError
from vertex_rlhf.steps import TrainingSteps, calculate_training_steps
from vertex_rlhf.template import signature
from vertex_rlhf.usecases import runs
from vertex_rlhf.usecases.setting import Setting, compiled_folder
from vertex_rlhf.views import run_report

log = logging.getLogger(__name__)
_ENV_ATTRIBUTE = "_rlhf_env"

__all__ = [
    "ConfigManager",
    "HealthChecker",
    "PipelineMonitor",
    "TrainingCalculator",
    "TrainingSteps",
    "VertexAIClient",
]


class ConfigManager:
    """Reads a parameter file, or a config file in the original description's layout.

    Args:
        config_path: ``params/<env>.yaml`` or an original-layout file.
        overrides: dotlist overrides (``training.kl_coeff=0.2``).
    """

    def __init__(self, config_path: str | Path, overrides: Sequence[str] = ()) -> None:
        self.config_path = Path(config_path)
        self.overrides = list(overrides)
        self._params: RLHFParams | None = None
        self.migration: legacy.Migration | None = None

    @property
    def env(self) -> str:
        """The environment name runs are labelled with."""
        if self.migration is not None:
            return legacy.default_env_name(self.config_path)
        return self.config_path.stem

    def get_rlhf_config(self) -> RLHFParams:
        """Returns the checked parameters (``.dataset``, ``.training``, ``.vertex_ai``).

        Raises:
            ConfigError: an invalid file, naming the file, line and key.
        """
        if self._params is None:
            self._params, self.migration = legacy.load_config_file(self.config_path, self.overrides)
            # Runs made from these parameters are labelled with this file's environment.
            setattr(self._params, _ENV_ATTRIBUTE, self.env)
        return self._params

    def get_parameter_values(self) -> dict[str, Any]:
        """Returns the pipeline's ``parameter_values`` for these parameters."""
        return signature.pipeline_parameter_values(self.get_rlhf_config())


class TrainingCalculator:
    """Training steps as GCPC computes them: ``ceil(rows / 64) * epochs``."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def calculate_training_steps(
        self,
        preference_dataset_size: int,
        prompt_dataset_size: int,
        reward_epochs: int = 30,
        rl_epochs: int = 10,
    ) -> TrainingSteps:
        """Computes the steps; guidance warnings are logged and kept in ``.warnings``.

        Args:
            preference_dataset_size: rows in the preference dataset.
            prompt_dataset_size: rows in the prompt dataset.
            reward_epochs: reward-model epochs.
            rl_epochs: reinforcement-learning epochs.

        Returns:
            ``TrainingSteps(reward_model_steps, reinforcement_learning_steps)``.

        Raises:
            ConfigError: a size or epoch count that gives no steps.
        """
        try:
            steps, self.warnings = calculate_training_steps(
                *_counts(
                    preference_dataset_size=preference_dataset_size,
                    prompt_dataset_size=prompt_dataset_size,
                    reward_epochs=reward_epochs,
                    rl_epochs=rl_epochs,
                )
            )
        except (TypeError, ValueError) as error:
            raise ConfigError([f"training steps: {error}"]) from None
        for warning in self.warnings:
            log.warning(warning)
        return steps

    def validate_training_parameters(
        self,
        preference_size: int,
        prompt_size: int,
        reward_epochs: int = 30,
        rl_epochs: int = 10,
    ) -> tuple[bool, str]:
        """Checks sizes and epochs without raising.

        Returns:
            ``(True, "valid")``, ``(True, warnings)`` outside the published guidance, or
            ``(False, the problem)``.
        """
        try:
            _, warnings = calculate_training_steps(
                *_counts(
                    preference_size=preference_size,
                    prompt_size=prompt_size,
                    reward_epochs=reward_epochs,
                    rl_epochs=rl_epochs,
                )
            )
        except (TypeError, ValueError) as error:
            return False, str(error)
        return True, "; ".join(warnings) or "valid"


def _counts(**values: Any) -> list[int]:
    """Row and epoch counts as whole numbers: ``3000``, ``3000.0`` or ``"3000"``.

    Raises:
        ValueError: naming the argument, for a fraction, a boolean, text that is not a
            whole number, or a negative or too large count (nothing is rounded or guessed).
    """
    counts = []
    for name, value in values.items():
        whole: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            whole = value
        elif isinstance(value, float) and value.is_integer():
            whole = int(value)
        elif isinstance(value, str) and value.strip().isdigit():
            whole = int(value.strip())
        # 0 goes on: the step maths says which dataset has no rows.
        if whole is None or not 0 <= whole <= MAX_EXACT_INTEGER:
            raise ValueError(
                f"{name} must be a whole number from 1 to {MAX_EXACT_INTEGER:,}, got {value!r}"
            )
        counts.append(whole)
    return counts


def _as_params(config: RLHFParams | ConfigManager | str | Path) -> tuple[RLHFParams, str]:
    if isinstance(config, RLHFParams):
        return config, getattr(config, _ENV_ATTRIBUTE, config.vertex_ai.pipeline_display_name)
    manager = config if isinstance(config, ConfigManager) else ConfigManager(config)
    return manager.get_rlhf_config(), manager.env


class VertexAIClient:
    """Creates, runs and reads pipeline jobs in the parameters' project and region.

    Args:
        config: ``ConfigManager(...).get_rlhf_config()``, a ``ConfigManager`` or a path.
        env: the environment label of the runs (default: the display name, or file name).
        poll_interval: seconds between status reads while waiting.
    """

    def __init__(
        self,
        config: RLHFParams | ConfigManager | str | Path,
        env: str | None = None,
        poll_interval: float = 15.0,
    ) -> None:
        self.config, default_env = _as_params(config)
        self.env = env or default_env
        self.target = VertexTarget.from_params(self.config)
        self.poll_interval = poll_interval
        # Runs are labelled with the commit of the project they are made from.
        self.setting = Setting(
            self.config, self.env, self.env, Path.cwd(), compiled_folder(None), self.env
        )
        self._prepared: dict[int, runs.Prepared] = {}

    def create_pipeline_job(
        self,
        template_path: str | Path,
        parameter_values: dict[str, Any] | None = None,
        enable_caching: bool | None = None,
    ) -> Any:
        """Builds an ``aiplatform.PipelineJob`` from a compiled template; sends nothing.

        The request is the one ``rlhf submit`` sends (``usecases.runs.prepare``): the same
        labels, job id, signature check and caching policy.

        Args:
            template_path: a compiled template (``compiled/rlhf-tuning-<version>.yaml``).
            parameter_values: the pipeline's inputs; default from the parameters.
            enable_caching: overrides ``vertex_ai.enable_caching`` when not None: None
                keeps the template's per-task settings, False caches nothing, True reuses
                every identical earlier task (see the README's "Caching and resuming").

        Returns:
            The job, ready for ``run_pipeline_job``.

        Raises:
            PipelineError: no template at that path. ConfigError: values that do not fit.
        """
        order = runs.SubmitOrder(
            template_path=Path(template_path),
            parameter_values=parameter_values,
            enable_caching=enable_caching,
        )
        ready = runs.prepare(self.setting, order, Path(tempfile.gettempdir()))
        job = runs.pipeline_job(ready)
        self._prepared[id(job)] = ready
        return job

    def run_pipeline_job(
        self, job: Any, wait_for_completion: bool = False, timeout: float | None = None
    ) -> dict[str, Any]:
        """Submits a job from ``create_pipeline_job`` and, if asked, follows it to its end.

        A create that fails transiently is retried without ever making two runs.

        Args:
            job: from ``create_pipeline_job``.
            wait_for_completion: follow the run until it ends (or ``timeout``).
            timeout: seconds to follow at most; the run keeps going after it.

        Returns:
            ``success``, ``job_id`` (resource name), ``state``, ``error`` and ``error_code``
            (None on success), ``console_url``, and ``status`` (the monitor's last status,
            as ``PipelineMonitor.monitor_job_with_updates`` returns it).
        """
        ready = self._prepared.get(id(job))
        result: dict[str, Any] = {
            "success": False,
            "job_id": None,
            "state": None,
            "error": None,
            "error_code": None,
            "console_url": None,
            "status": None,
        }
        try:
            if ready is None:
                raise PipelineError(
                    "this job was not made by this client's create_pipeline_job",
                    hint="create it with VertexAIClient.create_pipeline_job",
                )
            submitted = runs.send(ready)
            name = submitted.name
            result.update(job_id=name, console_url=submitted.console_url)
            if not wait_for_completion:
                result.update(success=True, state="SUBMITTED")
                return result
            watch = runs.Watch(None, self.poll_interval, timeout)
            status = runs.follow(self.target, name, watch)
            result.update(status=status.as_dict(), state=status.state)
            if status.timed_out:
                result["success"] = True
                return result
            error = _monitor.final_error(status)
            if error is not None:
                raise error
            result["success"] = True
        except RLHFError as error:
            result.update(error=error.render(), error_code=error.code)
        return result

    def monitor_pipeline_job(self, job_id: str) -> dict[str, Any]:
        """Reads a job once: ``job_id``, ``state``, ``progress``, ``stages``, ``error``, ...

        Args:
            job_id: a job id or ``projects/P/locations/L/pipelineJobs/ID``.
        """
        return runs.job_status(self.target, job_id).as_dict()


class PipelineMonitor:
    """Follows a job with a callback on every change, as in the original description.

    The watch is the library's (``cloud.monitor.PipelineMonitor``); its attributes
    (``target``, ``out``, ``api_calls``, ...) read through. Statuses reach the user as
    the description's dicts (``JobStatus.as_dict``).

    Args:
        client: a ``VertexAIClient`` (its project, region and endpoint) or a ``VertexTarget``.
        metrics_log: JSONL log of every change; a string or a ``Path``.
        **options: ``min_interval``, ``max_interval``, ``out``, ... of the library monitor.
    """

    def __init__(
        self,
        client: VertexAIClient | VertexTarget,
        metrics_log: str | Path | None = None,
        **options: Any,
    ) -> None:
        target = client.target if isinstance(client, VertexAIClient) else client
        if isinstance(client, VertexAIClient):
            options.setdefault("min_interval", client.poll_interval)
            options.setdefault("max_interval", max(client.poll_interval, 60.0))
        self.watch = _monitor.PipelineMonitor(
            target, metrics_log=Path(metrics_log) if metrics_log else None, **options
        )

    def __getattr__(self, name: str) -> Any:
        if name == "watch":  # not set yet (a half-made or unpickled object)
            raise AttributeError(name)
        return getattr(self.watch, name)

    def monitor_job_with_updates(
        self,
        job_id: str,
        timeout: float | None = None,
        callback: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Follows ``job_id`` to its end (or ``timeout``), calling ``callback`` on changes.

        Returns:
            The last status (``job_id``, ``state``, ``progress``, ``error``, ...; then
            ``timed_out``, ``api_error``, ``unknown_state`` when they are facts).
        """
        told = None if callback is None else (lambda status: callback(status.as_dict()))
        found = self.watch.monitor_job_with_updates(job_id, timeout=timeout, callback=told)
        return found.as_dict()

    def get_status(self, job: str) -> dict[str, Any]:
        """Reads ``job`` once: its status as ``monitor_job_with_updates`` gives it."""
        return self.watch.get_status(job).as_dict()

    @staticmethod
    def generate_monitoring_report(status: Mapping[str, Any] | JobStatus) -> str:
        """The report of a status (a dict this class gave, or a library record)."""
        typed = status if isinstance(status, JobStatus) else JobStatus.from_dict(status)
        return run_report.report(typed)


class HealthChecker:
    """The health check of ``rlhf doctor`` (``make doctor ENV=...``), from Python.

    Args:
        config: a parameter file, a ``ConfigManager`` (its overrides apply), the parameters
            ``ConfigManager(...).get_rlhf_config()`` gives (as ``VertexAIClient`` takes
            them), or None for ``params/dev.yaml``.
    """

    def __init__(self, config: str | Path | ConfigManager | RLHFParams | None = None) -> None:
        self._config: ConfigManager | RLHFParams | None = None
        self.config_path: Path | None
        if isinstance(config, RLHFParams):
            self._config, self.config_path = config, None
        elif isinstance(config, ConfigManager):
            self._config, self.config_path = config, config.config_path
        else:
            self.config_path = Path(config) if config is not None else Path("params/dev.yaml")

    def check_resources(self) -> bool:
        """Runs every check, printing one line each; True when all pass.

        Parameters that cannot be read are a failed check: the error is printed on
        stderr, as ``scripts/main.py --health-check`` prints it, and the answer is False.
        """
        import sys

        from vertex_rlhf.original.commands import run_health_check, run_health_check_of
        from vertex_rlhf.views.text import ERROR_LIMIT, outside

        try:
            if self._config is None:
                assert self.config_path is not None
                return run_health_check(self.config_path) == 0
            params, env = _as_params(self._config)
            setting = Setting(params, env, env, Path.cwd(), compiled_folder(None), env)
            return run_health_check_of(setting) == 0
        except RLHFError as error:
            print(outside(error.render(), ERROR_LIMIT), file=sys.stderr)
            return False
