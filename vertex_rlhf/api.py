"""The original description's Python API, as thin faces over the library.

    from vertex_rlhf import ConfigManager, TrainingCalculator, VertexAIClient, PipelineMonitor

Each class calls the same functions as the ``rlhf`` CLI and the Makefile; domain problems
raise the coded errors of ``vertex_rlhf.errors`` (``run_pipeline_job`` returns them in its
result instead, as the description's examples expect).
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vertex_rlhf.cloud import monitor as _monitor
from vertex_rlhf.cloud import submission
from vertex_rlhf.cloud.vertex import VertexTarget
from vertex_rlhf.config import legacy
from vertex_rlhf.config.environment import find_project_root
from vertex_rlhf.config.params import MAX_EXACT_INTEGER, SECTIONS, RLHFParams, load_params
from vertex_rlhf.errors import ConfigError, PipelineError, RLHFError
from vertex_rlhf.steps import TrainingSteps, calculate_training_steps
from vertex_rlhf.template import signature
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


def load_config_file(
    path: str | Path,
    overrides: Sequence[str] = (),
    sections: Sequence[str] = SECTIONS,
    params_dir: str | Path | None = None,
) -> tuple[RLHFParams, legacy.Migration | None]:
    """Loads a parameter file (``params/<env>.yaml``) or an original-layout config file.

    Args:
        path: the file.
        overrides: dotlist overrides.
        sections: the sections to resolve and check.
        params_dir: where ``base.yaml`` is; default: the parameter file's own folder, or
            ``params`` for an original-layout file.

    Returns:
        The checked parameters, and the migration when the file is in the original layout.

    Raises:
        ConfigError: naming the file, line and key.
    """
    file = _config_file(path)
    if legacy.reads_as_legacy(file):
        return legacy.load(file, overrides, params_dir or find_project_root() / "params", sections)
    if file.suffix not in (".yaml", ".yml"):
        raise ConfigError([f"{file}: a parameter file is a .yaml file, e.g. params/dev.yaml"])
    return load_params(file.stem, overrides, params_dir or file.parent, sections), None


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
            self._params, self.migration = load_config_file(self.config_path, self.overrides)
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
        self._requests: dict[int, submission.SubmitRequest] = {}

    def create_pipeline_job(
        self,
        template_path: str | Path,
        parameter_values: dict[str, Any] | None = None,
        enable_caching: bool | None = None,
    ) -> Any:
        """Builds an ``aiplatform.PipelineJob`` from a compiled template; sends nothing.

        Args:
            template_path: a compiled template (``compiled/rlhf-tuning-<version>.yaml``).
            parameter_values: the pipeline's inputs; default from the parameters.
            enable_caching: None keeps the template's per-task settings; False caches
                nothing. True is refused (the dataset checks would be cached too).

        Returns:
            The job, ready for ``run_pipeline_job``.

        Raises:
            PipelineError: no template at that path. ConfigError: values that do not fit.
        """
        path = Path(template_path)
        if not path.is_file():
            try:
                current = f"; the compiled one is {signature.current_template_path()}"
            except PipelineError:
                current = ""
            raise PipelineError(
                f"{path}: no compiled template there{current}",
                hint="run `make compile` and pass compiled/rlhf-tuning-<version>.yaml",
            )
        if enable_caching:
            raise ConfigError(
                [
                    "enable_caching=True would cache the dataset checks too; pass None (training"
                    " tasks cached, checks never) or False"
                ]
            )
        template = submission.TemplateRef(
            path, _pipeline_name(path), _template_version(path), _digest(path)
        )
        commit = submission.git_commit(Path.cwd())
        request = submission.build_request(self.config, self.env, template, commit)
        values = dict(request.parameter_values if parameter_values is None else parameter_values)
        signature.check_against_signature(values, signature.template_inputs(path), path.name)
        request = dataclasses.replace(
            request, parameter_values=values, enable_caching=enable_caching
        )
        from vertex_rlhf.cloud.vertex import init_sdk

        init_sdk(self.target)
        job = submission.pipeline_job(request)
        self._requests[id(job)] = request
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
            (None on success), ``console_url``, and ``status`` (the monitor's last status).
        """
        request = self._requests.get(id(job))
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
            if request is None:
                raise PipelineError(
                    "this job was not made by this client's create_pipeline_job",
                    hint="create it with VertexAIClient.create_pipeline_job",
                )
            name = submission.submit(request)
            result.update(job_id=name, console_url=self.target.console_url(name))
            if not wait_for_completion:
                result.update(success=True, state="SUBMITTED")
                return result
            status = self._watcher().monitor_job_with_updates(name, timeout=timeout)
            result.update(status=status, state=status["state"])
            if status.get("timed_out"):
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
        return self._watcher().get_status(job_id)

    def _watcher(self, metrics_log: Path | None = None) -> _monitor.PipelineMonitor:
        return _monitor.PipelineMonitor(
            self.target,
            metrics_log=metrics_log,
            min_interval=self.poll_interval,
            max_interval=max(self.poll_interval, 60.0),
        )


def _pipeline_name(path: Path) -> str:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        spec = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
        return str(spec["pipelineInfo"]["name"])
    except (OSError, yaml.YAMLError, KeyError, TypeError) as error:
        raise PipelineError(
            f"{path}: not a readable compiled pipeline ({error})", hint="run `make compile`"
        ) from None


def _template_version(path: Path) -> str:
    """The version the manifest beside the template records for it, else ``local``."""
    from vertex_rlhf.template.compiler import read_manifest

    try:
        manifest = read_manifest(path.parent)
    except RLHFError:
        return "local"
    for version, entry in manifest.get("templates", {}).items():
        if entry.get("file") == path.name:
            return str(version)
        if (entry.get("notify") or {}).get("file") == path.name:  # the e-mail variant
            return f"{version}-notify"
    return "local"


def _digest(path: Path) -> str:
    from vertex_rlhf.cloud.registry import file_digest

    return file_digest(path)


class PipelineMonitor(_monitor.PipelineMonitor):
    """Follows a job with a callback on every change, as in the original description.

    Args:
        client: a ``VertexAIClient`` (its project, region and endpoint) or a ``VertexTarget``.
        metrics_log: JSONL log of every change; a string or a ``Path``.
        **options: ``min_interval``, ``max_interval``, ``out``, ... of the library monitor.
    """

    generate_monitoring_report = staticmethod(run_report.report)

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
        super().__init__(target, metrics_log=Path(metrics_log) if metrics_log else None, **options)

    def monitor_job_with_updates(
        self,
        job_id: str,
        timeout: float | None = None,
        callback: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Follows ``job_id`` to its end (or ``timeout``), calling ``callback`` on changes.

        Returns:
            The last status (``job_id``, ``state``, ``progress``, ``error``, ...).
        """
        return super().monitor_job_with_updates(job_id, timeout=timeout, callback=callback)


class HealthChecker:
    """The health check of ``rlhf doctor`` (``make doctor ENV=...``), from Python.

    Args:
        config: a parameter file, a ``ConfigManager``, or None for ``params/dev.yaml``.
    """

    def __init__(self, config: str | Path | ConfigManager | None = None) -> None:
        if isinstance(config, ConfigManager):
            config = config.config_path
        self.config_path = Path(config) if config is not None else Path("params/dev.yaml")

    def check_resources(self) -> bool:
        """Runs every check, printing one line each; True when all pass.

        Raises:
            ConfigError: this installation has no ``rlhf doctor``.
        """
        return run_health_check(self.config_path) == 0


@contextmanager
def cli_arguments(
    config_path: str | Path, sections: Sequence[str] = SECTIONS
) -> Iterator[tuple[list[str], legacy.Migration | None]]:
    """The ``rlhf`` arguments (``ENV --params-dir DIR``) that name a config file.

    A parameter file is named by its stem and folder. An original-layout file is checked
    first (errors name its own lines), then written, translated, to a scratch folder that
    lives as long as the ``with`` block.

    Yields:
        The arguments, and the migration for an original-layout file (None otherwise).
    """
    path = _config_file(config_path)
    if not legacy.reads_as_legacy(path):
        if path.suffix not in (".yaml", ".yml"):
            raise ConfigError([f"{path}: a parameter file is a .yaml file, e.g. params/dev.yaml"])
        yield [path.stem, "--params-dir", str(path.parent)], None
        return
    params_dir = find_project_root() / "params"
    _, migration = legacy.load(path, (), params_dir, sections)
    with tempfile.TemporaryDirectory(prefix="rlhf-legacy-") as scratch:
        env = legacy.materialize(migration, Path(scratch), params_dir)
        # What the commands print names the user's file, not the scratch copy.
        with _relabelled({f"{scratch}/{env}.yaml": str(path), scratch: str(params_dir)}):
            yield [env, "--params-dir", scratch], migration


def _config_file(config_path: str | Path) -> Path:
    """The config file's path, if it is an existing regular file (never opened here).

    Raises:
        ConfigError: missing, or a directory, FIFO or device, saying which.
    """
    from vertex_rlhf.config import values

    path = Path(config_path)
    problem = values.regular_file_problem(path, "config file")
    if problem:
        looked = "" if path.is_absolute() else f" (looked at {path.absolute()})"
        raise ConfigError(
            [
                f"{problem}{looked}; give a parameter file (e.g. params/dev.yaml) or a config"
                " file in the original layout"
            ]
        )
    return path


class _Relabelling:
    """A text stream that writes through ``stream`` with some paths replaced."""

    def __init__(self, stream: Any, labels: dict[str, str]) -> None:
        self._stream = stream
        self._labels = labels

    def write(self, text: str) -> int:
        for old, new in self._labels.items():
            text = text.replace(old, new)
        return int(self._stream.write(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextmanager
def _relabelled(labels: dict[str, str]) -> Iterator[None]:
    """Replaces scratch paths in what is printed to stdout and stderr meanwhile."""
    import sys

    saved = sys.stdout, sys.stderr
    sys.stdout = _Relabelling(saved[0], labels)
    sys.stderr = _Relabelling(saved[1], labels)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def run_health_check(config_path: str | Path, extra: Sequence[str] = ()) -> int:
    """Runs ``rlhf doctor`` on a config file; the exit status it gives.

    Raises:
        ConfigError: ``rlhf doctor`` is not available here.
    """
    from vertex_rlhf import cli

    if "doctor" not in cli.subcommands():
        raise ConfigError(
            [
                "--health-check: not available in this version; `make doctor"
                f" ENV={Path(config_path).stem}` (`rlhf doctor ENV`) replaces it"
            ]
        )
    with cli_arguments(config_path) as (arguments, _):
        return cli.main(["doctor", *arguments, *extra])


def _note_migration(migration: legacy.Migration | None) -> None:
    """Tells a user of an original-layout file what its keys became (on stderr)."""
    if migration is None:
        return
    import sys

    print(
        f"{migration.source}: the original description's layout, read as params/"
        f"{legacy.default_env_name(migration.source)}.yaml over params/base.yaml:",
        file=sys.stderr,
    )
    for note in migration.notes:
        print(f"  {note}", file=sys.stderr)
    print(
        f"  `rlhf migrate-config {migration.source}` writes it to params/ for good",
        file=sys.stderr,
    )


def calculate_steps(config_path: str | Path) -> int:
    """``rlhf steps`` on a config file; the exit status."""
    from vertex_rlhf import cli

    with cli_arguments(config_path, ("dataset", "training")) as (arguments, migration):
        _note_migration(migration)
        return cli.main(["steps", *arguments])


def storage_unreachable_reason() -> str | None:
    """Why Cloud Storage cannot be read from here (no credentials), or None if it can."""
    from vertex_rlhf.data.files import storage_client

    try:
        storage_client()
    except RLHFError as error:
        return error.message
    return None


def validate_config(config_path: str | Path) -> int:
    """``rlhf check``, then ``rlhf validate-data`` where the datasets can be read.

    Local datasets are always validated; ``gs://`` ones when Cloud Storage is reachable
    (credentials or an emulator), otherwise a note says how to check them.

    Returns:
        The exit status: 0 when valid.
    """
    import sys

    from vertex_rlhf import cli

    with cli_arguments(config_path) as (arguments, migration):
        _note_migration(migration)
        status = cli.main(["check", *arguments])
        if status:
            return status
        params, _ = load_config_file(
            Path(arguments[2]) / f"{arguments[0]}.yaml", sections=("dataset", "training")
        )
        d = params.dataset
        remote = [p for p in (d.preference_dataset, d.prompt_dataset, d.eval_dataset) if p]
        if any(p.startswith("gs://") for p in remote):
            reason = storage_unreachable_reason()
            if reason:
                print(
                    f"datasets not checked: Cloud Storage is not reachable ({reason}); run"
                    f" {_validate_data_command(Path(config_path), migration)} where it is",
                    file=sys.stderr,
                )
                return 0
        return cli.main(["validate-data", *arguments])


def _validate_data_command(config_path: Path, migration: legacy.Migration | None) -> str:
    """The command that validates a config file's datasets, as a user runs it."""
    if migration is None:
        return f"`make validate-data ENV={config_path}`"
    name = legacy.default_env_name(config_path)
    return f"`rlhf migrate-config {config_path}` once, then `make validate-data ENV={name}`"


def submit_config(
    config_path: str | Path, wait: bool = False, compiled_dir: str | Path | None = None
) -> int:
    """``rlhf submit`` on a config file; a stale ``compiled/`` is recompiled (with a notice).

    The fresh compile goes to a scratch folder: ``compiled/`` is never modified here.

    Returns:
        The exit status of the submit (and of the run, with ``wait``).
    """
    import sys

    from vertex_rlhf import cli
    from vertex_rlhf.template import compiler

    compiled_dir = compiled_dir or find_project_root() / "compiled"
    with cli_arguments(config_path) as (arguments, migration):
        _note_migration(migration)
        params, _ = load_config_file(
            Path(arguments[2]) / f"{arguments[0]}.yaml", sections=("vertex_ai",)
        )
        flags = ["--wait"] if wait else []
        if params.vertex_ai.template_version:  # a published version: compiled/ is not used
            return cli.main(["submit", *arguments, "--compiled-dir", str(compiled_dir), *flags])
        problems = compiler.stale_problems(Path(compiled_dir))
        if not problems:
            return cli.main(["submit", *arguments, "--compiled-dir", str(compiled_dir), *flags])
        print(
            f"notice: {compiled_dir}/ is stale ({'; '.join(problems)}); submitting a fresh"
            " compile of the sources. Run `make compile` and commit compiled/ to record it.",
            file=sys.stderr,
        )
        with tempfile.TemporaryDirectory(prefix="rlhf-compiled-") as fresh:
            compiler.compile_to(Path(fresh))
            return cli.main(["submit", *arguments, "--compiled-dir", fresh, *flags])


def monitor_job(config_path: str | Path, job: str) -> int:
    """``rlhf monitor JOB`` with the project and region of a config file."""
    from vertex_rlhf import cli

    with cli_arguments(config_path, ("vertex_ai",)) as (arguments, migration):
        _note_migration(migration)
        env, rest = arguments[0], arguments[1:]
        return cli.main(["monitor", job, "--env", env, *rest])
