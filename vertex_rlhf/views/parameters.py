"""What ``check`` and ``steps`` print: row counts, the steps line, warnings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vertex_rlhf.views.text import path

if TYPE_CHECKING:
    from vertex_rlhf.usecases.parameters import RowCount


def row_line(count: RowCount) -> str:
    """How a dataset's row count was known: ``preference: 1200 rows counted in FILE``."""
    if count.counted:
        return f"{count.kind}: {count.rows} rows counted in {path(count.source)}"
    return f"{count.kind}: {count.rows} rows declared by {count.source}"


def warning_lines(warnings: list[str]) -> list[str]:
    """The guidance warnings, one line each."""
    return [f"warning: {warning}" for warning in warnings]


def steps_line(
    steps: object, reward_model_train_steps: int | None, rl_train_steps: int | None
) -> str:
    """The steps line: the original description's "Optimal" when both are computed.

    Explicit step counts are not optimal for anything: the line says they are explicit.
    """
    explicit = [
        key
        for key, value in (
            ("training.reward_model_train_steps", reward_model_train_steps),
            ("training.reinforcement_learning_train_steps", rl_train_steps),
        )
        if value
    ]
    if not explicit:
        return f"Optimal training steps: {steps}"
    if len(explicit) == 2:
        return f"Training steps (explicit in the parameters, not computed): {steps}"
    return f"Training steps ({explicit[0]} explicit, the other computed): {steps}"
