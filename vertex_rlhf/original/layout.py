"""The original description's config layout: recognise it, read it, migrate it.

The original files (``configs/production_config.yaml``) hold ``dataset``, ``training`` and
``vertex_ai`` like ours, with two keys of their own: ``training.batch_size`` (GCPC fixes it at
64, so any other value is an error) and ``vertex_ai.staging_bucket`` (our
``vertex_ai.pipeline_root``). Everything else keeps its name and meaning. Such a file is
read as if it were ``params/<env>.yaml`` over ``params/base.yaml``, and errors point at the
original file's lines and keys.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vertex_rlhf.config.environment import ENV_NAME, find_project_root
from vertex_rlhf.config.params import SECTIONS, RLHFParams, load_params, read_parameter_text
from vertex_rlhf.errors import ConfigError

BATCH_SIZE = 64
RENAMED = {"vertex_ai.staging_bucket": "vertex_ai.pipeline_root"}
DROPPED = {"training.batch_size"}
# What each key of the original layout means here (keys not listed keep their meaning).
NOTES = {
    "vertex_ai.staging_bucket": (
        "became vertex_ai.pipeline_root (where Vertex writes the run's artifacts)"
    ),
    "training.batch_size": (
        f"dropped: GCPC's RLHF pipeline fixes the batch size at {BATCH_SIZE}"
        " (steps are computed with it)"
    ),
    "dataset.preference_size": (
        "kept: the declared row count for computing steps offline; the pipeline counts the"
        " real rows at run time"
    ),
    "dataset.prompt_size": "kept: as dataset.preference_size, for the prompt dataset",
    "training.reward_model_train_steps": (
        "kept: explicit steps override the ones computed from training.reward_model_epochs"
    ),
    "training.reinforcement_learning_train_steps": (
        "kept: explicit steps override the ones computed from"
        " training.reinforcement_learning_epochs"
    ),
}


@dataclass
class Migration:
    """An original-layout file translated into this project's layout.

    Attributes:
        source: the original file.
        values: the translated sections (``dataset``, ``training``, ``vertex_ai``).
        notes: one line per original key that changed or matters: what it became.
        origins: new dotted key -> (original dotted key, line) for error messages.
    """

    source: Path
    values: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    origins: dict[str, tuple[str, int]] = field(default_factory=dict)


def _compose(path: Path) -> tuple[Any, dict[str, int]]:
    """Reads a YAML file, with the line of every dotted key."""
    text = read_parameter_text(path)
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError([f"{where}: not valid YAML ({problem}); fix the syntax"]) from None
    lines: dict[str, int] = {}

    def walk(n: Any, prefix: str) -> None:
        if isinstance(n, yaml.MappingNode):
            for key_node, value_node in n.value:
                key = f"{prefix}{key_node.value}"
                lines[key] = key_node.start_mark.line + 1
                walk(value_node, key + ".")

    walk(node, "")
    return data, lines


def is_legacy(data: Any) -> bool:
    """Whether parsed YAML is in the original description's layout."""
    if not isinstance(data, dict):
        return False
    for dotted in (*RENAMED, *DROPPED):
        section, key = dotted.split(".")
        if isinstance(data.get(section), dict) and key in data[section]:
            return True
    return False


def is_legacy_file(path: str | Path) -> bool:
    """Whether a file is in the original layout (False for unreadable or other files)."""
    try:
        data = yaml.safe_load(read_parameter_text(Path(path)))
    except (ConfigError, yaml.YAMLError):
        return False
    return is_legacy(data)


def reads_as_legacy(path: str | Path) -> bool:
    """Whether a config file is read as the original layout (over ``params/base.yaml``).

    True for a file with the original keys, and for any existing file with no
    ``base.yaml`` beside it (the original configs stand alone in ``configs/``).
    """
    file = Path(path)
    if not file.is_file():
        return False
    return is_legacy_file(file) or not (file.parent / "base.yaml").is_file()


def translate(path: str | Path) -> Migration:
    """Translates an original-layout file into this project's sections; no checks beyond it.

    Args:
        path: the original file.

    Returns:
        The translated values, the notes on what each key became, and line origins.

    Raises:
        ConfigError: not a mapping of sections, or ``training.batch_size`` is not 64.
    """
    source = Path(path)
    data, lines = _compose(source)
    if not isinstance(data, dict):
        raise ConfigError(
            [f"{source}: must be a mapping of sections (dataset, training, vertex_ai)"]
        )
    migration = Migration(source, {})
    for section, body in data.items():
        if not isinstance(body, dict):
            migration.values[section] = body
            migration.origins[str(section)] = (str(section), lines.get(str(section), 0))
            continue
        translated: dict[str, Any] = {}
        for key, value in body.items():
            old = f"{section}.{key}"
            line = lines.get(old, 0)
            if old in DROPPED:
                if isinstance(value, bool) or value != BATCH_SIZE:
                    raise ConfigError(
                        [
                            f"{source}:{line}: {old}: {value!r} is not possible: GCPC's RLHF"
                            f" pipeline fixes the batch size at {BATCH_SIZE}; remove the key"
                            " (steps are computed with 64)"
                        ]
                    )
            else:
                new = RENAMED.get(old, old)
                translated[new.split(".", 1)[1]] = value
                migration.origins[new] = (old, line)
            if old in NOTES:
                migration.notes.append(f"{old}: {NOTES[old]}")
        migration.values[section] = translated
    return migration


def render(migration: Migration) -> str:
    """The translated file as YAML, headed by what each original key became."""
    head = [
        f"# Migrated from {migration.source} (the original description's layout) by"
        " `rlhf migrate-config`.",
        "# Merged over params/base.yaml like every environment file. What changed:",
        *(f"#   {note}" for note in migration.notes),
    ]
    body = yaml.safe_dump(migration.values, sort_keys=False, allow_unicode=True, width=100)
    return "\n".join(head) + "\n" + body


def default_env_name(path: str | Path) -> str:
    """An environment name from a file name: ``production_config.yaml`` -> ``production``,
    ``small_dataset_config.yaml`` -> ``small-dataset``."""
    full = re.sub(r"[^a-z0-9]+", "-", Path(path).stem.lower()).strip("-")
    short = re.sub(r"-config$", "", full)
    for name in (short, full, f"config-{full}"):
        # The original configs are named freely (base_config.yaml, 2024_config.yaml,
        # a name with spaces or accents): the first spelling that is a valid
        # environment name, never the reserved 'base'.
        name = re.sub(r"^[^a-z]+", "", name)[:30].rstrip("-")
        if ENV_NAME.fullmatch(name) and name != "base":
            return name
    return "config"


def _check_env_name(env: str) -> None:
    if not ENV_NAME.fullmatch(env) or env == "base":
        raise ConfigError(
            [
                f"environment name {env!r}: use 1-30 of a-z, 0-9 and -, starting with a"
                " letter (and not 'base'); pass --env NAME"
            ]
        )


def _relocated(problem: str, migration: Migration, stand_in: Path, base: Path) -> str:
    """Rewrites a problem found in the temporary copy to name the original file and key."""

    def original(match: re.Match[str]) -> str:
        key = match.group(2)
        old, line = migration.origins.get(key, (key, 0))
        return f"{migration.source}:{line}: {old}" if line else f"{migration.source}: {old}"

    problem = re.sub(rf"{re.escape(str(stand_in))}:(\d+): ([\w.]+)", original, problem)
    problem = re.sub(rf"{re.escape(str(stand_in))}(:\d+)?", str(migration.source), problem)
    return problem.replace(str(stand_in.parent / "base.yaml"), str(base))


def materialize(
    migration: Migration, directory: Path, params_dir: str | Path = "params", env: str = ""
) -> str:
    """Writes ``base.yaml`` and ``<env>.yaml`` for a migration into a scratch folder.

    Args:
        migration: from ``translate``.
        directory: an empty scratch folder (never the repository's params/).
        params_dir: where the real ``base.yaml`` is.
        env: the environment name; default from the original file's name.

    Returns:
        The environment name, for ``load_params(env, params_dir=directory)``.

    Raises:
        ConfigError: no ``base.yaml`` in ``params_dir``, or an invalid environment name.
    """
    base = Path(params_dir) / "base.yaml"
    if not base.is_file():
        raise ConfigError(
            [
                f"{base}: not found; an original-layout file is read over params/base.yaml"
                " (run from the repository root or pass --params-dir)"
            ]
        )
    name = env or default_env_name(migration.source)
    _check_env_name(name)
    values = _with_absolute_paths(migration.values, Path(params_dir).resolve().parent)
    shutil.copyfile(base, directory / "base.yaml")
    text = yaml.safe_dump(values, sort_keys=False, allow_unicode=True)
    (directory / f"{name}.yaml").write_text(text, encoding="utf-8")
    return name


def load(
    path: str | Path,
    overrides: Sequence[str] = (),
    params_dir: str | Path = "params",
    sections: Sequence[str] = SECTIONS,
    env: str | None = None,
) -> tuple[RLHFParams, Migration]:
    """Loads an original-layout file as ``params/<env>.yaml`` over ``params/base.yaml``.

    Args:
        path: the original file.
        overrides: dotlist overrides, in this project's key names.
        params_dir: where ``base.yaml`` is.
        sections: the sections to resolve and check (see ``load_params``).
        env: the environment name; default from the file name.

    Returns:
        The checked parameters and the migration (for its notes).

    Raises:
        ConfigError: naming the original file, line and key.
    """
    migration = translate(path)
    with tempfile.TemporaryDirectory(prefix="rlhf-legacy-") as scratch:
        directory = Path(scratch)
        name = materialize(migration, directory, params_dir, env or "")
        stand_in = directory / f"{name}.yaml"
        base = Path(params_dir) / "base.yaml"
        try:
            params = load_params(name, overrides, directory, sections)
        except ConfigError as error:
            problems = [_relocated(p, migration, stand_in, base) for p in error.problems]
            raise ConfigError(
                problems, source=_relocated(error.source, migration, stand_in, base)
            ) from None
    return params, migration


def _with_absolute_paths(values: dict[str, Any], root: Path) -> dict[str, Any]:
    """Relative local dataset paths are read from the repository root, as in params/."""
    dataset = values.get("dataset")
    if not isinstance(dataset, dict):
        return values
    fixed = dict(dataset)
    for key in ("preference_dataset", "prompt_dataset", "eval_dataset"):
        value = fixed.get(key)
        if (
            isinstance(value, str)
            and value
            and "://" not in value
            and not Path(value).is_absolute()
        ):
            fixed[key] = str(root / value)
    return {**values, "dataset": fixed}


def migrate(
    path: str | Path, params_dir: str | Path = "params", env: str | None = None
) -> tuple[Path, Migration]:
    """Writes ``params/<env>.yaml`` from an original-layout file; never overwrites.

    The result is checked first (all sections), so nothing is written for an invalid file.

    Args:
        path: the original file (never modified).
        params_dir: where to write, next to ``base.yaml``.
        env: the environment name; default from the file name.

    Returns:
        The written file and the migration.

    Raises:
        ConfigError: not the original layout, invalid, or the target exists.
    """
    source = Path(path)
    _compose(source)  # unreadable or not YAML: say so first
    if not reads_as_legacy(source):
        raise ConfigError(
            [
                f"{source}: already a parameter file (base.yaml beside it, no"
                " training.batch_size or vertex_ai.staging_bucket); nothing to migrate"
            ]
        )
    name = env or default_env_name(source)
    _check_env_name(name)
    target = Path(params_dir) / f"{name}.yaml"
    if target.exists():
        raise ConfigError(
            [f"{target}: already exists; not overwritten. Choose another name with --env NAME"]
        )
    _, migration = load(source, (), params_dir, SECTIONS, name)
    text = render(migration)
    fd, scratch = tempfile.mkstemp(prefix=f".{name}.", suffix=".yaml", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        try:
            os.link(scratch, target)  # fails if the target appeared meanwhile
        except FileExistsError:
            raise ConfigError(
                [f"{target}: already exists; not overwritten. Choose another name with --env"]
            ) from None
    finally:
        os.unlink(scratch)
    return target, migration


def load_config_file(
    path: str | Path,
    overrides: Sequence[str] = (),
    sections: Sequence[str] = SECTIONS,
    params_dir: str | Path | None = None,
) -> tuple[RLHFParams, Migration | None]:
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
    if reads_as_legacy(file):
        return load(file, overrides, params_dir or find_project_root() / "params", sections)
    if file.suffix not in (".yaml", ".yml"):
        raise ConfigError([f"{file}: a parameter file is a .yaml file, e.g. params/dev.yaml"])
    return load_params(file.stem, overrides, params_dir or file.parent, sections), None


def _config_file(config_path: str | Path) -> Path:
    """The config file's path, if it is an existing regular file (never opened here).

    Raises:
        ConfigError: missing, or a directory, FIFO or device, saying which.
    """
    from vertex_rlhf.config.values import regular_file_problem

    path = Path(config_path)
    problem = regular_file_problem(path, "config file")
    if problem:
        looked = "" if path.is_absolute() else f" (looked at {path.absolute()})"
        raise ConfigError(
            [
                f"{problem}{looked}; give a parameter file (e.g. params/dev.yaml) or a config"
                " file in the original layout"
            ]
        )
    return path
