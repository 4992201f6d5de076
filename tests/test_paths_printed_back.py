"""A path the user gave is printed back escaped by the lines that report success, as the
errors about the same path already are: a file or directory name holding terminal controls
(a downloaded dataset's name, a glob's match used to name an output) never reaches the
terminal raw.

Each hostile file-name part is put in each path a command echoes: convert-data's outputs
(train, eval, rejects), migrate-config's source file, compile's --compiled-dir and the
local dataset that steps counts.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import REPO, write_jsonl
from tests.test_legacy_config import PRODUCTION
from vertex_rlhf import cli

# Parts a file name can hold (no "/" and no NUL), and how the renderer shows them.
HOSTILE = {
    "csi": ("\x1b[2J\x1b[31mred", "\\x1b[2J\\x1b[31mred"),
    "osc-title": ("\x1b]0;owned\x07", "\\x1b]0;owned\\x07"),
    "carriage-return": ("ok\rFAKE", "ok\\x0dFAKE"),
    "newline": ("two\nlines", "two\\x0alines"),
    "c1": ("\x9b31m", "\\x9b31m"),
    "bidi": ("abc\u202etxt", "abc\\u202etxt"),
}
RAW_CONTROLS = ("\x1b", "\x07", "\r", "\x9b", "\u202e")

PAIRS = [
    '{"prompt": "p1", "chosen": "a", "rejected": "b"}',
    '{"prompt": "p2", "chosen": "c", "rejected": "d"}',
    '{"prompt": "p3", "chosen": "e", "rejected": "f"}',
    '{"prompt": "p4", "chosen": "g"}',
]


def convert_data(tmp: Path, part: str) -> list[str]:
    source = write_jsonl(tmp / "pairs.jsonl", PAIRS)
    out = tmp / f"train-{part}.jsonl"
    return [
        "convert-data",
        str(source),
        str(out),
        "--kind",
        "preference",
        "--eval-out",
        str(tmp / f"eval-{part}.jsonl"),
        "--eval-fraction",
        "0.3",
        "--skip-invalid",
    ]


def migrate_config(tmp: Path, part: str) -> list[str]:
    params = tmp / "params"
    params.mkdir()
    shutil.copy(REPO / "params" / "base.yaml", params / "base.yaml")
    config = tmp / f"old-{part}.yaml"
    config.write_text(PRODUCTION, encoding="utf-8")
    return ["migrate-config", str(config), "--params-dir", str(params), "--env", "prod"]


def compile_into(tmp: Path, part: str) -> list[str]:
    target = tmp / f"compiled-{part}"
    shutil.copytree(REPO / "compiled", target)  # unchanged sources: answered from the stamp
    return ["compile", "--compiled-dir", str(target)]


def steps_of_local_data(tmp: Path, part: str) -> list[str]:
    data = tmp / f"data-{part}"
    data.mkdir()
    for name in ("preference", "prompt", "eval"):
        shutil.copy(REPO / "samples" / f"{name}.jsonl", data / f"{name}.jsonl")
    env = tmp / "mine.yaml"
    text = (REPO / "params" / "local.yaml").read_text(encoding="utf-8")
    for name in ("preference", "prompt", "eval"):  # YAML holds controls only as escapes
        quoted = json.dumps(f"{data.as_posix()}/{name}.jsonl")
        text = text.replace(f"samples/{name}.jsonl", quoted)
    env.write_text(text, encoding="utf-8")
    return ["steps", str(env), "--params-dir", str(REPO / "params")]


COMMANDS: dict[str, Callable[[Path, str], list[str]]] = {
    "convert-data": convert_data,
    "migrate-config": migrate_config,
    "compile": compile_into,
    "steps": steps_of_local_data,
}


@pytest.mark.parametrize("variant", list(HOSTILE))
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_path_echoed_on_success_is_escaped(
    command: str,
    variant: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    raw, shown = HOSTILE[variant]
    monkeypatch.chdir(tmp_path)
    args = COMMANDS[command](tmp_path, raw)
    status = cli.main(args)
    out, err = capsys.readouterr()
    assert status == 0, out + err
    printed = out + err
    assert shown in printed, printed
    for control in RAW_CONTROLS:
        assert control not in printed, (control, printed)
    if variant == "newline":  # each echoed path stays on its own line
        assert not any(line.startswith("lines") for line in printed.splitlines()), printed
