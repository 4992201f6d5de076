"""Convert ``{"prompt", "chosen", "rejected"}`` / ``{"prompt"}`` rows to the Vertex format.

The chosen answer's position comes from a seeded random stream, so ``choice`` is
balanced, carries no label, and the output is reproducible. An optional eval split
goes by a hash of the prompt, so no prompt lands on both sides. The input is never
modified; outputs appear complete or not at all (temporary file then rename locally;
a Cloud Storage upload is finalized only after the last row).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from vertex_rlhf.data import files
from vertex_rlhf.data.progress import ProgressSink
from vertex_rlhf.errors import ConfigError, DataError


def convert_row(row: Any, kind: str, rng: random.Random) -> tuple[dict[str, Any], str]:
    """Converts one row; returns ``(vertex_row, "")`` or ``({}, "field: problem")``."""
    if not isinstance(row, dict):
        return {}, "(row): must be a JSON object"
    fields = ("prompt", "chosen", "rejected") if kind == "preference" else ("prompt",)
    for name in fields:
        value = row.get(name)
        if not isinstance(value, str) or not value.strip():
            return {}, f"{name}: must be a non-empty string"
    if kind == "prompt":
        return {"input_text": row["prompt"]}, ""
    choice = rng.randrange(2)
    candidates = [row["rejected"], row["rejected"]]
    candidates[choice] = row["chosen"]
    return {
        "input_text": row["prompt"],
        "candidate_0": candidates[0],
        "candidate_1": candidates[1],
        "choice": choice,
    }, ""


def in_eval_split(prompt: str, fraction: float, seed: int) -> bool:
    """Deterministically puts a prompt in the eval split with probability ``fraction``."""
    digest = hashlib.sha256(f"{seed}\0{prompt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") < fraction * 2**64


@contextmanager
def atomic_output(path: str, force: bool) -> Iterator[IO[bytes]]:
    """Opens an output that only appears, complete, when the block ends without error.

    Raises:
        ConfigError: the output exists and ``force`` is not set.
    """
    if path.startswith("gs://"):
        bucket_name, key = files.split_gs(path)
        blob = files.storage_client().bucket(bucket_name).blob(key)
        if blob.exists() and not force:
            raise ConfigError([f"{path} exists; pass --force to replace it"])
        writer = blob.open("wb", chunk_size=files.CHUNK)
        yield writer
        writer.close()  # finalizes the upload; skipped on error, so nothing appears
        return
    target = Path(path)
    if target.exists() and not force:
        raise ConfigError([f"{path} exists; pass --force to replace it"])
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        with temporary.open("wb") as handle:
            yield handle
        temporary.replace(target)
    finally:
        with suppress(FileNotFoundError):
            temporary.unlink()


@dataclass
class ConversionStats:
    """What a conversion read and wrote."""

    read: int = 0
    written: dict[str, int] = field(default_factory=lambda: {"train": 0, "eval": 0})
    rejected: int = 0
    choices: dict[int, int] = field(default_factory=lambda: {0: 0, 1: 0})


def convert(
    source: str,
    output: str,
    kind: str,
    seed: int = 0,
    eval_output: str | None = None,
    eval_fraction: float = 0.0,
    force: bool = False,
    skip_invalid: bool = False,
    rejects: str | None = None,
    progress: ProgressSink | None = None,
) -> ConversionStats:
    """Converts every row of ``source`` (a local or gs:// path or glob) into ``output``.

    Args:
        source: input path or glob.
        output: where the (train) rows go.
        kind: preference or prompt.
        seed: seeds the candidate placement and the split.
        eval_output: where the eval split goes (with ``eval_fraction``).
        eval_fraction: share of prompts sent to ``eval_output``.
        force: replace existing outputs.
        skip_invalid: skip bad rows (counted, and written to ``rejects``) instead of stopping.
        rejects: where skipped rows go, with their line and reason.
        progress: told the input's size, then the bytes and rows read.

    Raises:
        ConfigError: bad arguments or an existing output. DataError: a bad row (unless
        skipped) or no input; nothing is written then.
    """
    if kind not in ("preference", "prompt"):
        raise ConfigError([f"--kind {kind!r}: use preference or prompt"])
    if not 0.0 <= eval_fraction < 1.0 or (eval_fraction > 0) != bool(eval_output):
        raise ConfigError(["--eval-fraction in [0, 1) and --eval-out go together"])
    inputs = files.sources(source)
    if not inputs:
        raise DataError(f"{source}: matches no files")
    outputs = [p for p in (output, eval_output, rejects) if p]
    if any(p == s.name for p in outputs for s in inputs) or len(set(outputs)) < len(outputs):
        raise ConfigError(["outputs must differ from each other and from the input"])
    rng = random.Random(seed)
    stats = ConversionStats()
    if progress is not None:
        progress.start(source, sum(item.size or 0 for item in inputs))
    with (
        atomic_output(output, force) as train,
        _optional_output(eval_output, force) as evals,
        _optional_output(rejects if skip_invalid else None, force) as rejected,
    ):
        for item in inputs:
            with files.lines_of(item, progress) as lines:
                for number, line in enumerate(lines, 1):
                    if not line.strip():
                        continue
                    stats.read += 1
                    try:
                        row = orjson.loads(line)
                    except ValueError:
                        row = None
                    converted, problem = convert_row(row, kind, rng)
                    if problem:
                        where = f"{item.name}:{number}"
                        if not skip_invalid:
                            raise DataError(
                                f"{where}: {problem}", hint="fix the row, or pass --skip-invalid"
                            )
                        stats.rejected += 1
                        if rejected is not None:
                            reason = {
                                "source": where,
                                "problem": problem,
                                "line": line.decode("utf-8", "replace").rstrip("\r\n"),
                            }
                            rejected.write(json.dumps(reason).encode() + b"\n")
                        continue
                    split = (
                        "eval"
                        if evals is not None
                        and in_eval_split(converted["input_text"], eval_fraction, seed)
                        else "train"
                    )
                    target = evals if split == "eval" and evals is not None else train
                    target.write(orjson.dumps(converted) + b"\n")
                    stats.written[split] += 1
                    if "choice" in converted:
                        stats.choices[converted["choice"]] += 1
    return stats


@contextmanager
def _optional_output(path: str | None, force: bool) -> Iterator[IO[bytes] | None]:
    if path is None:
        yield None
        return
    with atomic_output(path, force) as handle:
        yield handle
