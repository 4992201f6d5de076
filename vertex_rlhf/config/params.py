"""The parameter schema (defined once, as OmegaConf structured configs) and its loader.

``params/base.yaml`` is merged with ``params/<env>.yaml`` and then with dotlist
overrides (``training.kl_coeff=0.2``). Unknown keys, wrong types, missing values,
unset environment variables and out-of-range values all raise ``ConfigError``
(CONFIG_002) naming the file, line and key.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import stat
import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf._yaml import get_yaml_loader  # the loader OmegaConf.create uses
from omegaconf.errors import ConfigKeyError, MissingMandatoryValue, OmegaConfBaseException

from vertex_rlhf.config import catalog, names
from vertex_rlhf.config.environment import Environment, resolve_environment
from vertex_rlhf.errors import ConfigError

# GCPC's documented maxima for the sequence lengths.
MAX_PROMPT_SEQUENCE_LENGTH = 8192
MAX_TARGET_SEQUENCE_LENGTH = 1024


# Marks a key that is also an input of the pipeline, under the same name
# (``field(..., metadata=PIPELINE_INPUT)``): submit sends its value as that input
# (``template/signature.py``); null and ``[]`` are left out, so the template's own default
# applies. A test holds the names, types and defaults equal to the compiled template's.
PIPELINE_INPUT = {"pipeline_input": True}


@dataclass
class DatasetParams:
    """Where the data is, and how many rows it is expected to have."""

    preference_dataset: str = field(default=MISSING, metadata=PIPELINE_INPUT)
    prompt_dataset: str = field(default=MISSING, metadata=PIPELINE_INPUT)
    eval_dataset: Optional[str] = field(default=None, metadata=PIPELINE_INPUT)
    # Expected row counts, for computing steps offline (the pipeline counts real rows).
    preference_size: Optional[int] = None
    prompt_size: Optional[int] = None
    # Local files are only for the local environment: Vertex reads gs:// paths.
    allow_local_paths: bool = False


@dataclass
class TrainingParams:
    """What to tune and how; every GCPC rlhf_pipeline parameter has a key here."""

    large_model_reference: str = field(default=MISSING, metadata=PIPELINE_INPUT)
    reward_model_epochs: int = field(default=30, metadata=PIPELINE_INPUT)
    reinforcement_learning_epochs: int = field(default=10, metadata=PIPELINE_INPUT)
    # Explicit step counts override the ones computed from rows and epochs.
    reward_model_train_steps: Optional[int] = field(default=None, metadata=PIPELINE_INPUT)
    reinforcement_learning_train_steps: Optional[int] = field(default=None, metadata=PIPELINE_INPUT)
    reward_model_learning_rate_multiplier: float = field(default=1.0, metadata=PIPELINE_INPUT)
    reinforcement_learning_rate_multiplier: float = field(default=1.0, metadata=PIPELINE_INPUT)
    kl_coeff: float = field(default=0.1, metadata=PIPELINE_INPUT)
    instruction: Optional[str] = field(default=None, metadata=PIPELINE_INPUT)
    prompt_sequence_length: int = field(default=512, metadata=PIPELINE_INPUT)
    target_sequence_length: int = field(default=64, metadata=PIPELINE_INPUT)
    accelerator_type: str = field(default=catalog.GPU, metadata=PIPELINE_INPUT)
    deploy_model: bool = field(default=True, metadata=PIPELINE_INPUT)
    model_display_name: Optional[str] = field(default=None, metadata=PIPELINE_INPUT)
    tensorboard_resource_id: Optional[str] = field(default=None, metadata=PIPELINE_INPUT)
    encryption_spec_key_name: Optional[str] = field(default=None, metadata=PIPELINE_INPUT)


@dataclass
class VertexParams:
    """Where and as whom the pipeline job runs."""

    project_id: str = MISSING
    region: str = "us-central1"
    pipeline_root: str = MISSING
    pipeline_display_name: str = "rlhf-tuning"
    service_account: Optional[str] = None
    network: Optional[str] = None
    experiment: Optional[str] = None
    # null keeps the template's per-task settings: GCPC's import and preprocessing tasks
    # are cached, its reward-model trainer and reinforcer are not (GCPC turns them off),
    # our checks and step computation never are. true caches every task, trainers
    # included (to resume after a late failure); our tasks still run, as their cache key
    # holds the job's uuid. false caches nothing. The SDK applies true/false to every task.
    enable_caching: Optional[bool] = None
    labels: dict[str, str] = field(default_factory=dict)
    # Where templates are published: https://REGION-kfp.pkg.dev/PROJECT/REPO.
    template_registry: Optional[str] = None
    # Submit this registry version (a tag such as 1.0.0 or latest, or sha256:...);
    # null submits the local compiled template.
    template_version: Optional[str] = None
    # A private (PSC) endpoint; an http:// endpoint is a local emulator, used anonymously.
    api_endpoint: Optional[str] = None
    # Up to 3 addresses Vertex AI e-mails when a run ends (succeeded or failed). With
    # addresses a run uses the template's -notify variant; [] runs hold no e-mail task.
    notify_emails: list[str] = field(default_factory=list, metadata=PIPELINE_INPUT)


@dataclass
class RLHFParams:
    """A whole parameter file, as resolved for one environment."""

    dataset: DatasetParams = field(default_factory=DatasetParams)
    training: TrainingParams = field(default_factory=TrainingParams)
    vertex_ai: VertexParams = field(default_factory=VertexParams)


@dataclass
class Source:
    """One layer of the merge: a file or the command-line overrides."""

    label: str
    config: DictConfig
    lines: dict[str, int]  # dotted key -> 1-based line, where known
    raw: dict[str, str] = field(default_factory=dict)  # dotted key -> the scalar as written

    def where(self, key: str) -> str:
        line = self.lines.get(key)
        return f"{self.label}:{line}" if line else self.label


def _key_nodes(node: yaml.Node, prefix: str = "") -> tuple[dict[str, int], dict[str, str]]:
    """Maps every dotted key of a composed YAML document to its line and its raw scalar."""
    lines: dict[str, int] = {}
    raw: dict[str, str] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = f"{prefix}{key_node.value}"
            lines[key] = key_node.start_mark.line + 1
            if isinstance(value_node, yaml.ScalarNode):
                raw[key] = value_node.value
            nested_lines, nested_raw = _key_nodes(value_node, key + ".")
            lines.update(nested_lines)
            raw.update(nested_raw)
    return lines, raw


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise ConfigError(
            [
                f"{path}:{line}: not valid UTF-8 (byte 0x{data[error.start]:02x} at column"
                f" {column}); save the file as UTF-8"
            ]
        ) from None


# A parameter file holds a few dozen keys; the longest value GCPC can use (an instruction
# within prompt_sequence_length, 8192 tokens) is some 32 kB. PyYAML parses a few MB/s.
MAX_PARAMETER_FILE_BYTES = 1024 * 1024


def read_parameter_text(path: Path) -> str:
    """A parameter (or original-layout config) file's text, checked before it is parsed.

    Raises:
        ConfigError: unreadable, larger than ``MAX_PARAMETER_FILE_BYTES``, or not UTF-8
            (naming the line and column).
    """
    from vertex_rlhf.config.filekinds import path_kind

    try:
        # O_NONBLOCK: a FIFO with no writer opens at once instead of waiting for one.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as error:
        raise ConfigError([f"{path}: cannot be read ({error.strerror})"]) from None
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConfigError(
                [f"{path}: is {path_kind(path)}, not a parameter file; give a .yaml file"]
            )
        try:
            data = file.read(MAX_PARAMETER_FILE_BYTES + 1)
        except OSError as error:
            raise ConfigError([f"{path}: cannot be read ({error.strerror})"]) from None
    if len(data) > MAX_PARAMETER_FILE_BYTES:
        raise ConfigError(
            [
                f"{path}: too large: more than {MAX_PARAMETER_FILE_BYTES // 1024} KB; a"
                " parameter file holds a few dozen keys (is it the right file?)"
            ]
        )
    return _decode(path, data)


def _load_file(path: Path) -> Source:
    text = read_parameter_text(path)
    loader = get_yaml_loader()
    try:
        node = yaml.compose(text, Loader=loader)
        content = yaml.load(text, Loader=loader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(error, "problem", None) or str(error)
        if "node expansion exceeds" in problem:
            # OmegaConf's guard against alias bombs, which also trips on a file that is
            # merely huge; its advice (raise the limit) is not for parameter files.
            raise ConfigError(
                [
                    f"{path}: too large: more than OmegaConf's limit of YAML nodes once"
                    " aliases are expanded; a parameter file holds a few dozen keys: remove"
                    " repeated or aliased content"
                ]
            ) from None
        raise ConfigError([f"{where}: not valid YAML ({problem}); fix the syntax"]) from None
    if content is None:
        content = {}
    if not isinstance(content, dict):
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        raise ConfigError(
            [
                f"{path}{line}: the document is {_describe(content)}; a parameter file is a"
                f" mapping of sections ({', '.join(SECTIONS)}), e.g. training:"
                " {kl_coeff: 0.2}"
            ]
        )
    lines, raw = _key_nodes(node) if node is not None else ({}, {})
    source = Source(str(path), OmegaConf.create({}), lines, raw)
    problems = list(_shape_problems(content, RLHFParams, "", source))
    if problems:
        raise ConfigError(problems, source=str(path))
    try:
        source.config = OmegaConf.create(content)
    except OmegaConfBaseException as error:
        raise ConfigError([f"{path}: {str(error).splitlines()[0]}"]) from None
    return source


def _describe(value: Any) -> str:
    """Names what a YAML value was read as, for messages."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a value of type {type(value).__name__}"


def _schema_kind(schema: Any, name: str) -> tuple[str, Any]:
    """What the schema holds under ``name`` of ``schema``.

    Returns:
        ``("section", class)``, ``("mapping", None)`` (labels), ``("text", None)``,
        ``("list", None)`` (a list of text), ``("other", None)``, or ``("unknown", None)``.
    """
    fields = {f.name: f for f in dataclasses.fields(schema)}
    f = fields.get(name)
    if f is None:
        return "unknown", None
    nested = _field_class(f)
    if nested is not None:
        return "section", nested
    hint = typing.get_type_hints(schema)[name]
    if typing.get_origin(hint) is list:
        return "list", None
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if hint is str or args == [str]:
        return "text", None
    if typing.get_origin(hint) is dict:
        return "mapping", None
    return "other", None


def _shape_problems(
    content: dict[Any, Any], schema: Any, prefix: str, source: Source
) -> Iterator[str]:
    """Finds sections given a scalar and text keys given a boolean or a number.

    YAML 1.1 reads ``no``, ``off``, ``yes``, ``on`` as booleans and ``1.10`` as a
    number; OmegaConf would silently turn them into ``'False'`` and ``'1.1'``.
    Sections set to null (every key commented out) are read as empty.
    """
    for name, value in list(content.items()):
        key = f"{prefix}{name}"
        if schema is None:  # inside labels: every value is text
            kind, nested = "text", None
        else:
            kind, nested = _schema_kind(schema, str(name))
        if kind in ("section", "mapping"):
            if value is None:
                content[name] = {}
            elif not isinstance(value, dict):
                example = f"{key}.kl_coeff=0.2" if key == "training" else f"{key}.KEY=VALUE"
                yield (
                    f"{source.where(key)}: {key}: is a section, so it takes a mapping of keys,"
                    f" not {_describe(value)}; set keys inside it (in a file, indented under"
                    f" {name}:; on the command line, {example})"
                )
            else:
                yield from _shape_problems(value, nested, f"{key}.", source)
        elif kind == "list" and isinstance(value, list):
            for i, item in enumerate(value):
                if not isinstance(item, str):
                    yield (
                        f"{source.where(key)}: {key}[{i}]: takes text, not {_describe(item)};"
                        " quote it"
                    )
        elif kind == "text" and value is not None and not isinstance(value, str):
            written = source.raw.get(key, str(value))
            if isinstance(value, (bool, int, float)):
                meant = "if you mean the word" if isinstance(value, bool) else "to keep it as text"
                yield (
                    f"{source.where(key)}: {key}: {written!r} is read as {_describe(value)}"
                    f" (YAML 1.1), but this key takes text; quote it {meant}:"
                    f' {name}: "{written}"'
                )
            else:
                yield f"{source.where(key)}: {key}: takes text, not {_describe(value)}"


def _parse_overrides(overrides: Sequence[str]) -> Source:
    loader = get_yaml_loader()
    content: dict[str, Any] = {}
    lines: dict[str, int] = {}
    raw: dict[str, str] = {}
    for item in overrides:
        try:
            item.encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigError(
                [f"override {item!r}: not valid UTF-8; pass the value as UTF-8 text"]
            ) from None
        if "=" not in item or not item.split("=", 1)[0].strip():
            raise ConfigError(
                [
                    f"override {item!r}: write KEY=VALUE in OmegaConf dotlist form,"
                    " e.g. training.kl_coeff=0.2"
                ]
            )
        key, text = item.split("=", 1)
        key = key.strip()
        if "" in key.split("."):
            raise ConfigError(
                [f"override {item!r}: {key!r} has an empty part; write e.g. training.kl_coeff=0.2"]
            )
        try:
            value = yaml.load(text, Loader=loader) if text else ""
        except yaml.YAMLError as error:
            problem = getattr(error, "problem", None) or str(error).splitlines()[0]
            raise ConfigError([f"override {item!r}: not a valid value ({problem})"]) from None
        lines[key] = 0
        raw[key] = text
        # Nest the dotted key, so the same shape checks as for files apply.
        node = content
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            node[part] = child = child if isinstance(child, dict) else {}
            node = child
        node[parts[-1]] = value
    source = Source("command-line override", OmegaConf.create({}), lines, raw)
    problems = list(_shape_problems(content, RLHFParams, "", source))
    if problems:
        raise ConfigError(problems)
    try:
        source.config = OmegaConf.from_dotlist(list(overrides))
    except (OmegaConfBaseException, yaml.YAMLError) as error:
        raise ConfigError([f"overrides: {str(error).splitlines()[0]}"]) from None
    return source


def _field_class(f: dataclasses.Field[Any]) -> Any:
    """Returns the nested schema class of a section field, or None for a leaf."""
    factory = f.default_factory
    if factory is not dataclasses.MISSING and dataclasses.is_dataclass(factory):
        return factory
    return None


def _allowed_keys(key: str) -> str:
    """Lists the keys the schema allows next to ``key``, for error messages."""
    node: Any = RLHFParams
    for part in key.split(".")[:-1]:
        section = {f.name: f for f in dataclasses.fields(node)}.get(part)
        node = _field_class(section) if section is not None else None
        if node is None:
            return ""
    return ", ".join(f.name for f in dataclasses.fields(node))


def _merge_error(source: Source, error: OmegaConfBaseException) -> str:
    key = error.full_key or ""
    first_line = str(error).splitlines()[0]
    where = source.where(key) if key else source.label
    if isinstance(error, ConfigKeyError):
        allowed = _allowed_keys(key)
        hint = f"; allowed here: {allowed}" if allowed else ""
        return f"{where}: {key}: unknown key{_did_you_mean(first_line)}{hint}"
    if "is not a ListConfig" in first_line:
        first_line = "must be a YAML list, e.g. [a, b] or one '- item' per line"
    return f"{where}: {key or '(top level)'}: {first_line}"


def _did_you_mean(message: str) -> str:
    match = re.search(r"Did you mean: '([^']+)'\?", message)
    return f" (did you mean '{match.group(1)}'?)" if match else ""


def _locate(sources: list[Source], key: str) -> str:
    """Names the layer that set ``key`` last (override, env file, base), with its line."""
    for source in reversed(sources):
        if key in source.lines:
            return f"{source.where(key)}: {key}"
    return f"{key} (default)"


SECTIONS = ("dataset", "training", "vertex_ai")


def load_params(
    env: str | Environment,
    overrides: Sequence[str] = (),
    params_dir: str | Path | None = None,
    sections: Sequence[str] = SECTIONS,
) -> RLHFParams:
    """Loads, merges, resolves and checks the parameters of one environment.

    Args:
        env: an environment name (``params/<env>.yaml`` over ``params/base.yaml``;
            ``base`` alone is allowed), the path of a parameter file, or an
            ``Environment`` from ``resolve_environment``.
        overrides: dotlist overrides, applied last.
        params_dir: where named environments are; default the project's ``params/``.
        sections: the sections to resolve and check; the others are still checked
            for unknown keys and types, but are returned at their schema defaults
            (so ``rlhf steps`` needs no project id).

    Returns:
        The checked parameters, with interpolations resolved and relative local
        dataset paths made absolute against the repository root.

    Raises:
        ConfigError: any problem, naming the file, line and key.
    """
    if not isinstance(env, Environment):
        env = resolve_environment(env, params_dir)
    sources = [_load_file(path) for path in env.files]
    if overrides:
        sources.append(_parse_overrides(overrides))

    merged: DictConfig = OmegaConf.structured(RLHFParams)
    for source in sources:
        try:
            merged = OmegaConf.merge(merged, source.config)  # type: ignore[assignment]
        except OmegaConfBaseException as error:
            raise ConfigError([_merge_error(source, error)]) from None

    keys = [key for key in _leaf_keys(RLHFParams) if key.split(".")[0] in sections]
    problems = _resolve_problems(merged, sources, keys)
    problems += _interpolated_type_problems(merged, sources, keys) if not problems else []
    if problems:
        raise ConfigError(problems, source=" + ".join(s.label for s in sources))
    for section in SECTIONS:
        if section not in sections:
            merged[section] = OmegaConf.structured(_SKIPPED[section])
    params: RLHFParams = OmegaConf.to_object(merged)  # type: ignore[assignment]
    problems = [
        f"{_locate(sources, key)}: {problem}"
        for key, problem in check_params(params)
        if key.split(".")[0] in sections
    ]
    if problems:
        raise ConfigError(problems, source=" + ".join(s.label for s in sources))
    _absolutize_local_paths(params, env.root)
    if "dataset" in sections:
        problems = [
            f"{_locate(sources, key)}: {problem}"
            for key, problem in _dataset_kind_problems(params.dataset)
        ]
        if problems:
            raise ConfigError(problems, source=" + ".join(s.label for s in sources))
    return params


def _dataset_kind_problems(d: DatasetParams) -> Iterator[tuple[str, str]]:
    """Local dataset paths that exist but are not files (a directory, FIFO, device)."""
    from vertex_rlhf.config.values import dataset_path_kind_problem

    for name in ("preference_dataset", "prompt_dataset", "eval_dataset"):
        path = getattr(d, name)
        problem = dataset_path_kind_problem(path, "") if path else None
        if problem:
            yield f"dataset.{name}", problem.strip()


# What an unrequested section is returned as: its defaults, with required values empty.
_SKIPPED: dict[str, Any] = {
    "dataset": DatasetParams(preference_dataset="", prompt_dataset=""),
    "training": TrainingParams(large_model_reference=""),
    "vertex_ai": VertexParams(project_id="", pipeline_root=""),
}


def _leaf_keys(schema: Any, prefix: str = "") -> list[str]:
    keys = []
    for f in dataclasses.fields(schema):
        nested = _field_class(f)
        if nested is not None:
            keys += _leaf_keys(nested, f"{prefix}{f.name}.")
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


def _resolve_problems(merged: DictConfig, sources: list[Source], keys: list[str]) -> list[str]:
    """Resolves each key once, collecting missing values and failed interpolations.

    Keys that fail on the same unset environment variable are reported together.
    """
    problems = []
    unset_env: dict[str, list[str]] = {}
    for key in keys:
        try:
            OmegaConf.select(merged, key, throw_on_missing=True)
        except MissingMandatoryValue:
            problems.append(
                f"{key}: required but not set; set it in params/ or pass {key}=..."
                f" (make: OVERRIDES='{key}=...')"
            )
        except OmegaConfBaseException as error:
            text = str(error).splitlines()[0]
            env_var = re.search(r"Environment variable '([^']+)' not found", text)
            if env_var:
                unset_env.setdefault(env_var.group(1), []).append(key)
            else:
                problems.append(f"{_locate(sources, key)}: {text}")
    for variable, needed_by in unset_env.items():
        problems.append(
            f"{_locate(sources, needed_by[0])}: environment variable {variable} is not set"
            f" (needed by {', '.join(needed_by)}); export it or pass {needed_by[0]}=..."
            f" (make: OVERRIDES='{needed_by[0]}=...')"
        )
    return problems


def _interpolated_type_problems(
    merged: DictConfig, sources: list[Source], keys: list[str]
) -> list[str]:
    """Text values set by an interpolation that gives a number or a boolean.

    OmegaConf turns such a value into text silently (``${oc.decode:123}`` -> ``'123'``);
    a literal ``123`` is refused by ``_shape_problems``, so this one is too. Covers text
    keys, label values and the items of text lists.
    """
    untyped: Any = None
    problems = []
    for key, node, child in _text_slots(merged, keys):
        if not OmegaConf.is_interpolation(node, child):
            continue
        if untyped is None:  # resolves without converting to the schema's types
            untyped = OmegaConf.create(OmegaConf.to_container(merged, resolve=False))
        try:
            value = OmegaConf.select(untyped, key)
        except OmegaConfBaseException:
            continue  # reported by _resolve_problems
        if value is not None and not isinstance(value, str):
            parent = key if key in keys else key.rsplit(".", 1)[0]
            located = _locate(sources, parent)
            if parent != key:  # a label or list item: where its mapping or list is set
                located = f"{located.removesuffix(parent).rstrip(': ')}: {key}"
            written = next((s.raw[key] for s in reversed(sources) if key in s.raw), "")
            shown = f"{written!r} gives" if written else "its interpolation gives"
            problems.append(
                f"{located}: {shown} {_describe(value)}, but this takes text; write the text"
                " itself, quoted, or make the interpolation give text"
            )
    return problems


def _text_slots(merged: DictConfig, keys: list[str]) -> Iterator[tuple[str, Any, Any]]:
    """``(dotted key, container, child)`` for every text value of the requested keys."""
    sections = {f.name: _field_class(f) for f in dataclasses.fields(RLHFParams)}
    for key in keys:
        section, name = key.split(".", 1)
        kind = _schema_kind(sections[section], name)[0]
        if kind == "text":
            yield key, merged[section], name
        elif kind in ("mapping", "list") and not OmegaConf.is_interpolation(merged[section], name):
            container = merged[section][name]
            if OmegaConf.is_dict(container):
                for child in container:
                    yield f"{key}.{child}", container, child
            elif OmegaConf.is_list(container):
                for index in range(len(container)):
                    yield f"{key}.{index}", container, index


# Label rules (PipelineJob.labels and Google Cloud's label rules): at most 63 characters
# of lowercase letters (international ones too), digits, _ and -; keys start with a letter.
LABEL_LIMIT = 63
MAX_LABELS = 64
# Set by every submit (cloud/submission.py run_labels), or reserved by Vertex AI.
RESERVED_LABELS = ("pipeline", "pipeline-version", "git-commit", "environment")
RESERVED_LABEL_PREFIX = "vertex-ai-pipelines-"
# Free text: leading or trailing whitespace may be meant (a block scalar's newline).
FREE_TEXT = ("training.instruction",)
_GCS_PATH = re.compile(r"^gs://[a-z0-9][-a-z0-9_.]{1,220}[a-z0-9](/.*)?$")
_TENSORBOARD = re.compile(r"^projects/[^/]+/locations/[^/]+/tensorboards/[^/]+$")
_KMS_KEY = re.compile(r"^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$")
_SERVICE_ACCOUNT = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]+$")
_REGISTRY = re.compile(
    r"^(https://[a-z0-9-]+-kfp\.pkg\.dev/[a-z][-a-z0-9]{4,28}[a-z0-9]/[a-z][-a-z0-9]*"
    r"|http://(127\.0\.0\.1|localhost)(:\d+)?(/[-\w]+)*)$"
)
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
# Vertex AI's e-mail notification takes at most three recipients.
MAX_NOTIFY_EMAILS = 3


def check_params(params: RLHFParams) -> list[tuple[str, str]]:
    """Checks the values a schema cannot: ranges, the model table, paths, formats.

    Args:
        params: merged and resolved parameters.

    Returns:
        ``(dotted key, problem)`` pairs; empty when everything is valid.
    """
    padded = [*_whitespace_problems(params), *_integer_problems(params)]
    padded_keys = {key for key, _ in padded}
    others = [
        *_check_datasets(params.dataset),
        *_check_training(params.training, params.vertex_ai.region),
        *_check_vertex(params.vertex_ai),
    ]
    return padded + [(key, problem) for key, problem in others if key not in padded_keys]


# aiplatform sends parameter values as JSON numbers (doubles): a whole number above this
# reaches the pipeline rounded (9223372036854775808 steps becomes 9.223372036854776e18).
MAX_EXACT_INTEGER = 2**53 - 1


def _integer_problems(params: RLHFParams) -> Iterator[tuple[str, str]]:
    """Whole numbers must survive the trip to Vertex AI unchanged."""
    for section in SECTIONS:
        for name, value in dataclasses.asdict(getattr(params, section)).items():
            whole = isinstance(value, int) and not isinstance(value, bool)
            if whole and abs(value) > MAX_EXACT_INTEGER:
                yield (
                    f"{section}.{name}",
                    f"{value} is too large: Vertex AI carries whole numbers exactly only"
                    f" up to {MAX_EXACT_INTEGER:,}; use a realistic value",
                )


def _whitespace_problems(params: RLHFParams) -> Iterator[tuple[str, str]]:
    """Text values (paths, region, model, ids, names) must not start or end with whitespace."""
    for section in SECTIONS:
        values = dataclasses.asdict(getattr(params, section))
        for name, value in values.items():
            key = f"{section}.{name}"
            if isinstance(value, str) and value != value.strip() and key not in FREE_TEXT:
                yield (
                    key,
                    f"{value!r} has leading or trailing whitespace, which Vertex AI would"
                    " receive as part of the value; remove it",
                )


def is_label_text(text: str, key: bool = False) -> bool:
    """Whether ``text`` is a valid label key (``key=True``) or value for Vertex AI."""
    if len(text) > LABEL_LIMIT or (key and not text):
        return False
    if key and not (text[0].isalpha() and text[0].lower() == text[0]):
        return False
    return all(c in "_-" or c.isdecimal() or (c.isalpha() and c.lower() == c) for c in text)


def _check_datasets(d: DatasetParams) -> Iterator[tuple[str, str]]:
    paths = {
        "dataset.preference_dataset": d.preference_dataset,
        "dataset.prompt_dataset": d.prompt_dataset,
        "dataset.eval_dataset": d.eval_dataset,
    }
    for key, path in paths.items():
        if path is None:
            continue
        if not path.strip():
            yield key, "must not be empty"
        elif path.startswith("gs://"):
            if not _GCS_PATH.fullmatch(path):
                yield key, f"{path!r} is not a valid gs://BUCKET/PATH"
        elif not d.allow_local_paths:
            yield (
                key,
                (
                    f"{path!r} is not a gs:// path; Vertex AI reads datasets from Cloud Storage"
                    " (local files only with dataset.allow_local_paths=true, for ENV=local)"
                ),
            )
    sizes = {"dataset.preference_size": d.preference_size, "dataset.prompt_size": d.prompt_size}
    for key, size in sizes.items():
        if size is not None and size <= 0:
            yield key, f"must be a positive row count, got {size}"


def _check_training(t: TrainingParams, region: str) -> Iterator[tuple[str, str]]:
    model = catalog.MODELS.get(catalog.canonical_model_name(t.large_model_reference))
    problem = catalog.model_problem(t.large_model_reference)
    if problem:
        yield "training.large_model_reference", problem
    accelerators = ", ".join(catalog.ACCELERATORS)
    if t.accelerator_type not in catalog.ACCELERATORS:
        yield "training.accelerator_type", f"must be {accelerators}, got {t.accelerator_type!r}"
    elif model is not None and t.accelerator_type not in model.accelerators:
        yield (
            "training.accelerator_type",
            (
                f"{model.name} can only be tuned on {'/'.join(model.accelerators)}"
                f" ({catalog.HARDWARE[model.accelerators[0]]}), not {t.accelerator_type}"
            ),
        )
    epochs = {
        "training.reward_model_epochs": t.reward_model_epochs,
        "training.reinforcement_learning_epochs": t.reinforcement_learning_epochs,
    }
    for key, value in epochs.items():
        if value <= 0:
            yield key, f"must be a positive whole number, got {value}"
    steps = {
        "training.reward_model_train_steps": t.reward_model_train_steps,
        "training.reinforcement_learning_train_steps": t.reinforcement_learning_train_steps,
    }
    for key, count in steps.items():
        if count is not None and count <= 0:
            yield key, f"must be positive, or null to compute it; got {count}"
    multipliers = {
        "training.reward_model_learning_rate_multiplier": t.reward_model_learning_rate_multiplier,
        "training.reinforcement_learning_rate_multiplier": t.reinforcement_learning_rate_multiplier,
    }
    for key, multiplier in multipliers.items():
        if not math.isfinite(multiplier) or multiplier <= 0:
            yield key, f"must be a number greater than 0, got {multiplier}"
    if not math.isfinite(t.kl_coeff) or t.kl_coeff < 0:
        yield "training.kl_coeff", f"must be 0 or more, got {t.kl_coeff}"
    lengths = {
        "training.prompt_sequence_length": (t.prompt_sequence_length, MAX_PROMPT_SEQUENCE_LENGTH),
        "training.target_sequence_length": (t.target_sequence_length, MAX_TARGET_SEQUENCE_LENGTH),
    }
    for key, (length, limit) in lengths.items():
        if not 1 <= length <= limit:
            yield key, f"must be between 1 and {limit} (GCPC's maximum), got {length}"
    if t.tensorboard_resource_id and not _TENSORBOARD.fullmatch(t.tensorboard_resource_id):
        yield (
            "training.tensorboard_resource_id",
            ("must look like projects/NUMBER/locations/REGION/tensorboards/ID"),
        )
    key = "training.encryption_spec_key_name"
    if t.encryption_spec_key_name and not _KMS_KEY.fullmatch(t.encryption_spec_key_name):
        yield key, "must look like projects/P/locations/L/keyRings/R/cryptoKeys/K"
    elif t.encryption_spec_key_name and (
        t.accelerator_type != catalog.GPU or region != catalog.CMEK_REGION
    ):
        yield (
            key,
            (
                f"CMEK is only supported for GPU tuning in {catalog.CMEK_REGION} (here:"
                f" {t.accelerator_type} in {region}); unset the key or use GPU in"
                f" {catalog.CMEK_REGION}"
            ),
        )


def _check_vertex(v: VertexParams) -> Iterator[tuple[str, str]]:
    # One grammar for names, shared with the resource names the cloud wing parses.
    problem = names.project_problem(v.project_id)
    if problem:
        yield "vertex_ai.project_id", problem
    if v.region not in catalog.REGIONS:
        yield (
            "vertex_ai.region",
            (
                f"GCPC's RLHF pipeline does not run in {v.region!r};"
                f" use one of {', '.join(catalog.REGIONS)}"
            ),
        )
    if not _GCS_PATH.fullmatch(v.pipeline_root):
        yield (
            "vertex_ai.pipeline_root",
            (f"{v.pipeline_root!r} must be a gs://BUCKET/PATH where Vertex writes run artifacts"),
        )
    if v.service_account and not _SERVICE_ACCOUNT.fullmatch(v.service_account):
        yield "vertex_ai.service_account", f"{v.service_account!r} is not a service account e-mail"
    if v.template_registry and not _REGISTRY.fullmatch(v.template_registry):
        yield (
            "vertex_ai.template_registry",
            (f"{v.template_registry!r} must look like https://REGION-kfp.pkg.dev/PROJECT/REPO"),
        )
    if v.template_version is not None:
        problem = names.tag_problem(v.template_version, digest_ok=True)
        if problem:
            yield "vertex_ai.template_version", f"{problem} (e.g. 1.0.0, latest)"
    if v.api_endpoint and not re.fullmatch(r"^(https?://)?[-\w.]+(:\d+)?$", v.api_endpoint):
        yield "vertex_ai.api_endpoint", f"{v.api_endpoint!r} is not a host[:port] endpoint"
    yield from _check_emails(v.notify_emails)
    yield from _check_labels(v.labels)


def _check_labels(labels: dict[str, str]) -> Iterator[tuple[str, str]]:
    rule = f"at most {LABEL_LIMIT} of lowercase letters (international ones too), digits, _ and -"
    if len(labels) + len(RESERVED_LABELS) > MAX_LABELS:
        yield (
            "vertex_ai.labels",
            f"{len(labels)} labels; Vertex AI takes {MAX_LABELS} per job and submit adds"
            f" {len(RESERVED_LABELS)}: keep at most {MAX_LABELS - len(RESERVED_LABELS)}",
        )
    for name, value in labels.items():
        key = f"vertex_ai.labels.{name}"
        if name in RESERVED_LABELS or str(name).startswith(RESERVED_LABEL_PREFIX):
            yield (
                key,
                f"{name!r} is set by submit or reserved by Vertex AI"
                f" ({', '.join(RESERVED_LABELS)}, {RESERVED_LABEL_PREFIX}*); choose another key",
            )
        elif not is_label_text(str(name), key=True):
            yield key, f"label keys are {rule}, starting with a letter; got {name!r}"
        if not isinstance(value, str) or not is_label_text(value):
            yield key, f"label values are {rule}; got {value!r}"


def local_dataset_problems(params: RLHFParams) -> list[str]:
    """Datasets a Vertex AI run cannot read: anything that is not a ``gs://`` path.

    ``dataset.allow_local_paths`` lets ``steps`` and ``validate-data`` read local files;
    a run never can, so ``submit`` (dry run included) stops on these before building a
    request.
    """
    d = params.dataset
    paths = {
        "dataset.preference_dataset": d.preference_dataset,
        "dataset.prompt_dataset": d.prompt_dataset,
        "dataset.eval_dataset": d.eval_dataset,
    }
    return [
        f"{key}: {path!r} is a local path; Vertex AI reads datasets from Cloud Storage only:"
        f" upload it (gcloud storage cp) and pass {key}=gs://BUCKET/PATH"
        " (dataset.allow_local_paths is for steps and validate-data, not for runs)"
        for key, path in paths.items()
        if path and not path.startswith("gs://")
    ]


def _check_emails(emails: list[str]) -> Iterator[tuple[str, str]]:
    key = "vertex_ai.notify_emails"
    for email in emails:
        if not _EMAIL.fullmatch(email):
            yield key, f"{email!r} is not an e-mail address (name@example.com)"
    if len(emails) > MAX_NOTIFY_EMAILS:
        yield (
            key,
            f"Vertex AI e-mails at most {MAX_NOTIFY_EMAILS} recipients, got {len(emails)};"
            " use a group address",
        )
    seen = [e.lower() for e in emails]
    repeated = sorted({e for e in seen if seen.count(e) > 1})
    if repeated:
        yield key, f"listed more than once: {', '.join(repeated)}"


def _absolutize_local_paths(params: RLHFParams, root: Path) -> None:
    d = params.dataset
    for name in ("preference_dataset", "prompt_dataset", "eval_dataset"):
        path = getattr(d, name)
        if path and not path.startswith("gs://") and not Path(path).is_absolute():
            setattr(d, name, str(root / path))
