"""Use case: the report of one run, as a record a renderer turns into a page to share.

``build`` reads the job once (state, task details, parameters, template), syncs its
training metrics into the metrics log as ``make metrics`` does (``metrics.metrics_of``),
and, when the run did bulk inference on an eval dataset, reads a bounded sample of the
predictions GCPC's ``bulk-inferrer`` wrote. ``report_of`` is the pure part: a job
resource (``PipelineJob.to_dict``) to a ``RunReport``.

Everything the record holds that came from the server or a dataset is raw: the
renderer (``views.report_html``) escapes and bounds it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vertex_rlhf.errors import ConfigError, RLHFError
from vertex_rlhf.usecases import metrics as metric_use
from vertex_rlhf.usecases import runs
from vertex_rlhf.usecases.setting import Setting

if TYPE_CHECKING:
    from vertex_rlhf.cloud.metrics import MetricSummary, Point
    from vertex_rlhf.cloud.status import JobStatus

# How many eval rows the report shows, and the most bytes of the predictions it reads.
SAMPLE_ROWS = 5
MAX_SAMPLE_ROWS = 50
SAMPLE_BYTES = 1 << 20
# GCPC 2.22 ``preview/llm/infer/component.py``: the ``bulk-inferrer`` task of the
# ``infer-eval-template`` graph (run by ``rlhf_pipeline`` when the eval dataset holds
# prompts) writes its predictions as JSONL in Cloud Storage and returns their path as the
# output parameter ``output_prediction_gcs_path`` (``_implementation/llm/bulk_inferrer.py``).
BULK_TASK = "bulk-inferrer"
BULK_OUTPUT = "output_prediction_gcs_path"
# The dataset checks of the compiled template, by task name (``input:kind`` wins).
DATASET_TASKS = {
    "validate-dataset": "preference",
    "validate-dataset-2": "prompt",
    "validate-dataset-3": "eval",
}
DATASET_KINDS = ("preference", "prompt", "eval")
BATCH = 64  # GCPC's fixed batch size: steps = ceil(rows / 64) * epochs


@dataclass(frozen=True)
class TaskSpan:
    """One task of the run on its timeline.

    Attributes:
        name, stage, state: as the server gave them (stage: the monitor's, or None).
        start: seconds from the run's start to the task's (None: it never started).
        seconds: how long it ran (None: it never ran).
        error: the task's error message, raw.
    """

    name: str
    stage: str | None
    state: str
    start: float | None
    seconds: float | None
    error: str = ""


@dataclass(frozen=True)
class StageSpan:
    """One stage (validation, reward model, ...): its state and when it ran."""

    name: str
    state: str
    start: float | None
    seconds: float | None


@dataclass(frozen=True)
class DatasetFacts:
    """A dataset as the run's checks saw it: path sent, rows and layout found."""

    kind: str
    path: str
    rows: int | None
    layout: str
    state: str


@dataclass(frozen=True)
class StepFacts:
    """The steps one training stage got, and what they came from."""

    stage: str
    steps: int | None
    rows: int | None
    epochs: int | None
    explicit: int | None

    @property
    def how(self) -> str:
        """``ceil(3000 / 64) x 30 epochs`` or ``set explicitly``; empty when unknown."""
        if self.explicit:
            return "set explicitly"
        if self.rows is not None and self.epochs is not None:
            return (
                f"ceil({self.rows:,} rows / {BATCH}) = {math.ceil(self.rows / BATCH):,}"
                f" x {self.epochs} epochs"
            )
        return ""


@dataclass(frozen=True)
class Failure:
    """Why a run did not succeed and what to do: the coded error the CLI would print."""

    code: str
    task: str
    stage: str
    message: str
    fix: str


@dataclass(frozen=True)
class EvalSample:
    """One eval prompt and the tuned model's response (raw; ``raw`` when unrecognised)."""

    prompt: str
    response: str
    raw: str = ""


@dataclass(frozen=True)
class EvalFacts:
    """The bulk-inference sample: where it was read, the rows, and what to know."""

    dataset: str
    source: str
    samples: list[EvalSample] = field(default_factory=list)
    note: str = ""


@dataclass(frozen=True)
class RunReport:
    """What one run was and did, for people who will never open a terminal."""

    job_name: str
    job_id: str
    state: str
    progress: int
    ended: bool
    console_url: str
    created: str
    started: str
    finished: str
    elapsed_seconds: float | None
    stages: list[StageSpan]
    tasks: list[TaskSpan]
    pipeline: str
    template_version: str
    template_digest: str
    template_uri: str
    spec_digest: str
    labels: dict[str, str]
    parameters: dict[str, Any]
    datasets: list[DatasetFacts]
    steps: list[StepFacts]
    outputs: dict[str, str]
    failure: Failure | None
    metrics_log: str = ""
    points: list[Point] = field(default_factory=list)
    summaries: list[MetricSummary] = field(default_factory=list)
    evaluation: EvalFacts | None = None
    warnings: list[str] = field(default_factory=list)
    generated: str = ""


def default_output(job_id: str) -> Path:
    """``runs/<job id>.html``, once the id is checked against Vertex's grammar.

    Raises:
        ConfigError: the id is not one (it would become a file name).
    """
    from vertex_rlhf.config import names

    problem = names.job_id_problem(job_id)
    if problem:
        raise ConfigError([problem])
    return Path("runs") / f"{job_id}.html"


def build(
    setting: Setting,
    job: str,
    log: str | Path | None = None,
    samples: int = SAMPLE_ROWS,
) -> RunReport:
    """Reads a run and everything its report shows.

    The job must be readable; its metrics and eval sample are read when they can be,
    and a problem with either becomes a warning in the report (the rest still helps).

    Args:
        setting: the environment whose project and region a bare job id is in.
        job: a job id or resource name (checked before anything is sent).
        log: the metrics log (default ``runs/<job id>.jsonl``, as ``make metrics``).
        samples: how many eval rows to show (1..``MAX_SAMPLE_ROWS``).

    Raises:
        ConfigError: a bad job id or sample count. AuthError, NetworkError,
            PipelineError: the job cannot be read.
    """
    from vertex_rlhf.cloud import metrics

    if not 1 <= samples <= MAX_SAMPLE_ROWS:
        raise ConfigError([f"--samples {samples}: show between 1 and {MAX_SAMPLE_ROWS} rows"])
    target, name = runs.locate(setting, job)
    found = metrics.read_job(target, name)
    warnings: list[str] = []
    points: list[Point] = []
    summaries: list[MetricSummary] = []
    path = runs.metrics_log(name, log)
    try:
        read = metric_use.metrics_of(found, name, path)
        points, summaries = read.points, read.summaries
        warnings += read.warnings
    except RLHFError as error:
        warnings.append(f"the training metrics could not be read: {error.render()}")
    report = report_of(found, points, summaries)
    evaluation = eval_sample(found, samples, warnings)
    return _with(
        report,
        console_url=target.console_url(name),
        metrics_log=str(path),
        evaluation=evaluation,
        warnings=warnings,
    )


def _with(report: RunReport, **changes: Any) -> RunReport:
    import dataclasses

    return dataclasses.replace(report, **changes)


def _number(value: Any) -> int | None:
    """An integer output or parameter (aiplatform sends ``30.0``); None otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        return None
    return int(value)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else json.dumps(value)


def report_of(
    job: dict[str, Any],
    points: list[Point] | None = None,
    summaries: list[MetricSummary] | None = None,
    now: datetime | None = None,
) -> RunReport:
    """The report of a job resource (pure: nothing is read).

    Args:
        job: the job as ``PipelineJob.to_dict``.
        points, summaries: its training metrics.
        now: the current time (the elapsed time of a run still going).
    """
    from vertex_rlhf.cloud import monitor
    from vertex_rlhf.cloud.compare import run_facts
    from vertex_rlhf.cloud.status import parse_time

    now = now or datetime.now(timezone.utc)
    status = monitor.job_status(job, now)
    facts = run_facts(job, list(points or []), now)
    details = (job.get("job_detail") or {}).get("task_details") or []
    begun = parse_time(job.get("start_time")) or parse_time(job.get("create_time"))
    tasks = []
    for detail, task in zip(details, status.tasks, strict=True):
        start = parse_time(detail.get("start_time"))
        offset = (start - begun).total_seconds() if start and begun else None
        if task.seconds is None:
            offset = None
        if task.leaf:
            tasks.append(
                TaskSpan(
                    task.name,
                    task.stage,
                    task.state,
                    offset,
                    task.seconds,
                    task.error,
                )
            )
    stages = []
    for name, _ in monitor.STAGES:
        mine = [t for t in tasks if t.stage == name and t.start is not None]
        first = min((t.start for t in mine if t.start is not None), default=None)
        last = max(((t.start or 0.0) + (t.seconds or 0.0) for t in mine), default=None)
        seconds = last - first if first is not None and last is not None else None
        stages.append(StageSpan(name, status.stages[name], first, seconds))
    parameters = dict((job.get("runtime_config") or {}).get("parameter_values") or {})
    labels = {str(k): _text(v) for k, v in (job.get("labels") or {}).items()}
    datasets = _datasets(details, parameters)
    return RunReport(
        job_name=_text(job.get("name")),
        job_id=facts.job_id,
        state=status.state,
        progress=status.progress,
        ended=status.state in monitor.TERMINAL or status.ended,
        console_url="",
        created=_text(job.get("create_time")),
        started=_text(job.get("start_time")),
        finished=_text(job.get("end_time")),
        elapsed_seconds=status.elapsed_seconds,
        stages=stages,
        tasks=tasks,
        pipeline=_text((job.get("pipeline_spec") or {}).get("pipelineInfo", {}).get("name"))
        or labels.get("pipeline", ""),
        template_version=facts.version,
        template_digest=facts.digest,
        template_uri=_text(job.get("template_uri")),
        spec_digest=facts.spec_digest,
        labels=labels,
        parameters=parameters,
        datasets=datasets,
        steps=_steps(details, parameters, datasets),
        outputs={k: _text(v) for k, v in status.outputs.items()},
        failure=_failure(status),
        points=list(points or []),
        summaries=list(summaries or []),
        generated=now.isoformat(timespec="seconds"),
    )


def _metadata(detail: dict[str, Any]) -> dict[str, Any]:
    return (detail.get("execution") or {}).get("metadata") or {}


def _datasets(details: list[dict[str, Any]], parameters: dict[str, Any]) -> list[DatasetFacts]:
    """Each dataset's path as sent, and the rows and layout its check returned."""
    seen: dict[str, DatasetFacts] = {}
    for detail in details:
        name = detail.get("task_name", "")
        meta = _metadata(detail)
        kind = meta.get("input:kind") or DATASET_TASKS.get(name)
        if kind not in DATASET_KINDS:
            continue
        seen[kind] = DatasetFacts(
            kind,
            _text(parameters.get(f"{kind}_dataset")),
            _number(meta.get("output:rows")),
            _text(meta.get("output:layout")),
            _text(detail.get("state")),
        )
    return [
        seen.get(kind) or DatasetFacts(kind, _text(parameters.get(f"{kind}_dataset")), None, "", "")
        for kind in DATASET_KINDS
    ]


def _steps(
    details: list[dict[str, Any]], parameters: dict[str, Any], datasets: list[DatasetFacts]
) -> list[StepFacts]:
    """The steps ``compute-steps`` returned, with the rows and epochs behind them."""
    outputs: dict[str, Any] = {}
    for detail in details:
        if detail.get("task_name") == "compute-steps":
            outputs = _metadata(detail)
    rows = {d.kind: d.rows for d in datasets}
    stages = (
        ("reward model", "reward_model_train_steps", "reward_model_epochs", "preference"),
        (
            "reinforcement learning",
            "reinforcement_learning_train_steps",
            "reinforcement_learning_epochs",
            "prompt",
        ),
    )
    return [
        StepFacts(
            stage,
            _number(outputs.get(f"output:{key}")),
            rows.get(kind),
            _number(parameters.get(epochs)),
            _number(parameters.get(key)) or None,
        )
        for stage, key, epochs, kind in stages
    ]


def _failure(status: JobStatus) -> Failure | None:
    """The coded error of a run that ended badly, as ``make monitor`` prints it."""
    from vertex_rlhf.cloud import monitor

    if not (status.state in monitor.TERMINAL or status.ended):
        return None
    error = monitor.final_error(status)
    if error is None:
        return None
    return Failure(
        error.code,
        _text(status.failed_task),
        _text(status.failed_stage),
        # The raw message: the renderer escapes and bounds it once, as every other text.
        _text(status.error) or error.message,
        error.hint,
    )


def eval_sample(job: dict[str, Any], count: int, warnings: list[str]) -> EvalFacts | None:
    """A sample of the bulk-inference predictions, when an eval dataset ran.

    Reads at most ``SAMPLE_BYTES`` of the first predictions file; a read that fails
    becomes a warning (and a note in the record), never the end of the report.

    Returns:
        None when the run had no eval dataset.
    """
    from vertex_rlhf.cloud.metrics import gs_uri
    from vertex_rlhf.data import files

    parameters = (job.get("runtime_config") or {}).get("parameter_values") or {}
    dataset = _text(parameters.get("eval_dataset"))
    if not dataset:
        return None
    details = (job.get("job_detail") or {}).get("task_details") or []
    bulk = next((d for d in details if d.get("task_name") == BULK_TASK), None)
    source = _text(_metadata(bulk).get(f"output:{BULK_OUTPUT}")) if bulk else ""
    if not source:
        state = _text(bulk.get("state")) if bulk else "not in the run"
        return EvalFacts(
            dataset,
            "",
            note=f"no bulk-inference output: the {BULK_TASK} task is {state or 'unknown'}"
            " (GCPC runs it when its preprocessor finds an inference dataset"
            " (has_inference_dataset) and the tuned model was written)",
        )
    uri = gs_uri(source)
    if uri is None:
        warnings.append(f"{BULK_TASK}: {BULK_OUTPUT} is not a gs:// path: {source!r}")
        return EvalFacts(dataset, source, note="the predictions' path is not a gs:// path")
    try:
        head = files.object_head(uri, count, SAMPLE_BYTES)
    except RLHFError as error:
        warnings.append(f"the bulk-inference predictions could not be read: {error.render()}")
        return EvalFacts(dataset, uri, note="the predictions could not be read (see warnings)")
    if head is None:
        return EvalFacts(dataset, uri, note="no predictions file there")
    rows = [parse_prediction(line) for line in head.lines if line.strip()]
    note = f"the first {len(rows)} row(s) of {head.name} ({head.size:,} bytes)"
    if head.cut:
        note += f"; the first row is longer than {SAMPLE_BYTES:,} bytes and is cut"
    return EvalFacts(dataset, head.name, rows, note)


def _first_text(value: Any, keys: tuple[str, ...]) -> str | None:
    """The first text among ``keys`` of a mapping, looking one level into mappings and
    lists (``{"inputs": {"inputs_pretokenized": ...}}``, ``{"predictions": [...]}``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value:
        return _first_text(value[0], keys)
    if isinstance(value, dict):
        for key in keys:
            if key in value:
                found = _first_text(value[key], keys)
                if found is not None:
                    return found
        messages = value.get("messages")
        if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
            content = messages[-1].get("content")
            return content if isinstance(content, str) else None
    return None


PROMPT_KEYS = ("inputs_pretokenized", "inputs", "input_text", "prompt", "input", "text")
RESPONSE_KEYS = ("prediction", "predictions", "output", "response", "targets")


def parse_prediction(line: bytes) -> EvalSample:
    """One predictions row as prompt and response.

    The bulk inferrer runs in a private image; the rows the published RLHF course reads
    are ``{"inputs": {"inputs_pretokenized": PROMPT}, "prediction": RESPONSE}``. Plain
    ``input_text``/``prompt`` and ``output``/``response`` fields are read too; anything
    else is shown as the raw row.
    """
    text = line.decode("utf-8", errors="replace").rstrip("\r")
    try:
        row = json.loads(text)
    except ValueError:
        return EvalSample("", "", text)
    if not isinstance(row, dict):
        return EvalSample("", "", text)
    prompt = _first_text({k: row[k] for k in PROMPT_KEYS if k in row}, PROMPT_KEYS)
    if prompt is None and "messages" in row:
        prompt = _first_text({"messages": row["messages"]}, ())
    response = _first_text({k: row[k] for k in RESPONSE_KEYS if k in row}, RESPONSE_KEYS)
    if prompt is None and response is None:
        return EvalSample("", "", text)
    return EvalSample(prompt or "", response or "")
