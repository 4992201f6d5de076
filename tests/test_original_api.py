"""The original description's Python API: its examples run as written (imports from
``vertex_rlhf``), offline ones directly, cloud ones against the Vertex AI stand-in with the
real aiplatform SDK and the storage emulator."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, TEST_PROJECT, FakeClock
from tests.standins.vertex import (
    VertexStandIn,
    scale,
    timeline_success,
    timeline_training_failure,
)
from tests.test_legacy_config import PRODUCTION
from vertex_rlhf.errors import ConfigError, PipelineError

SERVICE_ACCOUNT = "rlhf-runner@rlhf-test-project.iam.gserviceaccount.com"
INSTANT = 1e-6  # a scripted hour in 3.6 ms: the job has ended by the first poll

# "Programmatic Usage" of the original description (imports from vertex_rlhf).
PROGRAMMATIC_USAGE = """
from vertex_rlhf import ConfigManager, TrainingCalculator, VertexAIClient

# Initialize pipeline
config_manager = ConfigManager("configs/production_config.yaml")
rlhf_config = config_manager.get_rlhf_config()

# Calculate training steps
calculator = TrainingCalculator()
steps = calculator.calculate_training_steps(
    preference_dataset_size=rlhf_config.dataset.preference_size,
    prompt_dataset_size=rlhf_config.dataset.prompt_size
)

# Run pipeline
client = VertexAIClient(rlhf_config)
job = client.create_pipeline_job(
    template_path="rlhf_pipeline.yaml",
    parameter_values=config_manager.get_parameter_values()
)

result = client.run_pipeline_job(job, wait_for_completion=True)
"""

# "Basic Training Example".
BASIC_TRAINING = """
from vertex_rlhf import ConfigManager, VertexAIClient

# Load configuration
config_manager = ConfigManager("configs/production_config.yaml")
rlhf_config = config_manager.get_rlhf_config()

# Initialize client
client = VertexAIClient(rlhf_config)

# Create and run job
job = client.create_pipeline_job(
    template_path="rlhf_pipeline.yaml",
    parameter_values=config_manager.get_parameter_values()
)

result = client.run_pipeline_job(job, wait_for_completion=True)

if result["success"]:
    print("Training completed successfully!")
else:
    print(f"Training failed: {result['error']}")
"""

# "Custom Monitoring Example" (send_alert and vertex_ai_client come from the caller).
CUSTOM_MONITORING = """
from vertex_rlhf import PipelineMonitor

def custom_callback(status):
    # Send alert if job fails
    if status["state"] == "FAILED":
        send_alert(f"Pipeline failed: {status['error']}")

    # Log progress every 10%
    if "progress" in status:
        print(f"Progress: {status['progress']}%")

monitor = PipelineMonitor(vertex_ai_client)
status = monitor.monitor_job_with_updates(
    job_id="your-job-id",
    callback=custom_callback
)
"""


@pytest.fixture
def workdir(
    tmp_path: Path, vertex: VertexStandIn, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A user's folder: configs/production_config.yaml (the original file, pointed at the
    stand-in), params/, compiled/ and rlhf_pipeline.yaml (the compiled template)."""
    config = PRODUCTION.replace('"your-project-id"', f'"{TEST_PROJECT}"').replace(
        '"gs://your-project-rlhf-staging"', f'"gs://rlhf-test-{uuid.uuid4().hex[:12]}"'
    )
    config += f'  api_endpoint: "{vertex.url}"\n  service_account: "{SERVICE_ACCOUNT}"\n'
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "production_config.yaml").write_text(config, encoding="utf-8")
    shutil.copytree(REPO / "params", tmp_path / "params")
    shutil.copytree(REPO / "compiled", tmp_path / "compiled")
    shutil.copyfile(REPO / "compiled" / "rlhf-tuning-1.0.0.yaml", tmp_path / "rlhf_pipeline.yaml")
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def test_the_api_is_exported_lazily_from_the_package() -> None:
    probe = (
        "import sys, vertex_rlhf\n"
        "from vertex_rlhf import TrainingCalculator, ConfigManager, TrainingSteps\n"
        "print(TrainingCalculator().calculate_training_steps(3000, 2000))\n"
        "heavy = [m for m in sys.modules if m.startswith(('google.cloud.aiplatform', 'kfp',"
        " 'google_cloud_pipeline_components'))]\n"
        "print('HEAVY', heavy)\n"
        "import vertex_rlhf as v\n"
        "print(sorted(set(v.__all__) - set(dir(v))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "TrainingSteps(reward_model_steps=1410, reinforcement_learning_steps=320)",
        "HEAVY []",
        "[]",
    ]
    import vertex_rlhf

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        vertex_rlhf.Nope  # noqa: B018


def test_training_calculator_as_described() -> None:
    from vertex_rlhf import TrainingCalculator, TrainingSteps

    calculator = TrainingCalculator()
    steps = calculator.calculate_training_steps(
        preference_dataset_size=3000, prompt_dataset_size=2000
    )
    assert steps == TrainingSteps(reward_model_steps=1410, reinforcement_learning_steps=320)
    assert calculator.calculate_training_steps(3009, 2000, reward_epochs=20, rl_epochs=15) == (
        TrainingSteps(reward_model_steps=48 * 20, reinforcement_learning_steps=32 * 15)
    )
    assert calculator.validate_training_parameters(3000, 2000, 30, 10) == (True, "valid")
    ok, message = calculator.validate_training_parameters(500, 2000, 30, 40)
    assert (
        ok
        and "outside the published guidance of 10-20" in message
        and "500 preference" in (message)
    )
    assert calculator.validate_training_parameters(0, 2000, 30, 10) == (
        False,
        "the preference dataset has no rows: cannot compute training steps",
    )
    assert calculator.validate_training_parameters(3000, 2000, 30, 0)[0] is False
    with pytest.raises(ConfigError, match="training steps: the prompt dataset has no rows"):
        calculator.calculate_training_steps(3000, 0)


def test_config_manager_reads_parameter_files_and_original_ones(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vertex_rlhf import ConfigManager

    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", TEST_PROJECT)
    dev = ConfigManager("params/dev.yaml")
    assert dev.get_rlhf_config().dataset.preference_size == 3000
    values = dev.get_parameter_values()
    assert values["reward_model_epochs"] == 30 and values["large_model_reference"] == "llama-2-7b"
    assert "project_id" not in values and "batch_size" not in values

    original = ConfigManager("configs/production_config.yaml")
    assert original.get_rlhf_config().vertex_ai.pipeline_root.startswith("gs://rlhf-test-")
    assert original.get_parameter_values()["reinforcement_learning_train_steps"] == 8000
    assert original.env == "production"

    with pytest.raises(ConfigError, match="no such file"):
        ConfigManager("params/nope.yaml").get_rlhf_config()
    with pytest.raises(ConfigError) as caught:
        ConfigManager("params/dev.yaml", ["training.kl_coef=1"]).get_rlhf_config()
    assert "training.kl_coef: unknown key" in caught.value.render()


@pytest.mark.usefixtures("storage_emulator")
def test_programmatic_usage_runs_as_written(workdir: Path, vertex: VertexStandIn) -> None:
    vertex.next_timeline = scale(timeline_success(), INSTANT)
    scope: dict[str, Any] = {}
    exec(PROGRAMMATIC_USAGE, scope)
    result = scope["result"]
    assert result["success"] is True, result
    assert result["state"] == "SUCCEEDED" and result["error"] is None
    [create] = vertex.calls("POST")
    body = create["body"]
    assert result["job_id"] == f"{create['path'][4:]}/{create['query']['pipelineJobId'][0]}"
    values = body["runtimeConfig"]["parameterValues"]
    assert values["reward_model_train_steps"] == 10000
    assert values["reinforcement_learning_train_steps"] == 8000
    assert body["runtimeConfig"]["gcsOutputDirectory"].startswith("gs://rlhf-test-")
    assert body["serviceAccount"] == SERVICE_ACCOUNT
    assert body["labels"]["environment"] == "production"
    assert scope["steps"].reward_model_steps == 782 * 30  # ceil(50000 / 64) * 30


@pytest.mark.usefixtures("storage_emulator")
@pytest.mark.parametrize("fails", [False, True])
def test_basic_training_example_runs_as_written(
    workdir: Path, vertex: VertexStandIn, capsys: pytest.CaptureFixture[str], fails: bool
) -> None:
    timeline = (
        timeline_training_failure("The replica workerpool0-0 ran out of memory (OOM).")
        if fails
        else timeline_success()
    )
    vertex.next_timeline = scale(timeline, INSTANT)
    scope: dict[str, Any] = {}
    exec(BASIC_TRAINING, scope)
    out = capsys.readouterr().out
    if not fails:
        assert out.splitlines()[-1] == "Training completed successfully!"
        return
    assert "Training failed: error[TRAINING_004]: projects/" in out
    assert "ended FAILED at reward-model-trainer: The replica workerpool0-0 ran out of" in out
    assert scope["result"]["error_code"] == "TRAINING_004"
    assert scope["result"]["status"]["failed_task"] == "reward-model-trainer"


def test_custom_monitoring_example_runs_as_written(
    workdir: Path, vertex: VertexStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    from vertex_rlhf import ConfigManager, VertexAIClient

    vertex.add_job(
        f"projects/{TEST_PROJECT}/locations/us-central1/pipelineJobs/your-job-id",
        scale(timeline_training_failure("Quota exceeded for a2-ultragpu-8g"), INSTANT),
    )
    alerts: list[str] = []
    client = VertexAIClient(ConfigManager("configs/production_config.yaml").get_rlhf_config())
    scope: dict[str, Any] = {"send_alert": alerts.append, "vertex_ai_client": client}
    exec(CUSTOM_MONITORING, scope)
    assert alerts == ["Pipeline failed: Quota exceeded for a2-ultragpu-8g"]
    assert "Progress: " in capsys.readouterr().out
    assert scope["status"]["state"] == "FAILED"
    report = scope["monitor"].generate_monitoring_report(scope["status"])
    assert "failed task: reward-model-trainer (reward model)" in report


def test_monitor_callback_and_a_string_metrics_log(
    workdir: Path, vertex_on_fake_clock: VertexStandIn, clock: FakeClock
) -> None:
    from vertex_rlhf import ConfigManager, PipelineMonitor, VertexAIClient

    vertex = vertex_on_fake_clock
    job = f"projects/{TEST_PROJECT}/locations/us-central1/pipelineJobs/rlhf-tuning-prod-1"
    vertex.add_job(job, timeline_success(3600.0))
    rlhf_config = ConfigManager("configs/production_config.yaml").get_rlhf_config()
    rlhf_config.vertex_ai.api_endpoint = vertex.url
    client = VertexAIClient(rlhf_config)
    log = str(workdir / "runs" / "prod.jsonl")  # a plain string, as users write it
    monitor = PipelineMonitor(
        client, metrics_log=log, clock=clock, sleep=clock.sleep, now=clock.now, out=io.StringIO()
    )
    seen: list[tuple[str, int]] = []
    status = monitor.monitor_job_with_updates(
        "rlhf-tuning-prod-1", callback=lambda s: seen.append((s["state"], s["progress"]))
    )
    assert status["state"] == "SUCCEEDED"
    assert seen[0][0] == "PENDING" and seen[-1] == ("SUCCEEDED", 100) and len(seen) > 3
    records = [json.loads(line) for line in Path(log).read_text().splitlines()]
    assert {"timestamp", "job_id", "stage", "metrics"} <= set(records[0])
    assert records[-1]["metrics"] == {"state": "SUCCEEDED", "progress": 100}
    # one read, as monitor_pipeline_job gives it
    assert client.monitor_pipeline_job(job)["state"] == "SUCCEEDED"


def test_monitor_pipeline_job_reads_once(workdir: Path, vertex: VertexStandIn) -> None:
    from vertex_rlhf import ConfigManager, VertexAIClient

    job = f"projects/{TEST_PROJECT}/locations/us-central1/pipelineJobs/rlhf-tuning-prod-2"
    vertex.add_job(job, timeline_success(3600.0))
    client = VertexAIClient(ConfigManager("configs/production_config.yaml"))
    status = client.monitor_pipeline_job("rlhf-tuning-prod-2")
    assert status["job_id"] == job and status["state"] in ("PENDING", "RUNNING")
    assert len(vertex.calls("GET")) == 1
    with pytest.raises(ConfigError, match="neither a job id"):
        client.monitor_pipeline_job("Bad Job!")


def _task_caching(job: object) -> set[bool]:
    spec = job.to_dict()["pipelineSpec"]  # type: ignore[attr-defined]
    found: set[bool] = set()
    for dag in [
        spec["root"]["dag"],
        *(c["dag"] for c in spec["components"].values() if "dag" in c),
    ]:
        for task in dag["tasks"].values():
            found.add(bool(task.get("cachingOptions", {}).get("enableCache", False)))
    return found


def test_the_api_and_the_cli_share_one_caching_policy(workdir: Path) -> None:
    """enable_caching=True is accepted by both faces (README "Caching and resuming"), and
    the argument overrides vertex_ai.enable_caching as an OVERRIDES= would."""
    from vertex_rlhf import VertexAIClient

    client = VertexAIClient("configs/production_config.yaml")
    assert _task_caching(client.create_pipeline_job("rlhf_pipeline.yaml", enable_caching=True)) == {
        True
    }
    assert _task_caching(
        client.create_pipeline_job("rlhf_pipeline.yaml", enable_caching=False)
    ) == {False}
    # None keeps the template's per-task settings: some tasks cache, the trainers do not.
    assert _task_caching(client.create_pipeline_job("rlhf_pipeline.yaml")) == {True, False}


def test_create_pipeline_job_refuses_what_it_cannot_run(workdir: Path) -> None:
    from vertex_rlhf import VertexAIClient

    client = VertexAIClient("configs/production_config.yaml")
    with pytest.raises(PipelineError) as caught:
        client.create_pipeline_job("missing.yaml", {})
    assert "missing.yaml: no compiled template there; the compiled one is compiled/" in (
        caught.value.render()
    )
    from vertex_rlhf import ConfigManager

    values = ConfigManager("configs/production_config.yaml").get_parameter_values()
    with pytest.raises(ConfigError) as caught_values:
        client.create_pipeline_job("rlhf_pipeline.yaml", {**values, "kl_coef": 0.1})
    assert "kl_coef" in caught_values.value.render()
    job = client.create_pipeline_job("rlhf_pipeline.yaml", enable_caching=False)
    assert job.job_id.startswith("rlhf-tuning-production-")
    other = VertexAIClient("configs/production_config.yaml")
    result = other.run_pipeline_job(job)
    assert result["success"] is False and result["error_code"] == "PIPELINE_003"
    assert "not made by this client" in result["error"]


@pytest.mark.usefixtures("storage_emulator")
def test_run_without_waiting_returns_the_submitted_job(
    workdir: Path, vertex: VertexStandIn
) -> None:
    from vertex_rlhf import VertexAIClient

    client = VertexAIClient("configs/production_config.yaml")
    result = client.run_pipeline_job(client.create_pipeline_job("rlhf_pipeline.yaml"))
    assert result["success"] is True and result["state"] == "SUBMITTED"
    methods = [r["method"] for r in vertex.requests]
    # Looked up by id before the create (not there yet), never read after it.
    assert result["job_id"] in vertex.jobs and "GET" not in methods[methods.index("POST") :]
    assert result["console_url"].startswith("https://console.cloud.google.com/vertex-ai/")


def test_run_reports_a_refused_create_as_a_coded_error(
    workdir: Path, vertex: VertexStandIn, storage_emulator: str
) -> None:
    from vertex_rlhf import VertexAIClient

    vertex.fail_next(1, 403, "POST")
    client = VertexAIClient("configs/production_config.yaml")
    result = client.run_pipeline_job(client.create_pipeline_job("rlhf_pipeline.yaml"))
    assert result["success"] is False and result["error_code"] == "AUTH_001"
    assert vertex.jobs == {}


def test_health_checker_fails_on_parameters_it_cannot_read(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from vertex_rlhf import HealthChecker

    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    checker = HealthChecker()
    assert checker.config_path == Path("params/dev.yaml")
    assert checker.check_resources() is False
    err = capsys.readouterr().err
    assert err.startswith("error[CONFIG_002]: params/base.yaml:")
    assert "GOOGLE_CLOUD_PROJECT is not set" in err and "Traceback" not in err


def _doctor_records(monkeypatch: pytest.MonkeyPatch, status: str) -> list[Any]:
    """Stands for the doctor's checks: records the setting each run checks."""
    from vertex_rlhf.cloud.health import CheckResult
    from vertex_rlhf.usecases import doctor

    checked: list[Any] = []

    def checks(setting: Any) -> list[CheckResult]:
        checked.append(setting)
        return [
            CheckResult("project", status, setting.params.vertex_ai.project_id, code="AUTH_001")
        ]

    monkeypatch.setattr(doctor, "doctor", checks)
    return checked


@pytest.mark.parametrize(("status", "healthy"), [("pass", True), ("fail", False)])
def test_health_checker_takes_the_parameters_the_client_takes(
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    status: str,
    healthy: bool,
) -> None:
    """``HealthChecker(rlhf_config)``, as ``VertexAIClient(rlhf_config)``, checks those
    parameters (it raised TypeError from pathlib)."""
    from vertex_rlhf import ConfigManager, HealthChecker

    checked = _doctor_records(monkeypatch, status)
    rlhf_config = ConfigManager("configs/production_config.yaml").get_rlhf_config()
    assert HealthChecker(rlhf_config).check_resources() is healthy
    assert [s.params for s in checked] == [rlhf_config]
    assert TEST_PROJECT in capsys.readouterr().out


def test_health_checker_of_a_config_manager_checks_it_with_its_overrides(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vertex_rlhf import ConfigManager, HealthChecker

    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", TEST_PROJECT)
    checked = _doctor_records(monkeypatch, "pass")
    manager = ConfigManager("params/dev.yaml", ["vertex_ai.project_id=another-project-7"])
    assert HealthChecker(manager).check_resources() is True
    assert [s.params.vertex_ai.project_id for s in checked] == ["another-project-7"]


def test_the_api_and_rlhf_submit_send_the_same_request(
    workdir: Path, vertex: VertexStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    """One submit path: the Python API and `rlhf submit` build their create requests with the
    same use case, so the bodies agree in everything but the job id."""
    from vertex_rlhf import VertexAIClient, cli

    config = "configs/production_config.yaml"
    assert cli.main(["migrate-config", config, "--params-dir", "params"]) == 0
    manifest = json.loads(Path("compiled/manifest.json").read_text(encoding="utf-8"))
    current = Path("compiled") / manifest["templates"][manifest["current"]]["file"]
    client = VertexAIClient(config)
    assert client.run_pipeline_job(client.create_pipeline_job(current))["success"] is True
    assert cli.main(["submit", "production", "--yes"]) == 0, capsys.readouterr().err
    api, face = (request["body"] for request in vertex.calls("POST"))
    for body in (api, face):
        body.pop("name", None)
    assert api["labels"] == face["labels"]
    assert api["runtimeConfig"] == face["runtimeConfig"]
    assert api["pipelineSpec"] == face["pipelineSpec"]
    assert api == face


# --- the original Python API: counts are whole numbers, never rounded -----------------------


@pytest.mark.parametrize(
    ("sizes", "argument"),
    [
        ((3000.5, 2000), "preference_dataset_size"),
        ((True, 2000), "preference_dataset_size"),
        ((3000, "2k"), "prompt_dataset_size"),
        ((-1, 2000), "preference_dataset_size"),
        ((3000, 2000, 2.5), "reward_epochs"),
        ((10**30, 2000), "preference_dataset_size"),
        ((3000, None), "prompt_dataset_size"),
    ],
)
def test_training_calculator_refuses_counts_it_would_have_to_round(
    sizes: tuple[Any, ...], argument: str
) -> None:
    from vertex_rlhf import TrainingCalculator

    calculator = TrainingCalculator()
    with pytest.raises(ConfigError, match=f"training steps: {argument} must be a whole number"):
        calculator.calculate_training_steps(*sizes)
    ok, message = calculator.validate_training_parameters(*sizes)
    # validate_training_parameters names them as the seed does: preference_size, ...
    assert not ok and message.startswith(f"{argument.replace('_dataset', '')} must be a whole")


def test_training_calculator_takes_whole_numbers_in_any_spelling() -> None:
    from vertex_rlhf import TrainingCalculator, TrainingSteps

    expected = TrainingSteps(reward_model_steps=1410, reinforcement_learning_steps=320)
    assert TrainingCalculator().calculate_training_steps(3000.0, "2000") == expected
