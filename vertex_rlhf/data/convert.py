"""Convert ``{"prompt", "chosen", "rejected"}`` / ``{"prompt"}`` rows to the Vertex format.

The chosen answer's position comes from a seeded random stream, so ``choice`` is
balanced, carries no label, and the output is reproducible. An optional eval split
goes by a hash of the prompt, so no prompt lands on both sides. The input is never
modified (an output that is an input under any spelling is refused); the outputs
appear complete, together, or not at all (see ``outputs.staged``).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

import orjson

from vertex_rlhf.data import files, outputs
from vertex_rlhf.data.jsonl import check_raw_row, explain_json_error, file_format_problem
from vertex_rlhf.data.progress import ProgressSink
from vertex_rlhf.errors import ConfigError, DataError


def convert_row(row: Any, kind: str, rng: random.Random) -> tuple[dict[str, Any], str]:
    """Converts one row; returns ``(vertex_row, "")`` or ``({}, "field: problem")``."""
    if not isinstance(row, dict):
        return {}, "(row): must be a JSON object"
    fields = ("prompt", "chosen", "rejected") if kind == "preference" else ("prompt",)
    for name in fields:
        value = row.get(name)
        if not isinstance(value, str) or not value or value.isspace():  # isspace: no copy
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


def parse_row(line: bytes, number: int) -> tuple[Any, str]:
    """Parses one input line by the validator's rules; returns ``(row, "")`` or
    ``(None, problem)``, the problem worded as ``rlhf validate-data`` words it."""
    try:
        row = orjson.loads(line)
    except ValueError:
        if number == 1 and line.startswith(b"\xef\xbb\xbf"):
            return None, "file starts with a UTF-8 byte-order mark; save it as UTF-8 without BOM"
        return None, explain_json_error(line)
    field, problem = check_raw_row(line, row)  # a duplicate key is ambiguous, too deep
    return (None, f"{field}: {problem}") if field else (row, "")


def in_eval_split(prompt: str, fraction: float, seed: int) -> bool:
    """Deterministically puts a prompt in the eval split with probability ``fraction``."""
    import hashlib  # 6 ms to import (OpenSSL): only for a split

    digest = hashlib.sha256(f"{seed}\0{prompt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") < fraction * 2**64


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
        skipped), no input, an input read short, a full disk or a failed upload, or
        another run writing the same outputs; nothing is written then.
    """
    if kind not in ("preference", "prompt"):
        raise ConfigError([f"--kind {kind!r}: use preference or prompt"])
    if not 0.0 <= eval_fraction < 1.0 or (eval_fraction > 0) != bool(eval_output):
        raise ConfigError(["--eval-fraction in [0, 1) and --eval-out go together"])
    inputs = files.sources(source)
    if not inputs:
        raise DataError(f"{source}: matches no files")
    rejects = rejects if skip_invalid else None
    _check_distinct([p for p in (output, eval_output, rejects) if p], [s.name for s in inputs])
    rng = random.Random(seed)
    stats = ConversionStats()
    if progress is not None:
        progress.start(source, sum(item.size or 0 for item in inputs))
    with outputs.staged([p for p in (output, eval_output, rejects) if p], force) as handles:
        train = handles[0]
        evals = handles[1] if eval_output else None
        rejected = handles[-1] if rejects else None
        for item in inputs:
            with files.lines_of(item, progress) as lines:
                for number, line in enumerate(lines, 1):
                    problem = file_format_problem(line) if number == 1 else ""
                    if problem:  # gzip, UTF-16: stop
                        raise DataError(
                            f"{item.name}: {problem}",
                            hint="convert a plain UTF-8 JSONL file",
                        )
                    if not line or line.isspace():  # blank (no copy of the line)
                        continue
                    stats.read += 1
                    row, problem = parse_row(line, number)
                    if not problem:
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
                            try:
                                rejected.write(json.dumps(reason).encode() + b"\n")
                            except Exception as error:
                                raise outputs.write_error(str(rejects), error) from None
                        continue
                    split = (
                        "eval"
                        if evals is not None
                        and in_eval_split(converted["input_text"], eval_fraction, seed)
                        else "train"
                    )
                    target = evals if split == "eval" and evals is not None else train
                    try:
                        target.write(orjson.dumps(converted, option=orjson.OPT_APPEND_NEWLINE))
                    except Exception as error:  # a full disk, a failed upload: name the output
                        where = str(eval_output) if target is evals else output
                        raise outputs.write_error(where, error) from None
                    stats.written[split] += 1
                    if "choice" in converted:
                        stats.choices[converted["choice"]] += 1
    return stats


def _check_distinct(paths: list[str], inputs: list[str]) -> None:
    """Refuses an output that is an input, or another output, under any spelling.

    Raises:
        ConfigError: two names of one file (``..``, symlinks, hard links, ``/gcs/``).
    """
    seen: dict[tuple[str, ...], str] = {}
    for path in paths:
        key = outputs.identity(path)
        clash = next((name for name in inputs if outputs.identity(name) == key), None)
        if clash is not None:
            raise ConfigError(
                [f"{path} is the same file as the input {clash}; write the output elsewhere"]
            )
        if key in seen:
            raise ConfigError(
                [f"{path} and {seen[key]} are the same file; give each output its own path"]
            )
        seen[key] = path
