"""Datasets of several local files on every core: whole files and byte ranges of large ones,
read by forked processes, give the report and profile of one process reading the files in
order: the shipped single pass (``rules.validate_dataset_files``) is the reference for
``parallel.check_files``, ``files.validate`` and the CLI."""

from __future__ import annotations

import gzip
import itertools
import json
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SAMPLES, before_each_piece, fork_refused
from tests.test_parser_parity import mutations
from vertex_rlhf import cli
from vertex_rlhf.data import files, parallel
from vertex_rlhf.data.matching import dataset_files
from vertex_rlhf.data.parallel import check_files, plan_pieces
from vertex_rlhf.data.profile import Profile
from vertex_rlhf.data.rules import merge_reports, new_dataset_report, validate_dataset_files

pytestmark = pytest.mark.usefixtures("json_parser")

TEXT = (SAMPLES / "preference.jsonl").read_bytes().splitlines()
CHAT = (SAMPLES / "chat_preference.jsonl").read_bytes().splitlines()
PROMPTS = (SAMPLES / "prompt.jsonl").read_bytes().splitlines()
BROKEN = [
    b'{"input_text": "x", "candidate_0": "a"',
    b'{"input_text": "x", "candidate_0": "a", "candidate_1": "b", "choice": 2}',
    b'{"input_text": "latin \xe9", "candidate_0": "a", "candidate_1": "b", "choice": 0}',
    b'["not", "an", "object"]',
]


def joined(lines: list[bytes], end: bytes = b"\n") -> bytes:
    return b"\n".join(lines) + end


def shuffled(seed: int) -> bytes:
    """Valid rows, broken rows and blank lines, shuffled."""
    rng = random.Random(seed)
    lines = [rng.choice(TEXT) for _ in range(150)] + mutations(seed, 60) + [b"", b" \t"] * 8
    rng.shuffle(lines)
    return joined(lines)


def write_dataset(root: Path, seed: int = 0) -> str:
    """Files with every file-level case; returns their glob.

    Problems at file starts and ends, blank lines, an empty file, a blank-only file, a
    byte-order mark, gzip, UTF-16, a file without its last newline, a chat file among
    text files (the cross-file layout problem), a file whose layout changes halfway
    (ranges that cannot be merged) and prompt rows.
    """
    bad = [*BROKEN, *mutations(seed, 4)]
    contents = {
        "a00-good": joined(TEXT * 2),
        "a01-bad-ends": joined([bad[0], *TEXT[:60], b"", b"  ", *TEXT[60:], bad[1]]),
        "a02-empty": b"",
        "a03-bom": b"\xef\xbb\xbf" + joined([*TEXT[:80], bad[2], *TEXT[80:]]),
        "a04-gzip": gzip.compress(joined(TEXT), mtime=0),
        "a05-blank": b"\n  \n\n",
        "a06-mixed": shuffled(seed),
        "a07-chat": joined(CHAT * 3),
        "a08-no-newline": joined([*TEXT[:40], bad[3]], end=b""),
        "a09-layout-change": joined(TEXT * 2 + CHAT + TEXT),
        "a10-utf16": joined(TEXT[:20]).decode().encode("utf-16"),
        "a11-prompts": joined([*PROMPTS, b"", *PROMPTS[:10]]),
        "a12-mixed": shuffled(seed + 1),
    }
    root.mkdir(parents=True, exist_ok=True)
    for name, data in contents.items():
        (root / f"{name}.jsonl").write_bytes(data)
    return str(root / "*.jsonl")


@pytest.fixture
def dataset(tmp_path: Path) -> str:
    return write_dataset(tmp_path / "data")


class Spy:
    """Records the plans made and the forks run, calling the real functions."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.plans: list[list[list[tuple[int, int, int]]]] = []
        self.forked = 0
        real_plan, real_run = parallel.plan_pieces, parallel.run_forked

        def plan(*args: Any) -> Any:
            self.plans.append(real_plan(*args))
            return self.plans[-1]

        def run(task: Callable[[int], Any], count: int) -> Any:
            self.forked += count - 1
            return real_run(task, count)

        monkeypatch.setattr(parallel, "plan_pieces", plan)
        monkeypatch.setattr(parallel, "run_forked", run)

    def split_files(self) -> set[int]:
        """The indexes of the files some plan cut into ranges."""
        return {i for plan in self.plans for share in plan for i, start, _ in share if start}


def component(glob: str, kind: str, max_reported: int, workers: int) -> dict[str, Any]:
    """The shipped single pass (``workers=1``), or the CLI's reader on ``workers`` processes."""
    if workers == 1:
        return validate_dataset_files(glob, kind, max_reported)
    found, problem = dataset_files(glob)
    assert not problem
    template = new_dataset_report(glob, kind, max_reported)
    return merge_reports(glob, kind, check_files(template, found, None, workers, min_bytes=1))


@pytest.mark.parametrize("kind", ["preference", "prompt", "eval"])
@pytest.mark.parametrize("max_reported", [1, 4, 1000])
def test_many_files_give_the_single_process_report(
    dataset: str, kind: str, max_reported: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    single = component(dataset, kind, max_reported, workers=1)
    spy = Spy(monkeypatch)
    for workers in (2, 3, 6):
        assert component(dataset, kind, max_reported, workers) == single, workers
    assert spy.forked == 1 + 2 + 5  # the first share is read here
    assert len(spy.split_files()) >= 3  # byte ranges of files, not only whole files
    assert len(single["files"]) == 13
    assert single["errors"] > len(single["problems"]) or max_reported == 1000


def test_the_dataset_holds_every_file_level_case(dataset: str) -> None:
    report = component(dataset, "preference", 1000, workers=3)
    text = "\n".join(report["problems"])
    assert report["errors"] == len(report["problems"]) > 60
    for expected in (
        "a01-bad-ends.jsonl:1:",
        f"a01-bad-ends.jsonl:{len(TEXT) + 4}:",  # the last line, after two blank ones
        "a02-empty.jsonl: file is empty (no rows)",
        "a03-bom.jsonl:1: file starts with a UTF-8 byte-order mark",
        "a03-bom.jsonl:81:",
        "a04-gzip.jsonl: is gzip-compressed",
        "a05-blank.jsonl: file is empty (no rows)",
        "a07-chat.jsonl: rows are chat but earlier files are text",
        "a08-no-newline.jsonl:41:",
        f"a09-layout-change.jsonl:{2 * len(TEXT) + 1}: row is chat but earlier rows are text",
        "a10-utf16.jsonl: is UTF-16",
    ):
        assert expected in text
    assert report["blank_lines"] >= 2 + 3 + 1 + 32
    assert dict(report["files"])[str(Path(dataset).parent / "a02-empty.jsonl")] == 0


def test_a_file_cut_in_ranges_reports_its_byte_order_mark_and_line_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = BROKEN
    lines = TEXT * 3 + [bad[0], b""] + TEXT * 2 + [bad[1]]
    (tmp_path / "a.jsonl").write_bytes(b"\xef\xbb\xbf" + joined(lines))
    (tmp_path / "b.jsonl").write_bytes(joined(TEXT))
    glob = str(tmp_path / "*.jsonl")
    single = component(glob, "preference", 50, workers=1)
    spy = Spy(monkeypatch)
    assert component(glob, "preference", 50, workers=2) == single
    assert spy.split_files() == {0}
    assert single["problems"][0].endswith(
        "a.jsonl:1: file starts with a UTF-8 byte-order mark; save it as UTF-8 without BOM"
    )
    assert f"a.jsonl:{3 * len(TEXT) + 1}:" in single["problems"][1]
    assert f"a.jsonl:{5 * len(TEXT) + 3}:" in single["problems"][2]


def test_compressed_and_utf16_files_are_never_cut(tmp_path: Path) -> None:
    names = []
    for name, data in (
        ("a.jsonl", gzip.compress(joined(TEXT * 20), mtime=0)),
        ("b.jsonl", joined(TEXT * 10).decode().encode("utf-16")),
        ("c.jsonl", joined(TEXT * 10)),
    ):
        (tmp_path / name).write_bytes(data)
        names.append(str(tmp_path / name))
    sizes = [os.path.getsize(name) for name in names]
    for processes in (2, 3, 8):
        pieces = [piece for share in plan_pieces(names, sizes, processes) for piece in share]
        assert [piece for piece in pieces if piece[0] < 2] == [(0, 0, sizes[0]), (1, 0, sizes[1])]


@pytest.mark.parametrize("processes", [2, 3, 5, 16])
def test_plans_cover_every_file_in_order_at_line_starts_in_even_shares(
    tmp_path: Path, processes: int
) -> None:
    root = Path(write_dataset(tmp_path / "data", seed=3)).parent
    names = sorted(str(path) for path in root.glob("*.jsonl"))
    sizes = [os.path.getsize(name) for name in names]
    plan = plan_pieces(names, sizes, processes)
    pieces = [piece for share in plan for piece in share]
    assert [(i, start) for i, start, _ in pieces if start == 0] == [
        (i, 0) for i in range(len(names))
    ]
    for (i, _, end), (j, start, _) in itertools.pairwise(pieces):
        assert (j, start) == ((i, end) if end < sizes[i] else (i + 1, 0))
        if start:
            assert Path(names[j]).read_bytes()[start - 1 : start] == b"\n"
    assert pieces[0][:2] == (0, 0) and pieces[-1][0::2] == (len(names) - 1, sizes[-1])
    shares = [sum(end - start for _, start, end in share) for share in plan]
    longest = max(len(line) for name in names for line in Path(name).read_bytes().splitlines())
    whole = max(sizes[4], sizes[10])  # gzip and UTF-16: never cut
    assert len(plan) <= processes and sum(shares) == sum(sizes)
    if processes <= 3:  # shares of a few KB: any cut may move by a line or a whole file
        assert len(plan) == processes
        assert max(shares) - min(shares) <= 2 * (longest + whole)


def test_the_profile_is_the_single_process_profile(
    dataset: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    training = Profile()
    for line in TEXT[::3]:
        training.observe(json.loads(line))
    results = []
    spy = Spy(monkeypatch)
    for workers in (1, 2, 4):
        profiles = [Profile(training=(training.prompts,)) for _ in range(13)]
        template = new_dataset_report(dataset, "eval", 7)
        listed = sorted(Path(dataset).parent.glob("*.jsonl"))
        pairs = [(path.name, str(path)) for path in listed]
        parts = check_files(template, pairs, profiles, workers, min_bytes=1)
        results.append((parts, [profile.summary() for profile in profiles]))
    assert results[0] == results[1] == results[2]
    assert spy.forked == 1 + 3 and spy.split_files()
    assert sum(summary["duplicate_prompts"] for summary in results[0][1]) > 100
    assert sum(summary["eval_overlap"] for summary in results[0][1]) > 50


def validate_with_profile(glob: str, kind: str, processes: int) -> tuple[Any, Any]:
    profile = Profile()
    report = files.validate(glob, kind, 6, lambda _: profile, processes=processes)
    return report, profile.summary()


def test_validate_reads_local_files_in_parallel_with_the_same_report_and_profile(
    dataset: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "PARALLEL_MIN_BYTES", 1)
    for kind in ("preference", "eval"):
        threads = validate_with_profile(dataset, kind, processes=1)
        spy = Spy(monkeypatch)
        assert validate_with_profile(dataset, kind, processes=3) == threads
        assert spy.forked == 2
        assert threads[0] == component(dataset, kind, 6, workers=1)


def cli_output(
    capsys: pytest.CaptureFixture[str], glob: str, kind: str, *flags: str
) -> tuple[int, str, str]:
    status = cli.main(["validate-data", "--path", glob, "--kind", kind, *flags])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize("flags", [["--json"], ["--json", "--no-profile"], []])
@pytest.mark.parametrize("kind", ["preference", "prompt"])
def test_validate_data_prints_the_same_in_parallel(
    dataset: str,
    kind: str,
    flags: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    flags = [*flags, "--max-reported", "3"]
    monkeypatch.setattr(files, "PARALLEL_MIN_BYTES", 1 << 60)
    threads = cli_output(capsys, dataset, kind, *flags)
    monkeypatch.setattr(files, "PARALLEL_MIN_BYTES", 1)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0, 1, 2}, raising=False)
    spy = Spy(monkeypatch)
    assert cli_output(capsys, dataset, kind, *flags) == threads
    assert spy.forked == 2
    assert threads[0] == 15 and "DATA_005" in threads[2]


def test_small_datasets_stay_in_one_process(dataset: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_fork() -> int:
        raise AssertionError("forked for a small dataset")

    monkeypatch.setattr(os, "fork", no_fork)
    found, _ = dataset_files(dataset)
    template = new_dataset_report(dataset, "preference", 6)
    report = merge_reports(dataset, "preference", check_files(template, found, None, 8))
    assert report["rows"] > 500 and report == validate_dataset_files(dataset, "preference", 6)
    assert validate_with_profile(dataset, "preference", processes=8)[0] == report


def test_no_fork_or_a_dead_worker_means_one_pass_and_one_profile(
    dataset: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    single = validate_with_profile(dataset, "preference", processes=1)
    monkeypatch.setattr(files, "PARALLEL_MIN_BYTES", 1)
    with monkeypatch.context() as patch:  # a worker killed mid-way: no answer
        before_each_piece(patch, in_workers=lambda: os._exit(3))
        assert validate_with_profile(dataset, "preference", processes=3) == single

    monkeypatch.setattr(os, "fork", fork_refused)
    assert validate_with_profile(dataset, "preference", processes=3) == single


def test_a_file_whose_ranges_start_with_other_layouts_is_read_again_in_one_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.jsonl").write_bytes(joined(TEXT))
    (tmp_path / "b.jsonl").write_bytes(joined(TEXT * 2 + CHAT * 4 + TEXT))
    glob = str(tmp_path / "*.jsonl")
    single = component(glob, "preference", 20, workers=1)
    spy = Spy(monkeypatch)
    for workers in range(2, 7):
        assert component(glob, "preference", 20, workers) == single, workers
    assert 1 in spy.split_files()
    assert "b.jsonl:321: row is chat but earlier rows are text" in single["problems"][0]
