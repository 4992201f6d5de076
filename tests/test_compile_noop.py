"""A no-op ``rlhf compile`` answers from a digest of the sources and pinned versions, without
importing kfp, and still refuses a compiled/ that is not what the last compile wrote."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vertex_rlhf import cli
from vertex_rlhf.template import compiler

ROOT = Path(__file__).resolve().parents[1]

NOOP = """
import sys
from vertex_rlhf import cli
status = cli.main(["compile", "--compiled-dir", sys.argv[1]])
heavy = sorted(m for m in ("kfp", "google_cloud_pipeline_components") if m in sys.modules)
print(status, heavy)
"""


def noop_compile(directory: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-c", NOOP, str(directory)], capture_output=True, text=True, check=True
    )
    return result.stdout


def compiled_copy(tmp_path: Path) -> Path:
    directory = tmp_path / "compiled"
    shutil.copytree(ROOT / "compiled", directory)
    (directory / compiler.STAMP).unlink(missing_ok=True)
    return directory


def test_a_noop_compile_imports_no_kfp(tmp_path: Path) -> None:
    directory = compiled_copy(tmp_path)
    first = noop_compile(directory)  # no stamp yet: a real compile, which writes it
    assert "(unchanged" in first and first.strip().endswith(
        "0 ['google_cloud_pipeline_components', 'kfp']"
    )
    assert (directory / compiler.STAMP).is_file()
    second = noop_compile(directory)
    assert "(unchanged" in second and second.strip().endswith("0 []")


def test_a_compiled_dir_the_stamp_does_not_describe_gets_a_real_compile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = compiled_copy(tmp_path)
    assert cli.main(["compile", "--compiled-dir", str(directory)]) == 0
    current = compiler.read_manifest(directory)["current"]
    template = directory / f"rlhf-tuning-{current}.yaml"
    original = template.read_bytes()
    template.write_bytes(original + b"# edited\n")  # the stamp no longer holds...
    capsys.readouterr()
    assert cli.main(["compile", "--compiled-dir", str(directory)]) == 0
    assert "(written" in capsys.readouterr().out  # ...so the real compile restores it
    assert template.read_bytes() == original
    # compiled/ recording other content for this version (sources out of step): refused
    manifest = json.loads((directory / compiler.MANIFEST).read_text(encoding="utf-8"))
    manifest["templates"][current]["sha256"] = "0" * 64
    (directory / compiler.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    assert cli.main(["compile", "--compiled-dir", str(directory)]) == 13
    assert "a version is never rewritten" in capsys.readouterr().err


def test_the_fingerprint_follows_every_source_and_pin(tmp_path: Path) -> None:
    root = tmp_path / "project"
    for name in (*compiler.SOURCE_DIRS, *compiler.PIN_FILES):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, root / name)
    before = compiler.source_fingerprint(root)
    assert compiler.source_fingerprint(root) == before
    for name in ("vertex_rlhf/data/rules.py", "pipelines/rlhf_tuning.py", "constraints.txt"):
        path = root / name
        original = path.read_bytes()
        path.write_bytes(original + b"\n")
        assert compiler.source_fingerprint(root) != before, name
        path.write_bytes(original)
    assert compiler.source_fingerprint(root) == before
