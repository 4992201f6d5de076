"""The row contract of the Vertex RLHF dataset formats, and the single-pass reader.

This module, ``jsonl.py`` and ``matching.py`` are the code the template ships: the
``validate_dataset`` component carries their ``SHIPPED`` functions by source (kfp
``additional_funcs``), and the CLI imports the same functions. An edit to any of them
is a new template version, so they stay small and stable: standard-library imports
inside the bodies, ``typing`` names in signatures, Python 3.8 grammar, calls only to
functions shipped with them, one-paragraph docstrings (the why lives here).

Formats (see NOTES.md): a preference row has ``candidate_0``, ``candidate_1``
(non-empty strings), ``choice`` (integer 0 or 1) and either ``input_text`` (text
models) or ``messages`` (chat models); a prompt row has ``input_text`` or
``messages``. An eval row is either a preference row (reward-model metrics) or a
prompt row (bulk inference only); one dataset keeps to one layout, and a dataset's
files are merged in name order (``merge_reports``).

A report is a dict (it crosses into the component, whose outputs are plain data):
``dataset``, ``kind``, ``files`` ([name, rows] pairs), ``rows``, ``blank_lines``,
``layout``, ``errors`` (count), ``problems`` (the first ``max_reported``, word for
word), ``max_reported``.

The CLI reads large local datasets on every core with the same reader
(``parallel.py``, never shipped).
"""

from __future__ import annotations

from vertex_rlhf.data.jsonl import (
    check_raw_row,
    explain_json_error,
    file_format_problem,
    strict_json_parser,
)
from vertex_rlhf.data.matching import dataset_files

TYPE_CHECKING = False  # typing takes 2 ms to import; here it serves annotations only
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

KINDS = ("preference", "prompt", "eval")


def json_type_name(value: Any) -> str:
    """Names a parsed JSON value's type with a short excerpt: ``'string "1"'``, ``'null'``."""
    import json

    if value is None:
        return "null"
    names = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"))
    for python_type, name in names:
        if isinstance(value, python_type):
            text = json.dumps(value, ensure_ascii=False)
            return f"{name} {text[:40]}{'...' if len(text) > 40 else ''}"
    return "array" if isinstance(value, list) else "object"


def check_messages(messages: Any) -> Tuple[str, str]:
    """Checks a chat ``messages`` value: ``("", "")`` or ``(field, problem)``."""
    if not isinstance(messages, list) or not messages:
        what = "an empty array" if messages == [] else json_type_name(messages)
        return "messages", f"must be a non-empty array of {{author, content}} objects, got {what}"
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            return f"messages[{i}]", f"must be an object, got {json_type_name(message)}"
        author = message.get("author")
        if author not in ("user", "assistant"):
            got = "nothing" if "author" not in message else json_type_name(author)
            return f"messages[{i}].author", f'must be "user" or "assistant", got {got}'
        content = message.get("content")
        if not isinstance(content, str) or not content.strip():
            got = "nothing" if "content" not in message else json_type_name(content)
            return f"messages[{i}].content", f"must be a non-empty string, got {got}"
    if messages[0]["author"] != "user":
        return "messages[0].author", 'the first message must be from "user"'
    if messages[-1]["author"] != "user":
        return f"messages[{len(messages) - 1}].author", 'the last message must be from "user"'
    return "", ""


def check_text_field(row: Dict[str, Any], name: str) -> str:
    """Checks that ``row[name]`` is a non-empty string: ``""`` or the problem."""
    if name not in row:
        return "missing"
    value = row[name]
    if not isinstance(value, str):
        return f"must be a string, got {json_type_name(value)}"
    if not value or value.isspace():  # as ``not value.strip()``, without a copy
        return "must not be empty or only whitespace"
    return ""


def check_row(row: Any, kind: str) -> Tuple[str, str, str]:
    """Checks one parsed row against the format of ``kind`` (preference, prompt, eval).

    Returns:
        ``(layout, "", "")`` when valid (``text`` or ``chat``; eval rows prefixed
        ``preference `` or ``prompt ``), else ``("", field, problem)``.
    """
    if not isinstance(row, dict):
        return "", "(row)", f"must be a JSON object, got {json_type_name(row)}"
    if "input_text" in row and "messages" in row:
        return "", "input_text", "a row has input_text (text models) or messages (chat), not both"
    if "input_text" in row:
        problem = check_text_field(row, "input_text")
        if problem:
            return "", "input_text", problem
        layout = "text"
    elif "messages" in row:
        field, problem = check_messages(row["messages"])
        if field:
            return "", field, problem
        context = row.get("context")
        if context is not None and not isinstance(context, str):
            return "", "context", f"must be a string, got {json_type_name(context)}"
        layout = "chat"
    elif "prompt" in row or "chosen" in row or "rejected" in row:
        convert_kind = "preference" if "chosen" in row or "rejected" in row else "prompt"
        return (
            "",
            "(row)",
            "is in the prompt/chosen/rejected form, not Vertex's; convert the file with"
            f" `make convert-data IN=... OUT=... KIND={convert_kind}`",
        )
    else:
        return "", "input_text", "missing: text rows need input_text, chat rows need messages"
    if kind == "prompt":
        return layout, "", ""
    preference_fields = ("candidate_0", "candidate_1", "choice")
    is_preference = kind == "preference" or any(name in row for name in preference_fields)
    if is_preference:
        for name in ("candidate_0", "candidate_1"):
            problem = check_text_field(row, name)
            if problem:
                return "", name, problem
        if "choice" not in row:
            return "", "choice", "missing"
        choice = row["choice"]
        if type(choice) is not int or choice not in (0, 1):
            return "", "choice", f"must be the integer 0 or 1, got {json_type_name(choice)}"
    if kind == "eval":
        return ("preference " if is_preference else "prompt ") + layout, "", ""
    return layout, "", ""


def check_model_layout(report: Dict[str, Any], model: str, layout: str) -> None:
    """Adds a problem when the rows' layout is not the model's (``layout``; ``""`` skips)."""
    got = report["layout"].split(" ")[-1]
    if not layout or not got or got == layout:
        return
    fields = {"text": "input_text", "chat": "messages"}
    add_problem(
        report,
        report["dataset"],
        f"rows are {got} ({fields.get(got, got)}) but {model} is a {layout} model, which"
        f" reads {fields.get(layout, layout)} rows; give {layout} rows or a {got} model",
    )


def printable(text: str, encoding: Optional[str]) -> str:
    """Escapes what a stream of ``encoding`` (None: UTF-8) cannot encode, e.g. a lone surrogate."""
    import codecs

    try:
        encoding = codecs.lookup(encoding or "utf-8").name
    except LookupError:
        encoding = "ascii"
    try:
        text.encode(encoding)
        return text
    except UnicodeEncodeError:
        return text.encode(encoding, "backslashreplace").decode(encoding)


def new_dataset_report(dataset: str, kind: str, max_reported: int = 5) -> Dict[str, Any]:
    """An empty report (see the module's docstring); ValueError for an unknown kind."""
    if kind not in ("preference", "prompt", "eval"):
        raise ValueError(f"unknown dataset kind {kind!r}: use preference, prompt or eval")
    return {
        "dataset": dataset,
        "kind": kind,
        "files": [],
        "rows": 0,
        "blank_lines": 0,
        "layout": "",
        "errors": 0,
        "problems": [],
        "max_reported": max_reported,
    }


def add_problem(report: Dict[str, Any], where: str, problem: str) -> None:
    """Counts a problem, keeping ``where: problem`` while fewer than ``max_reported`` are kept."""
    report["errors"] += 1
    if len(report["problems"]) < report["max_reported"]:
        report["problems"].append(f"{where}: {problem}")


def check_rows(
    report: Dict[str, Any],
    source: str,
    lines: Iterable[bytes],
    first_line: int = 1,
    observe: Optional[Callable[[Dict[str, Any]], None]] = None,
) -> int:
    """Checks lines as rows, numbered from ``first_line``, into ``report``; returns the rows.

    Every line that is not blank is a row. ``observe`` (a profile) sees every row that
    parsed and passed ``check_raw_row``. Parses with orjson where it is installed and
    by the same rules without it (``strict_json_parser``).
    """
    try:
        from orjson import loads
    except ImportError:
        loads = strict_json_parser()  # type: ignore[assignment]

    kind = report["kind"]
    layout = report["layout"]
    rows = blank = 0
    number = first_line - 1
    for line in lines:
        number += 1
        try:
            row = loads(line)
        except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, rules
            if not line.strip():
                blank += 1
                continue
            rows += 1
            add_problem(report, f"{source}:{number}", explain_json_error(line))
            continue
        rows += 1
        field, problem = check_raw_row(line, row)
        if field:
            add_problem(report, f"{source}:{number}: {field}", problem)
            continue
        if observe is not None and type(row) is dict:
            observe(row)
        row_layout, field, problem = check_row(row, kind)
        if field:
            add_problem(report, f"{source}:{number}: {field}", problem)
        elif row_layout != layout:
            if not layout:
                layout = row_layout
            else:
                add_problem(
                    report,
                    f"{source}:{number}",
                    f"row is {row_layout} but earlier rows are {layout}; keep one layout"
                    " per dataset",
                )
    report["layout"] = layout
    report["blank_lines"] += blank
    return rows


def skip_bom(report: Dict[str, Any], source: str, first: bytes) -> bytes:
    """Reports and removes a UTF-8 byte-order mark at the start of a file's first line."""
    if not first.startswith(b"\xef\xbb\xbf"):
        return first
    add_problem(
        report,
        f"{source}:1",
        "file starts with a UTF-8 byte-order mark; save it as UTF-8 without BOM",
    )
    return first[3:]


def check_lines(
    report: Dict[str, Any],
    source: str,
    lines: Iterable[bytes],
    observe: Optional[Callable[[Dict[str, Any]], None]] = None,
) -> None:
    """Checks one JSONL file's raw lines (streamed) into ``report``: format, then rows."""
    import itertools

    lines = iter(lines)
    first = next(lines, None)
    if first is None:
        report["files"].append([source, 0])
        add_problem(report, source, "file is empty (no rows)")
        return
    problem = file_format_problem(first)
    if problem:
        report["files"].append([source, 0])
        add_problem(report, source, problem)
        return
    first = skip_bom(report, source, first)
    rows = check_rows(report, source, itertools.chain((first,), lines), 1, observe)
    report["rows"] += rows
    report["files"].append([source, rows])
    if rows == 0:
        add_problem(report, source, "file is empty (no rows)")


def check_whole_file(
    template: Dict[str, Any],
    source: str,
    name: str,
    observe: Optional[Callable[[Dict[str, Any]], None]] = None,
) -> Dict[str, Any]:
    """Checks the file at ``name``, shown as ``source``, into a report like ``template``."""
    part = new_dataset_report(template["dataset"], template["kind"], template["max_reported"])
    with open(name, "rb", buffering=1 << 20) as handle:  # the default 8 KiB costs 20%
        check_lines(part, source, handle, observe)
    return part


def merge_reports(
    dataset: str, kind: str, parts: List[Dict[str, Any]], max_reported: int = 5
) -> Dict[str, Any]:
    """Merges per-file reports, in order, into the report of reading them one after another."""
    merged = new_dataset_report(dataset, kind, parts[0]["max_reported"] if parts else max_reported)
    for part in parts:
        for key in ("rows", "blank_lines"):
            merged[key] += part[key]
        merged["files"] += part["files"]
        for problem in part["problems"]:
            if len(merged["problems"]) < merged["max_reported"]:
                merged["problems"].append(problem)
        merged["errors"] += part["errors"]
        if part["layout"] and not merged["layout"]:
            merged["layout"] = part["layout"]
        elif part["layout"] and part["layout"] != merged["layout"]:
            source = part["files"][0][0] if part["files"] else "?"
            add_problem(
                merged,
                source,
                f"rows are {part['layout']} but earlier files are {merged['layout']}; keep one"
                " layout per dataset",
            )
    return merged


def validate_dataset_files(
    path: str,
    kind: str,
    max_reported: int = 5,
    model: str = "",
    model_layout: str = "",
    mount: str = "/gcs/",
) -> Dict[str, Any]:
    """Validates every row of every file ``path`` selects, in one pass; returns the report.

    Args:
        path: a file path or glob, local or ``gs://`` (read through ``mount``).
        kind: ``"preference"``, ``"prompt"`` or ``"eval"``.
        max_reported: how many problems to keep word for word.
        model: the ``large_model_reference``, for the layout check.
        model_layout: its layout (``"text"`` or ``"chat"``); ``""`` skips the check.
        mount: where Cloud Storage is mounted (``/gcs/`` on Vertex).
    """
    files, problem = dataset_files(path, mount)
    template = new_dataset_report(path, kind, max_reported)
    parts = [check_whole_file(template, source, name) for source, name in files]
    report = merge_reports(path, kind, parts, max_reported)
    if problem:
        add_problem(report, path, problem)
    check_model_layout(report, model, model_layout)
    return report


def report_summary(report: Dict[str, Any], max_files: int = 20) -> str:
    """The verdict (with the first problems when invalid), then up to ``max_files`` files."""
    kind, dataset = report["kind"], report["dataset"]
    files = len(report["files"])
    head = f"{kind} dataset {dataset}: {report['rows']} rows in {files} file(s)"
    if not report["errors"]:
        lines = [f"{head}, layout {report['layout']}: valid"]
    else:
        lines = [f"{head}: {report['errors']} problem(s)"]
        lines += [f"  {problem}" for problem in report["problems"]]
        hidden = report["errors"] - len(report["problems"])
        if hidden:
            lines.append(f"  ... and {hidden} more")
    lines += [f"  file {name}: {rows} rows" for name, rows in report["files"][:max_files]]
    if files > max_files:
        lines.append(f"  ... and {files - max_files} more files")
    return "\n".join(lines)


# Shipped into the validate_dataset component (after matching's and jsonl's), callees first.
SHIPPED = (
    json_type_name,
    check_messages,
    check_text_field,
    check_row,
    check_model_layout,
    printable,
    new_dataset_report,
    add_problem,
    check_rows,
    skip_bom,
    check_lines,
    check_whole_file,
    merge_reports,
    validate_dataset_files,
    report_summary,
)
