"""The library's shape: wings by role, imports one way (faces -> cloud -> template -> data
-> config -> leaves). Read from the source with ``ast``, so a lazy import inside a function
counts as much as one at the top."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Lower rank = further down. A module may import its own wing and any lower rank.
RANKS = {
    "vertex_rlhf.errors": 0,
    "vertex_rlhf.steps": 0,
    # The one renderer of outside text imports nothing: every wing that writes a line, a
    # log record or an error message may use it.
    "vertex_rlhf.views.text": 0,
    # The one door to Google APIs imports only the errors: every wing that calls an API
    # (data's gs:// reads included) goes through it.
    "vertex_rlhf.cloud.calls": 0,
    "vertex_rlhf.config": 1,
    "vertex_rlhf.data": 2,
    "vertex_rlhf.template": 3,
    "components": 3,
    "pipelines": 3,
    "vertex_rlhf.cloud": 4,
    # Use cases: typed inputs in, records out; they print nothing.
    "vertex_rlhf.usecases": 5,
    # The renderers: records (the use cases' among them) to lines, charts and views.
    "vertex_rlhf.views": 6,
    # The faces, side by side over the use cases: the `rlhf` CLI and the original
    # description's interface (its Python API and `scripts/main.py`'s commands).
    "vertex_rlhf.cli": 7,
    "vertex_rlhf.original": 7,
    "vertex_rlhf.__main__": 7,
    # The original config layout lives in the original room, but it is configuration:
    # `migrate-config` and the parameter reference read it.
    "vertex_rlhf.original.layout": 1,
}
WINGS = ("config", "data", "template", "cloud", "views", "usecases")
FACES = ("vertex_rlhf.cli", "vertex_rlhf.original")


def rank_of(module: str) -> tuple[str, int] | None:
    """The wing a dotted module name belongs to, and its rank; None for third parties."""
    for prefix in sorted(RANKS, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return prefix, RANKS[prefix]
    return None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module a file imports, with the line, including imports inside functions."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            # `from vertex_rlhf import cli` imports vertex_rlhf.cli
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def sources() -> list[Path]:
    return sorted(
        p
        for package in ("vertex_rlhf", "components", "pipelines")
        for p in (ROOT / package).rglob("*.py")
    )


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_run_one_way(path: Path) -> None:
    own = rank_of(module_name(path))
    if own is None:  # the package roots' __init__ files
        return
    own_wing, own_rank = own
    upward = []
    for line, name in imported_modules(path):
        target = rank_of(name)
        if target is None or target[0] == own_wing:
            continue
        if target[1] > own_rank:
            upward.append(f"{path.name}:{line} imports {name} ({target[0]} is above {own_wing})")
    assert not upward, "\n".join(upward)


def test_the_layout_check_sees_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from vertex_rlhf.cloud import monitor\n", encoding="utf-8")
    names = [name for _, name in imported_modules(bad)]
    assert "vertex_rlhf.cloud" in names
    assert rank_of("vertex_rlhf.cloud.monitor") == ("vertex_rlhf.cloud", 4)
    assert rank_of("vertex_rlhf.config.params")[1] < rank_of("vertex_rlhf.data.rules")[1]  # type: ignore[index]


@pytest.mark.parametrize("wing", WINGS)
def test_each_wing_says_its_job(wing: str) -> None:
    package = importlib.import_module(f"vertex_rlhf.{wing}")
    doc = package.__doc__ or ""
    assert doc.lower().startswith(f"{wing} wing:"), doc
    modules = {p.stem for p in (ROOT / "vertex_rlhf" / wing).glob("*.py")} - {"__init__"}
    assert modules, f"vertex_rlhf/{wing} holds no module"


def test_no_module_is_left_outside_a_wing() -> None:
    top = {p.stem for p in (ROOT / "vertex_rlhf").glob("*.py")}
    assert top <= {"__init__", "__main__", "errors", "steps"}, top


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_outside_the_cli_imports_the_cli(path: Path) -> None:
    if (
        module_name(path).startswith("vertex_rlhf.cli")
        or module_name(path) == "vertex_rlhf.__main__"
    ):
        return
    into_cli = [
        f"{path.name}:{line} imports {name}"
        for line, name in imported_modules(path)
        if name == "vertex_rlhf.cli" or name.startswith("vertex_rlhf.cli.")
    ]
    assert not into_cli, "\n".join(into_cli)


def test_the_faces_sit_side_by_side_over_the_use_cases() -> None:
    """Neither face imports the other (the original layout is configuration, not a face)."""
    crossing = []
    for path in sources():
        own = module_name(path)
        face = next((f for f in FACES if own == f or own.startswith(f + ".")), None)
        if face is None or own == "vertex_rlhf.original.layout":
            continue
        for line, name in imported_modules(path):
            other = next(
                (f for f in FACES if f != face and (name == f or name.startswith(f + "."))), None
            )
            if other and name != "vertex_rlhf.original.layout":
                crossing.append(f"{path.name}:{line} imports {name}")
    assert not crossing, "\n".join(crossing)
