"""Classes of bad parameter input: each is CONFIG_002 naming the file, line and key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.conftest import TEST_PROJECT
from vertex_rlhf.config.params import is_label_text, load_params
from vertex_rlhf.errors import ConfigError

# What a team file needs besides base.yaml, passed as overrides (minus the key under test).
REQUIRED = {
    "dataset.preference_dataset": "gs://bucket/prefs/*.jsonl",
    "dataset.prompt_dataset": "gs://bucket/prompts/*.jsonl",
}


def required(but: str = "") -> list[str]:
    return [f"{key}={value}" for key, value in REQUIRED.items() if key != but]


def problems(params_dir: Path, env: str, *overrides: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_params(env, overrides, params_dir)
    assert caught.value.exit_status == 12
    return caught.value.problems


def write(params_dir: Path, name: str, text: str | bytes) -> Path:
    path = params_dir / f"{name}.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("content", "line", "byte"),
    [
        (b"training:\n  instruction: caf\xe9\n", 2, "0xe9"),  # Latin-1
        (b"# \xff\xfe\n", 1, "0xff"),
        (
            b"dataset:\n  eval_dataset: null\n\n\ntraining:\n  instruction: \xed\xa0\x80\n",
            6,
            "0xed",
        ),
    ],
)
def test_a_file_that_is_not_utf8_names_the_line(
    params_dir: Path, content: bytes, line: int, byte: str
) -> None:
    path = write(params_dir, "team", content)
    [problem] = problems(params_dir, "team")
    assert problem.startswith(f"{path}:{line}: not valid UTF-8 (byte {byte}")
    assert "save the file as UTF-8" in problem


@pytest.mark.usefixtures("project_env")
def test_an_override_that_is_not_utf8(params_dir: Path) -> None:
    # What Python makes of a non-UTF-8 byte in argv (surrogateescape).
    [problem] = problems(params_dir, "dev", "training.instruction=caf\udce9")
    assert "not valid UTF-8" in problem


@pytest.mark.usefixtures("project_env")
@pytest.mark.parametrize(
    ("key", "written", "read_as"),
    [
        ("training.instruction", "no", "the boolean false"),
        ("vertex_ai.network", "off", "the boolean false"),
        ("vertex_ai.experiment", "false", "the boolean false"),
        ("vertex_ai.experiment", "yes", "the boolean true"),
        ("training.model_display_name", "1.10", "the number 1.1"),
        ("vertex_ai.labels.team", "0x1F", "the number 31"),
        ("vertex_ai.service_account", "on", "the boolean true"),
    ],
)
def test_yaml_11_words_in_text_fields_are_refused_with_the_line(
    params_dir: Path, key: str, written: str, read_as: str
) -> None:
    section, *rest = key.split(".")
    body = "".join(f"{'  ' * (i + 1)}{part}:\n" for i, part in enumerate(rest[:-1]))
    indent = "  " * len(rest)
    path = write(params_dir, "team", f"{section}:\n{body}{indent}{rest[-1]}: {written}\n")
    [problem] = problems(params_dir, "team")
    assert problem.startswith(f"{path}:{len(rest) + 1}: {key}: {written!r} is read as {read_as}")
    assert f'{rest[-1]}: "{written}"' in problem  # the hint: quote it
    # The same word as an override is refused too, naming the override.
    [problem] = problems(params_dir, "dev", f"{key}={written}")
    assert problem.startswith(f"command-line override: {key}: {written!r} is read as {read_as}")


@pytest.mark.usefixtures("project_env")
def test_quoted_words_are_text(params_dir: Path) -> None:
    write(
        params_dir,
        "team",
        """
        training:
          instruction: "no"
          model_display_name: '1.10'
        vertex_ai:
          network: "off"
        """,
    )
    params = load_params("team", required(), params_dir)
    assert params.training.instruction == "no"
    assert params.training.model_display_name == "1.10"
    assert params.vertex_ai.network == "off"


@pytest.mark.parametrize(
    ("key", "value", "variable"),
    [
        ("vertex_ai.region", '" us-central1"', None),
        ("training.large_model_reference", '"llama-2-7b "', None),
        ("dataset.preference_dataset", '"gs://bucket/prefs/*.jsonl\\n"', None),
        ("vertex_ai.service_account", '"\\tsa@p.iam.gserviceaccount.com"', None),
        ("vertex_ai.project_id", "${oc.env:GOOGLE_CLOUD_PROJECT}", f"{TEST_PROJECT} "),
    ],
)
def test_leading_or_trailing_whitespace_is_refused(
    params_dir: Path, monkeypatch: pytest.MonkeyPatch, key: str, value: str, variable: str | None
) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", variable or TEST_PROJECT)
    section, name = key.split(".")
    path = write(params_dir, "team", f"{section}:\n  {name}: {value}\n")
    found = problems(params_dir, "team", *required(but=key))
    mine = [p for p in found if f": {key}: " in p]
    assert len(mine) == 1, found
    assert mine[0].startswith(f"{path}:2: {key}: ")
    assert "leading or trailing whitespace" in mine[0]


@pytest.mark.usefixtures("project_env")
def test_instruction_is_free_text(params_dir: Path) -> None:
    write(params_dir, "team", "training:\n  instruction: |\n    Summarize.\n")
    params = load_params("team", required(), params_dir)
    assert params.training.instruction == "Summarize.\n"


@pytest.mark.usefixtures("project_env")
@pytest.mark.parametrize(
    ("text", "line", "section", "got"),
    [
        ("training: 5\n", 1, "training", "the number 5"),
        ("dataset:\n  eval_dataset: null\nvertex_ai: us-central1\n", 3, "vertex_ai", "the text"),
        ("dataset: [a, b]\n", 1, "dataset", "a list"),
        ("vertex_ai:\n  labels: team-a\n", 2, "vertex_ai.labels", "the text"),
    ],
)
def test_a_section_given_a_scalar_says_a_mapping_is_expected(
    params_dir: Path, text: str, line: int, section: str, got: str
) -> None:
    path = write(params_dir, "team", text)
    [problem] = problems(params_dir, "team")
    assert problem.startswith(f"{path}:{line}: {section}: is a section, so it takes a mapping")
    assert f"not {got}" in problem


@pytest.mark.usefixtures("project_env")
def test_a_section_given_a_scalar_on_the_command_line(params_dir: Path) -> None:
    [problem] = problems(params_dir, "dev", "training=5")
    assert problem.startswith("command-line override: training: is a section")
    assert "training.kl_coeff=0.2" in problem


@pytest.mark.usefixtures("project_env")
def test_an_empty_section_is_allowed(params_dir: Path) -> None:
    write(params_dir, "team", "training:\n  # nothing here yet\nvertex_ai:\n")
    assert load_params("team", required(), params_dir).training.kl_coeff == 0.1


@pytest.mark.parametrize(
    ("text", "got"),
    [("hello\n", "the text 'hello'"), ("5\n", "the number 5"), ("- a\n- b\n", "a list")],
)
def test_a_document_that_is_not_a_mapping(params_dir: Path, text: str, got: str) -> None:
    path = write(params_dir, "team", text)
    [problem] = problems(params_dir, "team")
    assert problem.startswith(f"{path}:1: the document is {got}; a parameter file is a mapping")


@pytest.mark.parametrize(
    "project",
    ["123456789012", "rlhf-test-project", "example.com:my-project", "a23456"],
)
def test_vertex_accepts_project_numbers_and_ids(params_dir: Path, project: str) -> None:
    params = load_params(
        "dev",
        [f"vertex_ai.project_id='{project}'", "vertex_ai.pipeline_root=gs://bucket/root"],
        params_dir,
    )
    assert params.vertex_ai.project_id == project


@pytest.mark.parametrize("project", ["my_project", "ab", "-abcdef", "abcdef-", "0123", "My-Proj"])
def test_invalid_projects_are_refused(params_dir: Path, project: str) -> None:
    [problem] = problems(
        params_dir,
        "dev",
        f"vertex_ai.project_id='{project}'",
        "vertex_ai.pipeline_root=gs://bucket/root",
    )
    assert "vertex_ai.project_id" in problem and "project number" in problem


@pytest.mark.parametrize(
    ("text", "key", "valid"),
    [
        ("équipe", True, True),
        ("données", False, True),
        ("チーム", True, True),
        ("", False, True),
        ("", True, False),
        ("1team", True, False),
        ("1team", False, True),
        ("Team", False, False),
        ("a" * 63, True, True),
        ("a" * 64, True, False),
        ("a.b", False, False),
    ],
)
def test_label_rules_follow_vertex(text: str, key: bool, valid: bool) -> None:
    assert is_label_text(text, key=key) is valid


@pytest.mark.usefixtures("project_env")
def test_international_labels_load_and_reserved_keys_are_refused(params_dir: Path) -> None:
    params = load_params("dev", ["vertex_ai.labels.équipe=données"], params_dir)
    assert params.vertex_ai.labels["équipe"] == "données"
    for key in ("environment", "vertex-ai-pipelines-run-billing-id"):
        [problem] = problems(params_dir, "dev", f"vertex_ai.labels.{key}=x")
        assert f"vertex_ai.labels.{key}" in problem and "reserved" in problem


@pytest.mark.usefixtures("project_env")
@pytest.mark.parametrize("override", ["training.=5", "training..kl_coeff=1", ".training=1"])
def test_an_override_key_with_an_empty_part(params_dir: Path, override: str) -> None:
    [problem] = problems(params_dir, "dev", override)
    assert problem.startswith(f"override {override!r}: ") and "has an empty part" in problem


# --- parameter files too large to be parameter files ----------------------------------------


@pytest.mark.parametrize("shape", ["many keys", "alias bomb"])
def test_a_huge_parameter_file_is_refused_without_advice_to_raise_limits(
    shape: str, tmp_path: Path
) -> None:
    if shape == "many keys":
        text = "training:\n" + "".join(f"  k{i}: {i}\n" for i in range(20000))
    else:
        text = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 7)
        )
    (tmp_path / "base.yaml").write_text("{}\n", encoding="utf-8")
    (tmp_path / "huge.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_params("huge", [], tmp_path)
    message = raised.value.render()
    assert "huge.yaml: too large" in message and "remove repeated or aliased" in message
    assert "max_yaml_expanded_nodes" not in message
    assert raised.value.exit_status == 12
