"""One matcher: a path or glob selects the same files in the CLI (local and gs://) and in
the pipeline component (``/gcs/``), the way GCPC's readers do."""

from __future__ import annotations

import gzip
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from vertex_rlhf.data import files
from vertex_rlhf.data.matching import dataset_files, match_glob

ROW = {"input_text": "a post", "candidate_0": "good", "candidate_1": "bad", "choice": 0}
CHAT = {"messages": [{"author": "user", "content": "hi"}], **{k: ROW[k] for k in list(ROW)[1:]}}


def line(row: dict[str, Any]) -> bytes:
    return json.dumps(row).encode() + b"\n"


# A corpus of (relative path, content): good files, dot-files, names holding glob
# characters, nested directories, and files broken in every way the rules name.
CORPUS: dict[str, bytes] = {
    "c/a.jsonl": line(ROW) * 2,
    "c/b.jsonl": line(ROW),
    "c/.hidden.jsonl": line(ROW),
    "c/data[1].jsonl": line(ROW),
    "c/data1.jsonl": line(ROW) * 3,
    "c/sub/c.jsonl": line(ROW),
    "c/sub/deeper/d.jsonl": line(ROW),
    "c/chat/c.jsonl": line(CHAT),
    "c/bad/nan.jsonl": line(ROW).replace(b'"bad"', b"NaN"),
    "c/bad/dup.jsonl": line(ROW)[:-2] + b', "choice": 1}\n',
    "c/bad/bom.jsonl": line(ROW) + b"\xef\xbb\xbf" + line(ROW),
    "c/bad/surrogate.jsonl": line({**ROW, "candidate_1": "x"}).replace(b'"x"', b'"\\ud800"'),
    "c/bad/cesu.jsonl": line({**ROW, "candidate_1": "x"}).replace(b'"x"', b'"\xed\xa0\x80"'),
    "c/bad/form.jsonl": b'{"prompt": "p", "chosen": "a", "rejected": "b"}\n',
    "c/bad/packed.jsonl": gzip.compress(line(ROW) * 20),
    "c/bad/wide.jsonl": line(ROW).decode().encode("utf-16"),
}

# Patterns relative to the corpus root, and the files each selects.
SELECTIONS = [
    (
        "c/*.jsonl",
        ["c/.hidden.jsonl", "c/a.jsonl", "c/b.jsonl", "c/data1.jsonl", "c/data[1].jsonl"],
    ),
    ("c/data[1].jsonl", ["c/data[1].jsonl"]),
    ("c/data?.jsonl", ["c/data1.jsonl"]),
    ("c/[ab].jsonl", ["c/a.jsonl", "c/b.jsonl"]),
    ("c/[!ab.]*.jsonl", ["c/data1.jsonl", "c/data[1].jsonl"]),
    ("c/*/c.jsonl", ["c/chat/c.jsonl", "c/sub/c.jsonl"]),
    ("c/*/*/*.jsonl", ["c/sub/deeper/d.jsonl"]),
    ("c/a.jsonl", ["c/a.jsonl"]),
    ("c/*.json", []),
    ("c/sub", []),
    ("c/**/*.jsonl", []),
]


def write_corpus(root: Path) -> None:
    for name, content in CORPUS.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)


def test_star_stays_within_a_segment_and_dot_files_count() -> None:
    names = ["d/a.jsonl", "d/.b.jsonl", "d/x/c.jsonl", "d/data[1].jsonl", "d/data1.jsonl"]
    assert match_glob("d/*.jsonl", names) == [
        "d/.b.jsonl",
        "d/a.jsonl",
        "d/data1.jsonl",
        "d/data[1].jsonl",
    ]
    assert match_glob("d/*", names) == match_glob("d/*.jsonl", names)
    assert match_glob("d?x/c.jsonl", names) == []  # ? does not match /
    assert match_glob("d[/]x/c.jsonl", names) == []  # nor does a class
    assert match_glob("d/data[1].jsonl", names) == ["d/data[1].jsonl"]  # the file itself
    assert match_glob("d/data[1].jsonl", [*names[:3], "d/data1.jsonl"]) == ["d/data1.jsonl"]
    assert match_glob("d/[!a.]*", names) == ["d/data1.jsonl", "d/data[1].jsonl"]
    assert match_glob("d/a.jsonl", ["d/a.jsonlx"]) == []


@pytest.mark.parametrize(("pattern", "selected"), SELECTIONS)
def test_local_selection(tmp_path: Path, pattern: str, selected: list[str]) -> None:
    write_corpus(tmp_path)
    found, problem = dataset_files(f"{tmp_path}/{pattern}")
    assert [shown for shown, _ in found] == [f"{tmp_path}/{name}" for name in selected]
    assert bool(problem) == (not selected)
    cli_found, cli_problem = files.select(f"{tmp_path}/{pattern}")
    assert [s.name for s in cli_found] == [shown for shown, _ in found]
    assert cli_problem == problem


@pytest.fixture(scope="module")
def corpus_bucket(storage_emulator: str) -> str:
    client = files.storage_client()
    bucket = client.create_bucket(f"rlhf-paths-{uuid.uuid4().hex[:10]}")
    for name, content in CORPUS.items():
        bucket.blob(name).upload_from_string(content)
    bucket.blob("c/sub/").upload_from_string(b"")  # a console-made "folder" object
    return str(bucket.name)


@pytest.mark.parametrize(("pattern", "selected"), SELECTIONS)
def test_gs_selection_in_the_cli_matches_the_component_on_gcs_mount(
    corpus_bucket: str, tmp_path: Path, pattern: str, selected: list[str]
) -> None:
    mount = tmp_path / "gcs"
    write_corpus(mount / corpus_bucket)
    path = f"gs://{corpus_bucket}/{pattern}"
    component, component_problem = dataset_files(path, mount=f"{mount}/")
    cli, cli_problem = files.select(path)
    expected = [f"gs://{corpus_bucket}/{name}" for name in selected]
    assert [shown for shown, _ in component] == expected
    assert [source.name for source in cli] == expected
    assert cli_problem == component_problem


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("gs://bucket/data/", "is a directory; give a glob such as gs://bucket/data/*.jsonl"),
        ("gs://bucket", "names a whole bucket; give a glob such as gs://bucket/dir/*.jsonl"),
        ("gs://bucket/a/../b.jsonl", "holds a . or .. segment"),
        ("gs://bucket/**/x.jsonl", "uses **, which GCPC's readers disagree on"),
        ("", "is empty"),
    ],
)
def test_paths_refused_before_listing(path: str, problem: str) -> None:
    found, said = dataset_files(path, mount="/nonexistent/")
    assert found == [] and said.startswith(problem)
    assert files.select(path) == ([], said)  # no client is needed to refuse it


def test_a_gs_path_without_the_mount_says_so(tmp_path: Path) -> None:
    _, problem = dataset_files("gs://bucket/x/*.jsonl", mount=f"{tmp_path}/nothing/")
    assert "Cloud Storage is not mounted at" in problem
