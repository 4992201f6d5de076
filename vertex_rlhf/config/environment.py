"""What an environment argument may be, and where the project's params/ and compiled/ are.

An environment is named (``dev``: ``params/dev.yaml`` over ``params/base.yaml``) or given
as the path of a parameter file (``params/dev.yaml``, ``/abs/team.yaml``: that file over
the ``base.yaml`` beside it, or over the project's ``params/base.yaml`` when there is none
beside it, as ``scripts/main.py --config`` reads it). A name is strict because it becomes
part of job ids and labels; a path is told apart by a ``/`` or a ``.yaml``/``.yml`` ending.
Only regular files are parameter files: a directory, FIFO or device is named for what it
is, and never opened.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from vertex_rlhf.errors import ConfigError

# The rule for an environment name; it is part of job ids and the `environment` label.
ENV_NAME = re.compile(r"^[a-z][a-z0-9-]{0,29}$")
ENV_NAME_RULE = "1-30 of a-z, 0-9 and -, starting with a letter"
BASE = "base"
SUFFIXES = (".yaml", ".yml")
# The package's own checkout (an editable install): the last place projects are looked for.
PACKAGE_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Environment:
    """The parameter files of one environment, in merge order.

    Attributes:
        name: the checked name (job ids, labels).
        files: ``base.yaml`` (when there is one) and then the environment's own file.
        root: what relative local dataset paths are relative to (the parent of params/).
    """

    name: str
    files: tuple[Path, ...]

    @property
    def root(self) -> Path:
        return self.files[-1].resolve().parent.parent

    @property
    def label(self) -> str:
        """How messages name the environment: its own file."""
        return str(self.files[-1])


def is_path_form(spec: str) -> bool:
    """Whether an environment argument is a file path rather than a name."""
    return "/" in spec or "\\" in spec or spec.endswith(SUFFIXES) or spec in (".", "..")


def check_name(name: str, what: str = "environment") -> str:
    """Returns ``name`` if it is a valid environment name.

    Raises:
        ConfigError: it is not; the message states the rule.
    """
    if not ENV_NAME.fullmatch(name):
        raise ConfigError(
            [
                f"{what} {name!r} is not a valid environment name: names are {ENV_NAME_RULE}"
                " (they become part of job ids and labels); name a file in params/"
                " (e.g. dev), or give the path of a parameter file (e.g. params/dev.yaml)"
            ]
        )
    return name


def _available(directory: Path) -> str:
    if not directory.is_dir():
        return "none"
    names = sorted(p.stem for p in directory.glob("*.yaml") if p.stem != BASE and p.is_file())
    return ", ".join(names) or "none"


def _not_a_file(path: Path, spec: str, directory: Path) -> ConfigError | None:
    """The error for a parameter-file path that exists but is not a regular file."""
    from vertex_rlhf.config.filekinds import path_kind

    kind = path_kind(path)
    if kind in (None, "a file"):
        return None
    return ConfigError(
        [
            f"{spec}: {path} is {kind}, not a parameter file; environments in"
            f" {directory}: {_available(directory)}"
        ]
    )


def resolve_environment(spec: str, params_dir: str | Path | None = None) -> Environment:
    """Turns an environment argument (a name or a parameter file's path) into its files.

    Args:
        spec: ``dev``, ``base``, or a path such as ``params/dev.yaml`` or ``/abs/x.yaml``.
        params_dir: where named environments are (``<params_dir>/<name>.yaml``);
            default the project's ``params/`` (``find_project_root``).

    Returns:
        The environment: its name and its files, base first.

    Raises:
        ConfigError: an invalid name, a missing file, a directory, a file whose stem is
            not a valid name.
    """
    if not is_path_form(spec) and not Path(spec).is_dir():
        name = check_name(spec)
        directory = Path(params_dir) if params_dir else find_project_root() / "params"
        path = directory / f"{name}.yaml"
        error = _not_a_file(path, spec, directory)
        if error:
            raise error
        if not path.is_file():
            raise ConfigError(
                [
                    f"{path}: no such parameter file; environments in {directory}:"
                    f" {_available(directory)}"
                ]
            )
    else:
        path = Path(spec)
        if path.is_dir():
            raise ConfigError(
                [
                    f"{spec}: is a directory, not an environment; name a parameter file"
                    f" (e.g. {path / 'dev.yaml'}), or pass --params-dir {spec} and a name"
                    f" (environments there: {_available(path)})"
                ]
            )
        error = _not_a_file(path, spec, path.parent)
        if error:
            raise error
        if not path.is_file():
            looked = "" if path.is_absolute() else f" (looked at {path.absolute()})"
            raise ConfigError(
                [
                    f"{spec}: no such parameter file{looked}; parameter files beside it:"
                    f" {_available(path.parent)}{_did_you_mean(path, params_dir)}"
                ]
            )
        if path.suffix not in SUFFIXES:
            raise ConfigError([f"{spec}: a parameter file ends in .yaml or .yml"])
        name = check_name(path.stem, what=f"{spec}: the file name")
    base = path.parent / f"{BASE}.yaml"
    if name == BASE:
        return Environment(name, (path,))
    if not base.is_file() and is_path_form(spec):
        base = _project_base(params_dir)
    return Environment(name, (base, path) if base.is_file() else (path,))


def _project_base(params_dir: str | Path | None) -> Path:
    """The base a parameter file with no ``base.yaml`` beside it is read over."""
    try:
        directory = Path(params_dir) if params_dir else find_project_root() / "params"
    except ConfigError:
        return Path(BASE)  # no project: the file stands alone
    return directory / f"{BASE}.yaml"


def _did_you_mean(path: Path, params_dir: str | Path | None) -> str:
    """For ``dev.yaml`` typed where ``dev`` (``params/dev.yaml``) was meant."""
    if path.is_absolute() or len(path.parts) != 1 or not ENV_NAME.fullmatch(path.stem):
        return ""
    try:
        directory = Path(params_dir) if params_dir else find_project_root() / "params"
    except ConfigError:
        return ""
    named = directory / f"{path.stem}.yaml"
    return f"; did you mean `{path.stem}` ({named})?" if named.is_file() else ""


def find_project_root(start: Path | None = None) -> Path:
    """Finds the project (the directory holding ``params/base.yaml``) from anywhere.

    Looks in ``start`` (default: the current directory) and its parents, then in the
    package's own checkout, so commands run from another directory still find the
    project's ``params/`` and ``compiled/``.

    Returns:
        The project directory (``.`` when it is the current directory).

    Raises:
        ConfigError: none found; the message lists where it looked.
    """
    here = (start or Path.cwd()).resolve()
    candidates = list(dict.fromkeys([here, *here.parents, PACKAGE_ROOT]))
    for candidate in candidates:
        if (candidate / "params" / f"{BASE}.yaml").is_file():
            # Relative when it is the current directory: messages show params/dev.yaml.
            return Path() if candidate == Path.cwd().resolve() else candidate
    looked = ", ".join(str(c / "params") for c in candidates)
    raise ConfigError(
        [
            f"no params/{BASE}.yaml found; looked in: {looked}."
            " Run from the project directory or pass --params-dir DIR (and --compiled-dir DIR)"
        ]
    )
