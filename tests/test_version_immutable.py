"""A compiled version never changes: a new pipeline needs a new PIPELINE_VERSION."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.rlhf_tuning import PIPELINE_NAME, PIPELINE_VERSION
from tests.conftest import REPO
from vertex_rlhf.errors import PipelineError
from vertex_rlhf.template import compiler

CURRENT = f"{PIPELINE_NAME}-{PIPELINE_VERSION}.yaml"


def set_content(directory: Path, version: str, text: str, file: str | None = None) -> Path:
    """Puts ``text`` in compiled/ as ``version``: what an earlier compile left there."""
    path = directory / (file or f"{PIPELINE_NAME}-{version}.yaml")
    path.write_text(text, encoding="utf-8")
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    entry = manifest["templates"].setdefault(version, {"file": path.name})
    entry["sha256"] = hashlib.sha256(text.encode()).hexdigest()
    (directory / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return path


def run_compile(directory: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vertex_rlhf", "compile", "--compiled-dir", str(directory), *flags],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )


def test_other_content_under_an_existing_version_is_refused(compiled_copy: Path) -> None:
    # compiled/ holds this version with content the sources no longer give.
    path = set_content(compiled_copy, PIPELINE_VERSION, "# an earlier pipeline\n")
    before = {p.name: p.read_bytes() for p in compiled_copy.iterdir()}
    with pytest.raises(PipelineError) as caught:
        compiler.compile_to(compiled_copy)
    assert f"version {PIPELINE_VERSION} is already compiled in {path}" in caught.value.message
    assert "a version is never rewritten" in caught.value.message
    assert "bump PIPELINE_VERSION in pipelines/rlhf_tuning.py" in caught.value.hint
    assert {p.name: p.read_bytes() for p in compiled_copy.iterdir()} == before


def test_the_cli_refuses_with_the_fix_and_writes_nothing(compiled_copy: Path) -> None:
    set_content(compiled_copy, PIPELINE_VERSION, "# an earlier pipeline\n")
    result = run_compile(compiled_copy)
    assert result.returncode == 13
    assert "a version is never rewritten" in result.stderr
    assert "fix: bump PIPELINE_VERSION" in result.stderr
    assert (compiled_copy / CURRENT).read_text(encoding="utf-8") == "# an earlier pipeline\n"


def test_amend_rewrites_an_unpublished_version_only(compiled_copy: Path) -> None:
    set_content(compiled_copy, PIPELINE_VERSION, "# work in progress\n")
    result = run_compile(compiled_copy, "--amend")
    assert result.returncode == 0, result.stderr
    assert (compiled_copy / CURRENT).read_bytes() == (REPO / "compiled" / CURRENT).read_bytes()

    set_content(compiled_copy, PIPELINE_VERSION, "# published\n")
    compiler.record_publication(
        compiled_copy, PIPELINE_VERSION, "https://us-kfp.pkg.dev/p/r", "sha256:" + "0" * 64
    )
    result = run_compile(compiled_copy, "--amend")
    assert result.returncode == 13
    assert "published to https://us-kfp.pkg.dev/p/r" in result.stderr


def test_a_bumped_version_is_written_beside_the_old_ones(tmp_path: Path) -> None:
    shutil.copytree(REPO / "compiled", tmp_path / "compiled")
    directory = tmp_path / "compiled"
    for old in directory.glob(f"{PIPELINE_NAME}-*.yaml"):
        old.unlink()
    manifest = {"pipeline": PIPELINE_NAME, "current": "0.9.0", "templates": {}}
    (directory / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    old = set_content(directory, "0.9.0", "# version 0.9.0\n")
    template, changed = compiler.compile_to(directory)
    assert changed and template.version == PIPELINE_VERSION
    assert old.read_text(encoding="utf-8") == "# version 0.9.0\n"  # kept
    written = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    assert written["current"] == PIPELINE_VERSION
    assert set(written["templates"]) == {"0.9.0", PIPELINE_VERSION}
    assert compiler.stale_problems(directory) == []


def test_the_staleness_check_says_to_bump_the_version(compiled_copy: Path) -> None:
    set_content(compiled_copy, PIPELINE_VERSION, "# an earlier pipeline\n")
    [problem] = compiler.stale_problems(compiled_copy)
    assert f"PIPELINE_VERSION is still {PIPELINE_VERSION}" in problem
    assert "bump PIPELINE_VERSION" in problem
    result = run_compile(compiled_copy, "--check")
    assert result.returncode == 13 and "bump PIPELINE_VERSION" in result.stderr


def test_the_staleness_check_guards_earlier_versions_too(compiled_copy: Path) -> None:
    old = set_content(compiled_copy, "0.9.0", "# version 0.9.0\n")
    assert compiler.stale_problems(compiled_copy) == []
    old.write_text("# version 0.9.0, edited\n", encoding="utf-8")
    [problem] = compiler.stale_problems(compiled_copy)
    assert problem.startswith(f"{old} (version 0.9.0) no longer has its recorded sha256")
    old.unlink()
    [problem] = compiler.stale_problems(compiled_copy)
    assert problem.startswith(f"{old} (version 0.9.0) is missing")


# ---- a version is two files (with and without e-mail): each is as immutable ----

NOTIFY = f"{PIPELINE_NAME}-{PIPELINE_VERSION}-notify.yaml"


def set_notify_content(directory: Path, version: str, text: str) -> Path:
    """Puts ``text`` in compiled/ as the e-mail variant of ``version``."""
    path = directory / f"{PIPELINE_NAME}-{version}-notify.yaml"
    path.write_text(text, encoding="utf-8")
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    entry = manifest["templates"][version]
    entry["notify"] = {"file": path.name, "sha256": hashlib.sha256(text.encode()).hexdigest()}
    (directory / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return path


@pytest.mark.parametrize("notify", [False, True], ids=["plain", "notify"])
def test_other_content_in_either_file_of_the_version_is_refused(
    compiled_copy: Path, notify: bool
) -> None:
    text = "# an earlier pipeline\n"
    if notify:
        path = set_notify_content(compiled_copy, PIPELINE_VERSION, text)
    else:
        path = set_content(compiled_copy, PIPELINE_VERSION, text)
    before = {p.name: p.read_bytes() for p in compiled_copy.iterdir()}
    with pytest.raises(PipelineError) as caught:
        compiler.compile_to(compiled_copy)
    assert f"version {PIPELINE_VERSION} is already compiled in {path}" in caught.value.message
    assert {p.name: p.read_bytes() for p in compiled_copy.iterdir()} == before
    [problem] = compiler.stale_problems(compiled_copy)
    assert problem.startswith(f"{path} differs from a fresh compile")


@pytest.mark.parametrize("variant", ["", "notify"], ids=["plain", "notify"])
def test_publishing_either_file_ends_amending(compiled_copy: Path, variant: str) -> None:
    set_notify_content(compiled_copy, PIPELINE_VERSION, "# work in progress\n")
    host = "https://us-kfp.pkg.dev/p/r"
    compiler.record_publication(
        compiled_copy, PIPELINE_VERSION, host, "sha256:" + "0" * 64, variant
    )
    with pytest.raises(PipelineError) as caught:
        compiler.compile_to(compiled_copy, amend=True)
    assert f"published to {host}" in caught.value.message
    assert (compiled_copy / NOTIFY).read_text(encoding="utf-8") == "# work in progress\n"


@pytest.mark.parametrize("notify", [False, True], ids=["plain", "notify"])
def test_the_staleness_check_guards_each_file_of_earlier_versions(
    compiled_copy: Path, notify: bool
) -> None:
    plain = set_content(compiled_copy, "0.9.0", "# version 0.9.0\n")
    variant = set_notify_content(compiled_copy, "0.9.0", "# version 0.9.0 with e-mail\n")
    assert compiler.stale_problems(compiled_copy) == []
    edited = variant if notify else plain
    edited.write_text("# edited\n", encoding="utf-8")
    [problem] = compiler.stale_problems(compiled_copy)
    assert problem.startswith(f"{edited} (version 0.9.0) no longer has its recorded sha256")
    edited.unlink()
    [problem] = compiler.stale_problems(compiled_copy)
    assert problem.startswith(f"{edited} (version 0.9.0) is missing")
