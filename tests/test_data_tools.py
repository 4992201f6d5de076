"""validate-data and convert-data, on local files and on gs:// through the storage emulator."""

from __future__ import annotations

import gc
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SAMPLES, write_jsonl
from vertex_rlhf import cli
from vertex_rlhf.data import files as dataset_io
from vertex_rlhf.data.convert import convert
from vertex_rlhf.data.report import check_dataset
from vertex_rlhf.data.rules import validate_dataset_files
from vertex_rlhf.errors import ConfigError, DataError


def pref(prompt: str, a: str = "a good answer", b: str = "a bad answer", choice: int = 0) -> str:
    return json.dumps({"input_text": prompt, "candidate_0": a, "candidate_1": b, "choice": choice})


def test_validate_data_for_the_local_environment(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["validate-data", "local"]) == 0
    out = capsys.readouterr().out
    assert "preference dataset" in out and "160 rows in 1 file(s), layout text: valid" in out
    assert "choice balance: 0: 82, 1: 78" in out
    assert "eval prompts also in the training data: 0" in out
    assert (
        "Optimal training steps: TrainingSteps(reward_model_steps=90,"
        " reinforcement_learning_steps=20)"
    ) in out
    assert "an estimate, the model tokenizers are not available offline" in out


def test_profile_counts(tmp_path: Path) -> None:
    long_prompt = "x" * 5000  # ~1250 tokens at 4 characters per token: over 512
    path = write_jsonl(
        tmp_path / "p.jsonl",
        [
            pref("same"),
            pref("same"),
            pref("same", choice=1),
            pref("other", "twin", "twin"),
            pref(long_prompt, a="y" * 400),
        ],
    )
    check = check_dataset(str(path), "preference")
    summary = check.profile
    assert summary is not None and check.errors == 0
    assert summary["duplicate_prompts"] == 2
    assert summary["duplicate_pairs"] == 2
    assert summary["choice_balance"] == {"0": 4, "1": 1}
    assert summary["identical_candidates"] == 1
    assert summary["prompts_likely_truncated"] == {"rows": 1, "share": 0.2}
    assert summary["candidates_likely_truncated"]["rows"] == 1  # 400 chars > 64 tokens
    assert summary["prompt_length"]["max_chars"] == 5000


def test_eval_overlap_and_json_output(
    tmp_path: Path, params_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_jsonl(tmp_path / "pref.jsonl", [pref(f"p{i}") for i in range(10)])
    write_jsonl(tmp_path / "prompts.jsonl", [json.dumps({"input_text": f"q{i}"}) for i in range(5)])
    write_jsonl(tmp_path / "eval.jsonl", [pref("p1"), pref("q2"), pref("new")])
    args = [
        "validate-data",
        "local",
        "--params-dir",
        str(params_dir),
        "--json",
        f"dataset.preference_dataset={tmp_path / 'pref.jsonl'}",
        f"dataset.prompt_dataset={tmp_path / 'prompts.jsonl'}",
        f"dataset.eval_dataset={tmp_path / 'eval.jsonl'}",
    ]
    assert cli.main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["valid"] is True
    assert result["eval_overlap"] == 2
    assert result["datasets"]["preference"]["report"]["rows"] == 10
    assert result["steps"]["reward_model_steps"] == 30


def test_invalid_data_exits_15_after_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", [pref("ok"), '{"input_text": "x", "choice": 2}'])
    assert cli.main(["validate-data", "--path", str(path), "--kind", "preference"]) == 15
    captured = capsys.readouterr()
    assert f"{path}:2: candidate_0: missing" in captured.out
    assert captured.err.startswith("error[DATA_005]")


def test_a_very_long_line(tmp_path: Path) -> None:
    huge = "w" * (30 * 1024 * 1024)
    path = write_jsonl(tmp_path / "long.jsonl", [pref(huge), '{"input_text": "' + huge])
    report = validate_dataset_files(str(path), "preference")
    assert report["rows"] == 2 and report["errors"] == 1
    assert report["problems"][0].startswith(f"{path}:2: invalid JSON")
    assert len(report["problems"][0]) < len(str(path)) + 200  # no 30 MB echo


@pytest.fixture
def bucket(storage_emulator: str) -> Any:
    client = dataset_io.storage_client()
    return client.create_bucket(f"rlhf-data-{uuid.uuid4().hex[:10]}")


def upload(bucket: Any, name: str, data: bytes) -> str:
    bucket.blob(name).upload_from_string(data)
    return f"gs://{bucket.name}/{name}"


def test_gs_glob_over_shards(bucket: Any) -> None:
    lines = (SAMPLES / "preference.jsonl").read_bytes().splitlines(keepends=True)
    for shard in range(4):
        upload(bucket, f"pref/part-{shard}.jsonl", b"".join(lines[shard * 40 : (shard + 1) * 40]))
    upload(bucket, "pref/README.txt", b"not data")
    check = check_dataset(f"gs://{bucket.name}/pref/*.jsonl", "preference")
    assert check.errors == 0, check.problems
    assert check.rows == 160 and check.profile is not None and check.profile["rows"] == 160
    assert [name for name, _ in check.files] == [
        f"gs://{bucket.name}/pref/part-{i}.jsonl" for i in range(4)
    ]


def test_gs_bad_row_names_the_object_and_line(bucket: Any) -> None:
    path = upload(bucket, "p.jsonl", (pref("a") + "\n" + '{"input_text": ""}\n').encode())
    check = check_dataset(path, "prompt")
    assert check.problems == (f"{path}:2: input_text: must not be empty or only whitespace",)


def test_gs_missing_bucket_and_object(
    storage_emulator: str, bucket: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = f"gs://no-such-bucket-{uuid.uuid4().hex[:8]}/x.jsonl"
    assert cli.main(["validate-data", "--path", missing, "--kind", "prompt"]) == 15
    assert "does not exist or is not readable" in capsys.readouterr().err
    check = check_dataset(f"gs://{bucket.name}/nothing-*.jsonl", "prompt")
    assert "matches no files" in check.problems[0]


def seed_rows(n: int) -> list[str]:
    return [
        json.dumps({"prompt": f"prompt {i}", "chosen": f"good {i}", "rejected": f"bad {i}"})
        for i in range(n)
    ]


def test_convert_round_trip_is_complete_balanced_and_reproducible(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", seed_rows(1000))
    before = source.read_bytes()
    stats = convert(str(source), str(tmp_path / "a.jsonl"), "preference", seed=7)
    convert(str(source), str(tmp_path / "b.jsonl"), "preference", seed=7)
    convert(str(source), str(tmp_path / "c.jsonl"), "preference", seed=8)
    assert source.read_bytes() == before  # never modified
    out = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert len(out) == stats.written["train"] == 1000
    for i, row in enumerate(out):
        assert row["input_text"] == f"prompt {i}"
        assert row[f"candidate_{row['choice']}"] == f"good {i}"
        assert row[f"candidate_{1 - row['choice']}"] == f"bad {i}"
    assert 450 <= stats.choices[0] <= 550
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert (tmp_path / "a.jsonl").read_bytes() != (tmp_path / "c.jsonl").read_bytes()
    assert validate_dataset_files(str(tmp_path / "a.jsonl"), "preference")["errors"] == 0


def test_convert_split_keeps_each_prompt_on_one_side(tmp_path: Path) -> None:
    rows = seed_rows(500) + seed_rows(500)  # every prompt twice
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    stats = convert(
        str(source),
        str(tmp_path / "train.jsonl"),
        "preference",
        seed=1,
        eval_output=str(tmp_path / "eval.jsonl"),
        eval_fraction=0.2,
    )
    train = {json.loads(x)["input_text"] for x in (tmp_path / "train.jsonl").open()}
    evals = {json.loads(x)["input_text"] for x in (tmp_path / "eval.jsonl").open()}
    assert train.isdisjoint(evals) and len(train | evals) == 500
    assert 140 <= stats.written["eval"] <= 260 and stats.written["eval"] % 2 == 0


def test_prompt_conversion(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [json.dumps({"prompt": "hi"})])
    convert(str(source), str(tmp_path / "out.jsonl"), "prompt")
    assert (tmp_path / "out.jsonl").read_text() == '{"input_text":"hi"}\n'


def test_a_bad_row_leaves_no_output(tmp_path: Path) -> None:
    rows = seed_rows(100)
    rows[60] = json.dumps({"prompt": "x", "chosen": "", "rejected": "y"})
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    with pytest.raises(DataError, match=r"in\.jsonl:61: chosen: must be a non-empty string"):
        convert(str(source), str(tmp_path / "out.jsonl"), "preference")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_skip_invalid_writes_rejects(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [*seed_rows(3), "{broken", json.dumps({"prompt": "p", "chosen": 1, "rejected": "r"})]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    assert (
        cli.main(["convert-data", str(source), str(out), "--kind", "preference", "--skip-invalid"])
        == 0
    )
    assert len(out.read_text().splitlines()) == 3
    rejects = [json.loads(x) for x in Path(f"{out}.rejects.jsonl").read_text().splitlines()]
    assert [r["source"].rsplit(":", 1)[1] for r in rejects] == ["4", "5"]
    assert rejects[1]["problem"] == "chosen: must be a non-empty string"
    assert "skipped 2 invalid rows" in capsys.readouterr().err


def test_existing_output_is_refused_unless_forced(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", seed_rows(2))
    out = tmp_path / "out.jsonl"
    out.write_text("keep me\n")
    with pytest.raises(ConfigError, match="exists; pass --force"):
        convert(str(source), str(out), "preference")
    assert out.read_text() == "keep me\n"
    convert(str(source), str(out), "preference", force=True)
    assert len(out.read_text().splitlines()) == 2
    with pytest.raises(ConfigError, match="same file as the input"):
        convert(str(source), str(source), "preference", force=True)


def test_convert_gs_to_gs_and_an_interrupted_upload(bucket: Any) -> None:
    source = upload(bucket, "raw/in.jsonl", "\n".join(seed_rows(50)).encode() + b"\n")
    target = f"gs://{bucket.name}/vertex/out.jsonl"
    convert(source, target, "preference", seed=3)
    check = check_dataset(target, "preference")
    assert check.errors == 0 and check.rows == 50
    bad = upload(
        bucket, "raw/bad.jsonl", ("\n".join(seed_rows(40)) + '\n{"prompt": "x"}\n').encode()
    )
    with pytest.raises(DataError):
        convert(bad, f"gs://{bucket.name}/vertex/never.jsonl", "preference")
    gc.collect()  # an abandoned upload would be finalised here
    assert [b.name for b in bucket.list_blobs(prefix="vertex/")] == ["vertex/out.jsonl"]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
def test_block_lines_splits_across_block_boundaries(size: int) -> None:
    import io

    data = b'{"a": 1}\r\n\n{"b": "long line"}\nlast without newline'
    lines = list(dataset_io.block_lines(io.BytesIO(data), size))
    assert lines == [b'{"a": 1}\r', b"", b'{"b": "long line"}', b"last without newline"]
    assert list(dataset_io.block_lines(io.BytesIO(b""), size)) == []


def test_seen_filter_never_misses_and_rarely_mistakes() -> None:
    from vertex_rlhf.data.profile import SeenFilter

    seen = SeenFilter()
    keys = [hash(f"prompt {i}") & ((1 << 64) - 1) for i in range(200_000)]
    assert not any(seen.add(k) for k in keys[:100_000])
    assert all(seen.add(k) for k in keys[:100_000])  # every repeat is found
    false = sum(seen.add(k) for k in keys[100_000:])
    assert false <= 10  # ~0 expected at this load
    assert seen.size_in_bytes <= 12 * 1024 * 1024
