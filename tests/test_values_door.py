"""The one door for user-set values: every flag, make variable and path, as a table."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, SAMPLES, TEST_PROJECT
from vertex_rlhf import cli
from vertex_rlhf.config import catalog, values
from vertex_rlhf.errors import ConfigError

YES = ["1", "true", "True", "TRUE", "yes", "YES", "on", "On", " yes "]
NO = ["0", "false", "False", "no", "No", "off", "OFF"]
NEITHER = ["2", "y", "n", "t", "f", "maybe", "yes please", "-1", "1.0", "nein"]


@pytest.mark.parametrize("text", YES)
def test_yes_words(text: str) -> None:
    assert values.yes_no(text, "X") is True


@pytest.mark.parametrize("text", NO)
def test_no_words(text: str) -> None:
    assert values.yes_no(text, "X") is False


@pytest.mark.parametrize("text", ["", "  "])
def test_empty_is_unset(text: str) -> None:
    assert values.yes_no(text, "X") is None


@pytest.mark.parametrize("text", NEITHER)
def test_other_words_are_refused_naming_the_variable(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        values.yes_no(text, "DRY_RUN")
    assert str(caught.value).startswith(f"DRY_RUN: {text!r} is not a yes/no value")


RETIRED = ["text-bison@001", "text-bison@002", "chat-bison@001", "Text_Bison@001"]
UNKNOWN = ["llama-2-7b-chatt", "foo", "", "llama-3-8b", "gemini-1.0-pro"]


@pytest.mark.parametrize("name", RETIRED)
def test_retired_models_name_the_dates_the_page_and_what_can_be_tuned(name: str) -> None:
    problem = catalog.model_problem(name)
    assert problem is not None
    for part in ("2024-10-09", "2025-04-09", '"Pathways Language Model (PaLM)" deprecation page'):
        assert part in problem
    assert "llama-2-7b, llama-2-13b, llama-2-7b-chat, llama-2-13b-chat" in problem
    assert "bison" not in problem.split("tuned:")[-1]


@pytest.mark.parametrize("name", UNKNOWN)
def test_unknown_models_list_the_models_that_can_be_tuned(name: str) -> None:
    problem = catalog.model_problem(name)
    assert problem and problem.startswith(f"unsupported model {name!r}")
    assert ", ".join(catalog.tunable_models()) in problem


@pytest.mark.parametrize("name", [*catalog.tunable_models(), "Llama_2_7B", " t5-small "])
def test_tunable_models_pass(name: str) -> None:
    assert catalog.model_problem(name) is None


def test_a_deprecation_is_one_line_of_the_table() -> None:
    retired = {m.name for m in catalog.MODELS.values() if m.retired}
    assert retired == {"text-bison@001", "text-bison@002", "chat-bison@001"}
    assert set(catalog.tunable_models()) == set(catalog.MODELS) - retired


def kinds(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Paths that exist but are not files, and what each must be called."""
    directory = tmp_path / "dir.yaml"
    directory.mkdir()
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    sock = tmp_path / "sock.yaml"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock))
    server.close()
    return {
        "directory": (directory, "a directory"),
        "fifo": (fifo, "a FIFO (named pipe)"),
        "device": (Path("/dev/zero"), "a character device"),
        "socket": (sock, "a socket"),
    }


@pytest.mark.parametrize("kind", ["directory", "fifo", "device", "socket"])
def test_path_kinds_are_named(tmp_path: Path, kind: str) -> None:
    path, called = kinds(tmp_path)[kind]
    assert values.path_kind(path) == called
    problem = values.regular_file_problem(path, "--config")
    assert problem and f"is {called}" in problem


def run(*argv: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vertex_rlhf", *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "GOOGLE_CLOUD_PROJECT": TEST_PROJECT},
        timeout=60,  # a FIFO that blocked would end here
    )


def refused(result: subprocess.CompletedProcess[str], *parts: str) -> None:
    assert result.returncode == 12, result.stderr
    assert result.stderr.startswith("error[CONFIG_002]: "), result.stderr
    assert "Traceback" not in result.stderr
    for part in parts:
        assert part in result.stderr, result.stderr


@pytest.mark.parametrize("kind", ["directory", "fifo", "device", "socket"])
@pytest.mark.parametrize(
    "command",
    [
        ["validate-data", "--kind", "prompt", "--path", "{path}"],
        ["convert-data", "{path}", "{out}", "--kind", "prompt"],
        ["check", "{path}"],
        ["steps", "{path}"],
        ["migrate-config", "{path}"],
    ],
)
def test_every_path_a_user_passes_says_what_it_is(
    tmp_path: Path, kind: str, command: list[str]
) -> None:
    path, called = kinds(tmp_path)[kind]
    argv = [a.format(path=path, out=tmp_path / "out.jsonl") for a in command]
    if kind == "directory" and command[0] in ("check", "steps"):
        called = "is a directory, not an environment"
    if kind == "directory" and command[0] in ("validate-data", "convert-data"):
        called = "is a directory; give a"  # validate-data: in the validator's words
        result = run(*argv)
        assert result.returncode in (12, 15) and called in result.stdout + result.stderr
        assert not (tmp_path / "out.jsonl").exists()
        return
    refused(run(*argv), str(path), called)
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("kind", ["directory", "fifo", "socket"])
def test_a_parameter_file_that_is_not_a_file_is_not_an_environment(
    tmp_path: Path, kind: str
) -> None:
    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "base.yaml").write_bytes((REPO / "params" / "base.yaml").read_bytes())
    (tmp_path / "params" / "dev.yaml").write_bytes((REPO / "params" / "dev.yaml").read_bytes())
    path, called = kinds(tmp_path)[kind]
    os.rename(path, tmp_path / "params" / "x.yaml")
    result = run("steps", "x", cwd=tmp_path)
    refused(result, f"is {called}, not a parameter file", "environments in params: dev")
    # and it is never listed as one
    refused(run("steps", "nope", cwd=tmp_path), "environments in params: dev")


@pytest.mark.parametrize("model", ["llama-2-7b-chatt", "foo", *RETIRED])
def test_validate_data_checks_the_model_name(model: str) -> None:
    result = run(
        "validate-data",
        "--path",
        str(SAMPLES / "prompt.jsonl"),
        "--kind",
        "prompt",
        "--model",
        model,
    )
    refused(result, "--model: ", "models that can be tuned: t5-small")


@pytest.mark.parametrize("model", RETIRED)
@pytest.mark.parametrize(
    "command",
    [
        ["check", "dev"],
        ["plan", "dev"],
        ["submit", "dev", "--dry-run"],
        ["submit", "dev"],
        ["validate-data", "local"],
        ["steps", "dev"],
    ],
)
def test_retired_models_are_refused_by_every_command(model: str, command: list[str]) -> None:
    result = run(*command, f"training.large_model_reference={model}")
    refused(result, "can no longer be tuned", "2024-10-09", "2025-04-09")


@pytest.mark.parametrize("model", RETIRED)
def test_retired_models_are_refused_by_migrate_config_and_the_python_api(
    tmp_path: Path, model: str
) -> None:
    from vertex_rlhf import ConfigManager

    original = tmp_path / "production_config.yaml"
    original.write_text(
        "dataset:\n  preference_dataset: gs://b-1/p.jsonl\n  prompt_dataset: gs://b-1/q.jsonl\n"
        f"training:\n  large_model_reference: {model}\n  batch_size: 64\n"
        f"vertex_ai:\n  project_id: {TEST_PROJECT}\n  staging_bucket: gs://b-1/staging\n",
        encoding="utf-8",
    )
    params = tmp_path / "params"
    params.mkdir()
    (params / "base.yaml").write_bytes((REPO / "params" / "base.yaml").read_bytes())
    refused(
        run("migrate-config", str(original), "--params-dir", str(params)),
        f"{original}:5: training.large_model_reference:"
        f" {catalog.canonical_model_name(model)} can no longer be tuned",
    )
    assert sorted(p.name for p in params.iterdir()) == ["base.yaml"]
    with pytest.raises(ConfigError) as caught:
        ConfigManager(original).get_rlhf_config()
    assert "can no longer be tuned" in str(caught.value) and "2025-04-09" in str(caught.value)


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--timeout", "0", "above 0"),
        ("--timeout", "abc", "above 0"),
        ("--timeout", "inf", "above 0"),
        ("--poll-interval", "-1", "above 0"),
        ("--limit", "0", "from 1"),
        ("--limit", "1.5", "from 1"),
        ("--last", "x", "from 0"),
        ("--last", "-1", "from 0"),
        ("--max-reported", "-1", "from 0"),
        ("--seed", "-3", "from 0"),
        ("--eval-fraction", "1", "from 0 up to 1"),
        ("--eval-fraction", "nan", "from 0 up to 1"),
    ],
)
def test_typed_flags_are_refused_at_the_door(
    flag: str, value: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    command = {
        "--timeout": ["monitor", "job-1"],
        "--poll-interval": ["monitor", "job-1"],
        "--limit": ["runs", "dev"],
        "--last": ["compare"],
        "--max-reported": ["validate-data", "dev"],
        "--seed": ["convert-data", "in.jsonl", "out.jsonl", "--kind", "prompt"],
        "--eval-fraction": ["convert-data", "in.jsonl", "out.jsonl", "--kind", "prompt"],
    }[flag]
    assert cli.main([*command, flag, value]) == 12
    err = capsys.readouterr().err
    assert err.startswith(f"error[CONFIG_002]: {flag} {value!r}: ") and says in err


def test_config_error_carries_its_problems_in_str() -> None:
    error = ConfigError(["first problem", "second problem"], source="params/dev.yaml")
    assert "first problem" in str(error) and "second problem" in str(error)
    assert error.render() == f"error[CONFIG_002]: {error}"
    assert str(ConfigError(["only one"])) == "only one"


@pytest.mark.parametrize("kind", ["fifo", "device", "socket"])
@pytest.mark.parametrize("key", ["preference_dataset", "prompt_dataset", "eval_dataset"])
@pytest.mark.parametrize("command", ["steps", "validate-data", "check"])
def test_a_dataset_in_the_parameters_that_is_not_a_file_says_what_it_is(
    tmp_path: Path, kind: str, key: str, command: str
) -> None:
    path, called = kinds(tmp_path)[kind]
    result = run(command, "local", f"dataset.{key}={path}")
    refused(result, f"command-line override: dataset.{key}: '{path}': is {called}")


@pytest.mark.parametrize("kind", ["directory", "fifo", "device", "socket"])
@pytest.mark.parametrize("flag", ["output", "--eval-out", "--rejects"])
def test_an_output_that_is_not_a_file_is_never_replaced(
    tmp_path: Path, kind: str, flag: str
) -> None:
    path, called = kinds(tmp_path)[kind]
    argv = ["convert-data", str(SAMPLES / "preference.jsonl")]
    if flag == "output":
        argv += [str(path)]
    else:
        argv += [str(tmp_path / "out.jsonl"), flag, str(path)]
    refused(run(*argv, "--kind", "preference", "--force"), f"'{path}' is {called}; give a file")
    assert values.path_kind(path) == called
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("kind", ["missing", "directory", "fifo", "device", "socket"])
@pytest.mark.parametrize("action", ["--calculate-steps", "--validate", "--health-check"])
def test_original_config_flag_says_what_the_path_is(tmp_path: Path, kind: str, action: str) -> None:
    if kind == "missing":
        path, called = Path("configs/base_config.yaml"), "no such file"
    else:
        path, called = kinds(tmp_path)[kind]
        called = f"is {called}"
    result = subprocess.run(
        [sys.executable, "scripts/main.py", "--config", str(path), action],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "GOOGLE_CLOUD_PROJECT": TEST_PROJECT},
        timeout=60,
    )
    refused(
        result, f"config file '{path}': {called}", "give a parameter file (e.g. params/dev.yaml)"
    )
    assert "not a valid environment name" not in result.stderr


# Every grammar is matched whole: a pattern's `$` also matches before a final newline, so a
# value with one used to pass ("dev\n", "1.2.0\n", "gs://bucket/root\n").
GRAMMAR_CHECKED_KEYS = [
    ("vertex_ai.pipeline_root", "gs://rlhf-bucket/root"),
    ("vertex_ai.service_account", "runner@rlhf-test-project.iam.gserviceaccount.com"),
    ("vertex_ai.template_registry", "https://us-central1-kfp.pkg.dev/rlhf-project/repo"),
    ("vertex_ai.api_endpoint", "https://us-central1-aiplatform.googleapis.com"),
    ("vertex_ai.notify_emails", "[ops@example.com]"),
    ("training.tensorboard_resource_id", "projects/p/locations/us-central1/tensorboards/1"),
    ("training.encryption_spec_key_name", "projects/p/locations/l/keyRings/k/cryptoKeys/c"),
    ("dataset.preference_dataset", "gs://rlhf-bucket/preference.jsonl"),
]


@pytest.mark.usefixtures("project_env")
@pytest.mark.parametrize(
    ("key", "value"), GRAMMAR_CHECKED_KEYS, ids=[k for k, _ in GRAMMAR_CHECKED_KEYS]
)
def test_a_parameter_with_a_trailing_newline_is_refused(
    key: str, value: str, tmp_path: Path
) -> None:
    import shutil

    import yaml

    from tests.conftest import REPO
    from vertex_rlhf.config.params import load_params

    shutil.copyfile(REPO / "params" / "base.yaml", tmp_path / "base.yaml")
    section, name = key.split(".")

    def load(text: str) -> None:
        data: dict[str, dict[str, object]] = {
            "dataset": {
                "preference_dataset": "gs://rlhf-bucket/preference.jsonl",
                "prompt_dataset": "gs://rlhf-bucket/prompt.jsonl",
            }
        }
        data.setdefault(section, {})[name] = [text] if value.startswith("[") else text
        (tmp_path / "team.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
        load_params("team", params_dir=tmp_path)

    plain = value.strip("[]")
    load(plain)  # the value itself is valid
    with pytest.raises(ConfigError, match=name):
        load(plain + "\n")


@pytest.mark.parametrize(
    ("check", "text"),
    [
        ("environment", "dev\n"),
        ("tag", "1.2.0\n"),
        ("digest", "sha256:" + "a" * 64 + "\n"),
        ("job id", "rlhf-tuning-dev-1\n"),
        ("original env", "production\n"),
    ],
)
def test_a_name_with_a_trailing_newline_is_refused(check: str, text: str) -> None:
    from vertex_rlhf.config import environment, names
    from vertex_rlhf.original import layout

    if check == "environment":
        with pytest.raises(ConfigError):
            environment.check_name(text)
    elif check in ("tag", "digest"):
        assert names.tag_problem(text, digest_ok=True)
        assert names.tag_problem(text.strip(), digest_ok=True) is None
    elif check == "job id":
        assert names.new_job_id_problem(text)
        assert names.new_job_id_problem(text.strip()) is None
    else:
        with pytest.raises(ConfigError):
            layout._check_env_name(text)


def test_a_script_run_with_make_args_knows_its_own_absolute_path(tmp_path: Path) -> None:
    """`make bench-data` runs scripts/bench_data.py through the door; the script starts
    itself again from a temporary folder, which needs its own absolute path."""
    import subprocess
    import sys

    script = tmp_path / "scripts" / "where.py"
    script.parent.mkdir()
    script.write_text("import sys\nprint(__file__, sys.argv[1:])\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "vertex_rlhf.config.values", "scripts/where.py", "--a 'b c'"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{script} ['--a', 'b c']"
