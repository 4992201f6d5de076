"""Which files a dataset path or glob selects: one definition for the CLI and the component.

GCPC reads a dataset path with Python's ``glob`` on the ``/gcs/`` mount
(``validate_pipeline``), with Apache Beam (chat preprocessing) and with its text
importers. Where they agree, so do we; where they differ, we refuse rather than guess:

- ``*``, ``?`` and ``[...]`` match within one path segment: they never cross ``/``
  (``glob``, Beam's ``*``, ``tf.io.gfile``);
- dot-files match like any other name (Beam and the importers read them; only ``glob``
  skips them), so the validator sees every file training may read;
- ``**`` is refused: ``glob`` reads it as ``*``, Beam as "any depth";
- an existing file whose name holds glob characters (``data[1].jsonl``) is that file;
- a directory, or a path ending in ``/``, selects nothing: give a glob such as ``dir/*.jsonl``.

These functions are shipped into the ``validate_dataset`` component by source (see
``rules.py``): standard-library imports inside the body, Python 3.8 grammar.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing takes 2 ms to import; here it serves annotations only
if TYPE_CHECKING:
    from typing import Iterable, List, Tuple


def glob_magic_index(pattern: str) -> int:
    """The index of the first glob character (``*``, ``?``, ``[``) in ``pattern``, or -1."""
    found = [i for i in (pattern.find("*"), pattern.find("?"), pattern.find("[")) if i >= 0]
    return min(found) if found else -1


def glob_segment_regex(segment: str) -> str:
    """One glob segment as a regular expression (no anchors) that never matches ``/``.

    ``*`` is ``[^/]*``, ``?`` is ``[^/]``, ``[seq]``/``[!seq]`` are classes; an
    unclosed ``[`` is literal (as in ``fnmatch``).
    """
    import re

    out = []
    i, n = 0, len(segment)
    while i < n:
        c = segment[i]
        i += 1
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = i
            if j < n and segment[j] == "!":
                j += 1
            if j < n and segment[j] == "]":
                j += 1
            while j < n and segment[j] != "]":
                j += 1
            if j >= n:
                out.append("\\[")
                continue
            body = segment[i:j].replace("\\", "\\\\")
            i = j + 1
            if body.startswith("!"):
                out.append("[^/" + body[1:] + "]")
            else:
                out.append("(?!/)[" + ("\\" + body if body.startswith("^") else body) + "]")
        else:
            out.append(re.escape(c))
    return "".join(out)


def match_glob(pattern: str, names: Iterable[str]) -> List[str]:
    """The names (a listing) that ``pattern`` selects, sorted; ``[pattern]`` if it is one."""
    import re

    names = list(names)
    if pattern in names:
        return [pattern]
    if glob_magic_index(pattern) < 0:
        return []
    regex = "/".join(glob_segment_regex(part) for part in pattern.split("/"))
    compiled = re.compile(regex + "\\Z", re.DOTALL)
    return sorted(name for name in names if compiled.match(name))


def list_local_candidates(pattern: str) -> List[str]:
    """Files that may match a local pattern, listed level by level below its literal part."""
    import os
    import re

    found = [pattern] if os.path.isfile(pattern) else []
    magic = glob_magic_index(pattern)
    if magic < 0:
        return found
    cut = pattern.rfind("/", 0, magic) + 1
    segments = pattern[cut:].split("/")
    level = [pattern[:cut]]
    for depth, segment in enumerate(segments):
        compiled = re.compile(glob_segment_regex(segment) + "\\Z", re.DOTALL)
        last = depth == len(segments) - 1
        deeper = []
        for prefix in level:
            try:
                entries = sorted(os.scandir(prefix or "."), key=lambda entry: entry.name)
            except OSError:
                continue
            for entry in entries:
                if not compiled.match(entry.name):
                    continue
                if last:
                    if entry.is_file():
                        found.append(prefix + entry.name)
                elif entry.is_dir():
                    deeper.append(prefix + entry.name + "/")
        level = deeper
    return found


def dataset_path_problem(path: str) -> str:
    """What is wrong with a dataset path before anything is listed (``""``: nothing)."""
    if not path.strip():
        return "is empty; give a file or a glob such as gs://bucket/dir/*.jsonl"
    if "**" in path:
        return (
            "uses **, which GCPC's readers disagree on (glob reads it as *, Beam as any"
            " depth); use one * per directory level, e.g. dir/*/*.jsonl"
        )
    if path.endswith("/"):
        return f"is a directory; give a glob such as {path}*.jsonl"
    if path.startswith("gs://"):
        bucket, _, key = path[len("gs://") :].partition("/")
        if not bucket or not key:
            bucket = bucket or "BUCKET"
            return f"names a whole bucket; give a glob such as gs://{bucket}/dir/*.jsonl"
        if any(part in (".", "..") for part in key.split("/")):
            return "holds a . or .. segment; give the object path as it is in the bucket"
    return ""


def dataset_files(path: str, mount: str = "/gcs/") -> Tuple[List[Tuple[str, str]], str]:
    """``([(shown name, readable path), ...], "")`` for the files ``path`` selects (sorted),
    or ``([], problem)``; ``gs://`` is read through ``mount`` (``/gcs/`` on Vertex).
    """
    import os

    problem = dataset_path_problem(path)
    if problem:
        return [], problem
    gcs = path.startswith("gs://")
    local = mount + path[len("gs://") :] if gcs else os.path.expanduser(path)
    names = match_glob(local, list_local_candidates(local))
    if names:
        return [("gs://" + n[len(mount) :] if gcs else n, n) for n in names], ""
    if os.path.isdir(local):
        return [], f"is a directory; give a glob such as {path}/*.jsonl"
    if gcs and not os.path.isdir(mount):
        return [], f"matches no files: Cloud Storage is not mounted at {mount} in this task"
    return [], "matches no files; check the path and the glob pattern"


# Shipped into the validate_dataset component (with rules.SHIPPED), callees first.
SHIPPED = (
    glob_magic_index,
    glob_segment_regex,
    match_glob,
    list_local_candidates,
    dataset_path_problem,
    dataset_files,
)
