"""Use cases over datasets: validate and profile them, convert them to Vertex's layout."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from vertex_rlhf.usecases.setting import Setting

if TYPE_CHECKING:
    from vertex_rlhf.data.convert import ConversionStats
    from vertex_rlhf.data.progress import ProgressSink
    from vertex_rlhf.data.report import EnvironmentCheck


def validate_path(
    path: str,
    kind: str,
    model: str = "",
    max_reported: int = 5,
    profile: bool = True,
    progress: ProgressSink | None = None,
) -> EnvironmentCheck:
    """Validates (and profiles) one file or glob, local or gs://.

    Returns:
        The check of that one dataset (no steps, no eval overlap).

    Raises:
        DataError: it cannot be read whole. NetworkError, AuthError: gs:// unreachable.
    """
    from vertex_rlhf.data import report as data_report

    check = data_report.check_dataset(
        path, kind, max_reported=max_reported, progress=progress, model=model, profile=profile
    )
    return data_report.EnvironmentCheck({kind: check})


def validate_environment(
    setting: Setting,
    max_reported: int = 5,
    profile: bool = True,
    progress: ProgressSink | None = None,
) -> EnvironmentCheck:
    """Validates (and profiles) an environment's preference, prompt and eval datasets.

    Returns:
        The datasets' checks, the eval overlap, and the steps (when the training data is
        valid).
    """
    from vertex_rlhf.data import report as data_report

    return data_report.check_environment(setting.params, max_reported, progress, profile=profile)


@dataclass(frozen=True)
class ConvertOrder:
    """What ``convert-data`` reads and writes.

    Attributes:
        source: the input file or glob (prompt/chosen/rejected rows), local or gs://.
        output: the training output.
        kind: ``preference`` or ``prompt``.
        seed: seeds candidate placement and the eval split.
        eval_output: where an eval split goes (None: no split).
        eval_fraction: the share of prompts for eval.
        force: replace existing outputs.
        skip_invalid: skip bad rows (into ``rejects``) instead of stopping.
        rejects: where skipped rows go (default ``OUTPUT.rejects.jsonl`` when skipping).
    """

    source: str
    output: str
    kind: str
    seed: int = 0
    eval_output: str | None = None
    eval_fraction: float = 0.0
    force: bool = False
    skip_invalid: bool = False
    rejects: str | None = None

    @property
    def rejects_path(self) -> str | None:
        return self.rejects or (f"{self.output}.rejects.jsonl" if self.skip_invalid else None)


def convert(order: ConvertOrder, progress: ProgressSink | None = None) -> ConversionStats:
    """Converts rows to the Vertex RLHF layout; every output is written whole or not at all.

    Raises:
        DataError: an invalid row (without ``skip_invalid``), an existing output (without
            ``force``), or a read that ended early.
    """
    from vertex_rlhf.data.convert import convert as run

    return run(
        order.source,
        order.output,
        order.kind,
        seed=order.seed,
        eval_output=order.eval_output,
        eval_fraction=order.eval_fraction,
        force=order.force,
        skip_invalid=order.skip_invalid,
        rejects=order.rejects_path,
        progress=progress,
    )
