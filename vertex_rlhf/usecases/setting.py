"""The typed input most use cases take: an environment's checked parameters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the schema imports OmegaConf: only commands that load parameters pay
    from vertex_rlhf.config.params import RLHFParams


@dataclass(frozen=True)
class Setting:
    """One environment's parameters and where the run's files are.

    Attributes:
        params: the checked parameters.
        env: the environment name (job ids, the ``environment`` label).
        spec: how the user named it (``dev``, ``params/dev.yaml``), for printed commands.
        overrides: the dotlist overrides the parameters were loaded with.
        root: the project the parameters belong to (its git commit labels runs).
        compiled: the ``compiled/`` folder templates come from.
        label: how messages name the environment (its own file).
    """

    params: RLHFParams
    env: str
    spec: str
    root: Path
    compiled: Path
    label: str
    overrides: tuple[str, ...] = field(default_factory=tuple)


def compiled_folder(compiled_dir: str | Path | None) -> Path:
    """``compiled_dir``, or the project's ``compiled/`` wherever the command runs."""
    from vertex_rlhf.config.environment import find_project_root

    return Path(compiled_dir) if compiled_dir else find_project_root() / "compiled"


def params_folder(params_dir: str | Path | None) -> Path:
    """``params_dir``, or the project's ``params/`` wherever the command runs."""
    from vertex_rlhf.config.environment import find_project_root

    return Path(params_dir) if params_dir else find_project_root() / "params"


def load_setting(
    spec: str,
    overrides: Sequence[str] = (),
    params_dir: str | Path | None = None,
    compiled_dir: str | Path | None = None,
    sections: Sequence[str] | None = None,
) -> Setting:
    """Resolves an environment (a name or a parameter file) and loads its parameters
    (``sections``: the ones to resolve and check; default all).

    Raises:
        ConfigError: an unknown environment or invalid parameters, naming file, line, key.
    """
    from vertex_rlhf.config.environment import resolve_environment
    from vertex_rlhf.config.params import SECTIONS, load_params

    env = resolve_environment(spec, params_dir)
    params = load_params(env, overrides, sections=SECTIONS if sections is None else sections)
    return Setting(
        params=params,
        env=env.name,
        spec=spec,
        root=env.root,
        compiled=compiled_folder(compiled_dir),
        label=env.label,
        overrides=tuple(overrides),
    )
