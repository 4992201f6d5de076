"""One large file on every core: byte ranges at line starts, read in forked processes, give
the report and profile a single pass gives (line numbers, problems, counts, duplicates)."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SAMPLES, fork_refused
from tests.test_dataset_paths import CORPUS
from tests.test_parser_parity import mutations
from vertex_rlhf.data import files
from vertex_rlhf.data.parallel import check_files, check_piece, merge_ranges, plan_pieces
from vertex_rlhf.data.profile import Profile
from vertex_rlhf.data.rules import new_dataset_report

pytestmark = pytest.mark.usefixtures("json_parser")


def one_file_report(path: Path, kind: str, workers: int) -> tuple[str, str]:
    """The report and profile of one file read by ``workers`` processes, as JSON text."""
    report = check_file(path, kind, profile := Profile(), workers=workers, min_bytes=1)
    return json.dumps(report, sort_keys=True), json.dumps(profile.summary(), sort_keys=True)


def check_file(path: Path, kind: str, profile: Profile, **options: int) -> dict[str, Any]:
    """One file's report from ``check_files``, 50 problems kept."""
    template = new_dataset_report(str(path), kind, max_reported=50)
    return check_files(template, [(path.name, str(path))], [profile], **options)[0]


def ranges_of(path: Path, parts: int) -> list[tuple[int, int]]:
    """A file's byte ranges when cut into ``parts`` shares."""
    plan = plan_pieces([str(path)], [path.stat().st_size], parts)
    return [(start, end) for share in plan for _, start, end in share]


def assert_same_in_parallel(path: Path, kind: str) -> None:
    single = one_file_report(path, kind, workers=1)
    for workers in (2, 3, 7):
        assert one_file_report(path, kind, workers) == single, (path.name, workers)


def mixed_file(tmp_path: Path, seed: int) -> Path:
    """Valid rows, repeated prompts, broken rows and blank lines, shuffled."""
    rng = random.Random(seed)
    good = (SAMPLES / "preference.jsonl").read_bytes().splitlines()
    lines = [rng.choice(good) for _ in range(400)] + mutations(seed, 150) + [b"", b"  "] * 20
    rng.shuffle(lines)
    path = tmp_path / f"mixed-{seed}.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.mark.parametrize("sample", sorted(p.name for p in SAMPLES.glob("*.jsonl")))
def test_shipped_samples_give_the_same_report_in_parallel(sample: str) -> None:
    kind = "prompt" if "prompt" in sample else "eval" if "eval" in sample else "preference"
    assert_same_in_parallel(SAMPLES / sample, kind)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_files_give_the_same_report_in_parallel(tmp_path: Path, name: str) -> None:
    path = tmp_path / Path(name).name
    path.write_bytes(CORPUS[name])
    for kind in ("preference", "prompt"):
        assert_same_in_parallel(path, kind)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_broken_rows_blank_lines_and_duplicates_across_ranges(tmp_path: Path, seed: int) -> None:
    path = mixed_file(tmp_path, seed)
    single = one_file_report(path, "preference", workers=1)
    report = json.loads(single[0])
    assert report["errors"] > 50 and report["blank_lines"] == 40
    assert json.loads(single[1])["duplicate_prompts"] > 200  # duplicates span the ranges
    assert_same_in_parallel(path, "preference")
    merged = new_dataset_report(str(path), "preference", max_reported=50)
    profile = Profile()
    pieces = [check_piece(merged, path.name, str(path), *r, profile) for r in ranges_of(path, 3)]
    assert len(pieces) == 3
    assert merge_ranges(merged, path.name, pieces, profile)  # no fallback
    assert (
        json.dumps(merged, sort_keys=True),
        json.dumps(profile.summary(), sort_keys=True),
    ) == single


def test_ranges_start_at_line_starts_and_cover_the_file(tmp_path: Path) -> None:
    path = mixed_file(tmp_path, 4)
    data = path.read_bytes()
    ranges = ranges_of(path, 5)
    assert len(ranges) == 5
    assert ranges[0][0] == 0 and ranges[-1][1] == len(data)
    for (_, end), (start, _) in itertools.pairwise(ranges):
        assert end == start and data[start - 1 : start] == b"\n"


def test_a_file_with_layouts_changing_between_ranges_reads_as_one_pass(tmp_path: Path) -> None:
    text = (SAMPLES / "preference.jsonl").read_bytes().splitlines()
    chat = (SAMPLES / "chat_preference.jsonl").read_bytes().splitlines()
    path = tmp_path / "mixed-layouts.jsonl"
    path.write_bytes(b"\n".join(text * 5 + chat * 5 + text) + b"\n")
    single = one_file_report(path, "preference", workers=1)
    assert "keep one layout per dataset" in single[0]
    assert_same_in_parallel(path, "preference")


def test_validate_reads_one_large_local_file_in_parallel_with_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = mixed_file(tmp_path, 5)
    monkeypatch.setattr(files, "PARALLEL_MIN_BYTES", 1)
    reports: list[Any] = []
    for processes in (1, 2):
        profile = Profile()
        report = files.validate(
            str(path), "preference", 20, lambda _, p=profile: p, 8, None, processes
        )
        reports.append((report, profile.summary()))
    assert reports[0] == reports[1]
    assert reports[0][0]["errors"] > 50


def test_small_files_stay_in_one_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    def no_fork() -> int:
        raise AssertionError("forked for a small file")

    monkeypatch.setattr(os, "fork", no_fork)
    path = mixed_file(tmp_path, 6)
    report = check_file(path, "preference", Profile(), workers=4)  # default min_bytes
    assert report["rows"] > 400


def test_when_workers_cannot_be_forked_one_process_reads_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    path = mixed_file(tmp_path, 7)
    single = one_file_report(path, "preference", workers=1)

    monkeypatch.setattr(os, "fork", fork_refused)
    assert one_file_report(path, "preference", workers=2) == single


def test_a_fork_failing_after_the_first_worker_reaps_it_and_reads_in_one_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    path = mixed_file(tmp_path, 8)
    single = one_file_report(path, "preference", workers=1)
    real_fork, forks = os.fork, []

    def fork_once() -> int:
        if forks:
            raise BlockingIOError("Resource temporarily unavailable")
        pid = real_fork()
        forks.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", fork_once)
    assert one_file_report(path, "preference", workers=4) == single
    assert len(forks) == 1 and forks[0] > 0
    with pytest.raises(ChildProcessError):  # the worker was reaped: none left behind
        os.waitpid(forks[0], os.WNOHANG)


def test_eval_overlap_with_training_prompts_is_the_same_in_parallel(tmp_path: Path) -> None:
    training = Profile()
    for line in (SAMPLES / "preference.jsonl").read_bytes().splitlines()[::2]:
        training.observe(json.loads(line))
    path = mixed_file(tmp_path, 9)
    summaries = []
    for workers in (1, 3):
        profile = Profile(training=(training.prompts,))
        report = check_file(path, "eval", profile, workers=workers, min_bytes=1)
        summaries.append(json.dumps([report, profile.summary()], sort_keys=True))
    assert summaries[0] == summaries[1]
    assert json.loads(summaries[0])[1]["eval_overlap"] > 100
