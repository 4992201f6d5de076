"""Row rules for the Vertex RLHF dataset formats, and a streaming validator.

One source of truth: the ``validate_dataset`` component ships these functions by
source (kfp ``additional_funcs``) and the CLI imports them. So every function here
is self-contained: standard-library imports inside the body, ``typing`` names in
signatures, and calls only to other functions of this module and of ``matching.py``
(each ``SHIPPED`` lists them in dependency order).

The verdict must not depend on the JSON parser: orjson is used when importable, and
``strict_json_parser`` applies orjson's rules with the standard library otherwise (the tests
run every rule under both).

Formats (see NOTES.md): a preference row has ``candidate_0``, ``candidate_1``
(non-empty strings), ``choice`` (integer 0 or 1) and either ``input_text`` (text
models) or ``messages`` (chat models); a prompt row has ``input_text`` or
``messages``. An eval row is either a preference row (reward-model metrics) or a
prompt row (bulk inference only); one dataset keeps to one layout.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from vertex_rlhf.data.matching import dataset_files

KINDS = ("preference", "prompt", "eval")


def json_type_name(value: Any) -> str:
    """Names a parsed JSON value's type, with a short excerpt of the value.

    Args:
        value: a value produced by a JSON parser.

    Returns:
        For example ``'string "1"'``, ``'boolean true'`` or ``'null'``.
    """
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
    """Checks a chat ``messages`` value.

    Args:
        messages: the parsed value of the row's ``messages`` field.

    Returns:
        ``("", "")`` when valid, else ``(field, problem)``.
    """
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
    """Checks that ``row[name]`` exists and is a non-empty string.

    Args:
        row: a parsed row.
        name: the field to check.

    Returns:
        ``""`` when valid, else the problem.
    """
    if name not in row:
        return "missing"
    value = row[name]
    if not isinstance(value, str):
        return f"must be a string, got {json_type_name(value)}"
    if not value.strip():
        return "must not be empty or only whitespace"
    return ""


def check_row(row: Any, kind: str) -> Tuple[str, str, str]:
    """Checks one parsed row against the Vertex RLHF format for ``kind``.

    Args:
        row: the parsed JSON value of one line.
        kind: ``"preference"``, ``"prompt"`` or ``"eval"``.

    Returns:
        ``(layout, "", "")`` when valid, where layout is ``"text"`` or ``"chat"``
        (for eval rows prefixed ``"preference "`` or ``"prompt "``); else
        ``("", field, problem)``.
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


def strict_json_parser() -> Callable[[bytes], Any]:
    """A standard-library JSONL line parser that applies the rules orjson applies.

    The rules, explicit so that the verdict never depends on the parser: strict
    UTF-8 (no CESU-8 surrogate bytes), no byte-order mark, no ``NaN``/``Infinity``,
    no number that overflows a double, no lone surrogate escape (``\\ud800``);
    integers beyond 64 bits are read as floats, as orjson reads them.

    Returns:
        ``loads(line: bytes)``, which returns the parsed value or raises ``ValueError``
        (``JSONDecodeError``, ``UnicodeDecodeError`` or one naming the rule) or
        ``RecursionError`` (nested too deeply for the parser).
    """
    import json
    import math
    import re

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON; write null or a number")

    def number(token: str) -> float:
        value = float(token)
        if math.isinf(value):
            raise ValueError(f"the number {token[:40]} is out of range")
        return value

    def integer(token: str) -> Any:
        value = int(token)
        return value if -(2**63) <= value < 2**64 else float(value)

    decode = json.JSONDecoder(parse_constant=constant, parse_float=number, parse_int=integer).decode
    surrogate = re.compile(r"\\u[dD][89a-fA-F]").search

    def loads(line: bytes) -> Any:
        text = line.decode("utf-8")
        row = decode(text)
        if "\\u" in text and surrogate(text):
            try:
                json.dumps(row, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(
                    "holds a lone UTF-16 surrogate escape (\\ud800-\\udfff without its"
                    " pair); fix the text's encoding"
                ) from None
        return row

    return loads


def explain_json_error(line: bytes) -> str:
    """Says why a line is not a JSON row, the same way whichever parser refused it.

    Args:
        line: the raw bytes of a line a parser refused.

    Returns:
        The problem, with the column (counted within the line) where it is known.
    """
    import json

    if line.startswith(b"\xef\xbb\xbf"):
        return (
            "a UTF-8 byte-order mark in the middle of the file (were files with BOMs"
            " concatenated?); remove it"
        )
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as error:
        bad = line[error.start : error.start + 2]
        if bad[:1] == b"\xed" and bad[1:] and 0xA0 <= bad[1] <= 0xBF:
            return (
                f"holds a UTF-16 surrogate encoded as UTF-8 (CESU-8) at byte {error.start + 1};"
                " re-encode the file as standard UTF-8"
            )
        return f"is not valid UTF-8 (byte {error.start + 1}); re-encode the file as UTF-8"
    try:
        strict_json_parser()(line)
    except RecursionError:
        return "nests arrays or objects more than 64 levels deep"
    except json.JSONDecodeError as error:
        return f"invalid JSON at column {error.colno}: {error.msg}"
    except ValueError as error:
        return str(error)
    return "invalid JSON (refused by orjson)"


def row_shape(value: Any) -> Tuple[int, int]:
    """How many object members a parsed value holds, and how deeply it nests.

    Args:
        value: a parsed JSON value.

    Returns:
        ``(members, depth)``: members of every object at every depth; depth 0 for a scalar.
    """
    members = depth = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            members += len(item)
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if level > depth:
            depth = level
        for child in children:
            if isinstance(child, (dict, list)):
                stack.append((child, level + 1))
    return members, depth


def duplicate_key(line: bytes) -> str:
    """The first key that appears twice in one object of a valid JSON line, or ``""``.

    Args:
        line: the raw bytes of a line that parses.

    Returns:
        The duplicated key.
    """
    import json

    found: List[str] = []

    def pairs(items: List[Tuple[str, Any]]) -> Dict[str, Any]:
        seen = set()
        for key, _ in items:
            if key in seen and not found:
                found.append(key)
            seen.add(key)
        return dict(items)

    json.loads(line.decode("utf-8"), object_pairs_hook=pairs)
    return found[0] if found else ""


def check_raw_row(line: bytes, row: Any) -> Tuple[str, str]:
    """Checks what a parser cannot: nesting depth and duplicate keys.

    Both parsers keep the last of two equal keys; a row with ``"choice": 0`` and
    ``"choice": 1`` is ambiguous, so it is refused. A cheap pre-check on the raw line
    keeps this off the fast path: every key is followed by ``:``, so a line with no
    more colons than the parsed row has members has no duplicate.

    Args:
        line: the raw bytes of the line.
        row: what the parser made of it.

    Returns:
        ``("", "")`` when fine, else ``(field, problem)``.
    """
    members, depth = -1, 1
    if type(row) is dict:  # a flat row (the text layout) needs no walk
        members = len(row)
        for value in row.values():
            if isinstance(value, (dict, list)):
                members = -1
                break
    if members < 0:
        members, depth = row_shape(row)
    if depth > 64:
        return "(row)", "nests arrays or objects more than 64 levels deep"
    # Most lines have no ":" but the keys' own: one scan decides. Otherwise count the
    # key ends, '":' and (rarely) '"' + whitespace + ':'; text may add to them, never hide one.
    if line.count(b":") > members:
        keys = line.count(b'":')
        if keys <= members:
            import re

            keys += len(re.findall(rb'"[ \t\r\n]+:', line))
        if keys > members:
            key = duplicate_key(line)
            if key:
                return key[:40], (
                    "appears twice in one object; parsers keep only the last, so the row is"
                    " ambiguous: keep one"
                )
    return "", ""


def file_format_problem(first: bytes) -> str:
    """Recognizes a file that is not UTF-8 JSONL from its first line.

    Args:
        first: the first line's raw bytes.

    Returns:
        ``""`` when it may be JSONL; else the real cause and the fix.
    """
    compressed = (
        (b"\x1f\x8b", "gzip", "gunzip"),
        (b"\x28\xb5\x2f\xfd", "zstd", "zstd -d"),
        (b"BZh", "bzip2", "bunzip2"),
        (b"\xfd7zXZ\x00", "xz", "unxz"),
        (b"PK\x03\x04", "zip", "unzip"),
    )
    for magic, name, tool in compressed:
        if first.startswith(magic):
            return (
                f"is {name}-compressed; GCPC reads plain JSONL: decompress it ({tool}) and"
                " upload the .jsonl"
            )
    if first.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in first:
        return (
            "is UTF-16 or UTF-32 encoded (NUL bytes, or its byte-order mark); re-encode it as UTF-8"
        )
    return ""


def check_model_layout(report: Dict[str, Any], model: str, layout: str) -> None:
    """Adds a problem when a dataset's layout does not fit the model's kind.

    GCPC reformats chat data only for chat models and reads ``input_text`` otherwise;
    it reads the prompt set only after hours of reward-model training.

    Args:
        report: a finished report.
        model: the ``large_model_reference``, as given.
        layout: the model's kind, ``"text"`` or ``"chat"``; ``""`` skips the check.
    """
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
    """Escapes what an output stream cannot encode (e.g. a lone surrogate in a file name).

    Args:
        text: the text to print.
        encoding: the stream's encoding (``sys.stdout.encoding``); None means UTF-8.

    Returns:
        The text, with unencodable characters as backslash escapes.
    """
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
    """Starts the report that ``check_lines`` fills in.

    Args:
        dataset: the path or glob as the user wrote it.
        kind: ``"preference"``, ``"prompt"`` or ``"eval"``.
        max_reported: how many problems to keep word for word (all are counted).

    Returns:
        A report dict: ``dataset``, ``kind``, ``files`` ([source, rows] pairs),
        ``rows``, ``blank_lines``, ``layout``, ``errors`` (count), ``problems``
        (the first ``max_reported``), ``max_reported``.

    Raises:
        ValueError: an unknown kind.
    """
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
    """Counts a problem and keeps its text if fewer than ``max_reported`` are kept.

    Args:
        report: the report from ``new_dataset_report``.
        where: ``source:line: field`` or just ``source``.
        problem: what is wrong and, where useful, how to fix it.
    """
    report["errors"] += 1
    if len(report["problems"]) < report["max_reported"]:
        report["problems"].append(f"{where}: {problem}")


def check_lines(
    report: Dict[str, Any],
    source: str,
    lines: Iterable[bytes],
    observe: Optional[Callable[[Dict[str, Any]], None]] = None,
) -> None:
    """Checks every line of one JSONL file, streaming, and adds to ``report``.

    Blank lines are skipped and counted; every other line is one row.

    Args:
        report: the report from ``new_dataset_report``.
        source: the file's name as the user should see it.
        lines: the file's raw lines (bytes, with or without line ends).
        observe: called with every row that parsed as a JSON object (for profiles).
    """
    try:
        from orjson import loads
    except ImportError:  # GCPC's image may lack it: the same rules, by the standard library
        loads = strict_json_parser()  # type: ignore[assignment]

    import itertools

    kind = report["kind"]
    layout = report["layout"]
    rows = 0
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
    if first.startswith(b"\xef\xbb\xbf"):
        add_problem(
            report,
            f"{source}:1",
            "file starts with a UTF-8 byte-order mark; save it as UTF-8 without BOM",
        )
        first = first[3:]
    for line_number, line in enumerate(itertools.chain((first,), lines), 1):
        try:
            row = loads(line)
        except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, rules
            if not line.strip():
                report["blank_lines"] += 1
                continue
            rows += 1
            add_problem(report, f"{source}:{line_number}", explain_json_error(line))
            continue
        rows += 1
        field, problem = check_raw_row(line, row)
        if field:
            add_problem(report, f"{source}:{line_number}: {field}", problem)
            continue
        if observe is not None and isinstance(row, dict):
            observe(row)
        row_layout, field, problem = check_row(row, kind)
        if field:
            add_problem(report, f"{source}:{line_number}: {field}", problem)
        elif row_layout != layout:
            if not layout:
                layout = row_layout
            else:
                add_problem(
                    report,
                    f"{source}:{line_number}",
                    f"row is {row_layout} but earlier rows are {layout}; keep one layout"
                    " per dataset",
                )
    report["layout"] = layout
    report["rows"] += rows
    report["files"].append([source, rows])
    if rows == 0:
        add_problem(report, source, "file is empty (no rows)")


def validate_dataset_files(
    path: str,
    kind: str,
    max_reported: int = 5,
    model: str = "",
    model_layout: str = "",
    mount: str = "/gcs/",
) -> Dict[str, Any]:
    """Validates every row of every file that ``path`` selects (see ``matching.py``).

    Args:
        path: a file path or glob, local or ``gs://`` (read through ``mount``).
        kind: ``"preference"``, ``"prompt"`` or ``"eval"``.
        max_reported: how many problems to keep word for word.
        model: the ``large_model_reference``, for the layout check.
        model_layout: its kind (``"text"`` or ``"chat"``); ``""`` skips the check.
        mount: where Cloud Storage is mounted (``/gcs/`` on Vertex).

    Returns:
        The report (see ``new_dataset_report``); ``report["errors"] == 0`` means valid.
    """
    files, problem = dataset_files(path, mount)
    parts = []
    for shown, name in files:
        part = new_dataset_report(path, kind, max_reported)
        with open(name, "rb") as handle:
            check_lines(part, shown, handle)
        parts.append(part)
    report = merge_reports(path, kind, parts, max_reported)
    if problem:
        add_problem(report, path, problem)
    check_model_layout(report, model, model_layout)
    return report


def report_summary(report: Dict[str, Any], max_files: int = 20) -> str:
    """Describes a report in a few lines a person can act on.

    Args:
        report: a finished report.
        max_files: how many of its files to list, with their rows.

    Returns:
        The verdict (with the first problems when invalid), then the files read.
    """
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


def merge_reports(
    dataset: str, kind: str, parts: List[Dict[str, Any]], max_reported: int = 5
) -> Dict[str, Any]:
    """Merges per-file reports (read concurrently) into one, in the order given.

    Args:
        dataset: the path or glob as the user wrote it.
        kind: the dataset kind.
        parts: one report per file, each from ``new_dataset_report`` + ``check_lines``.
        max_reported: problems to keep word for word when there are no parts.

    Returns:
        One report, as if the files had been read one after another.
    """
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


# Shipped into the validate_dataset component (after matching.SHIPPED), callees first.
SHIPPED = (
    json_type_name,
    check_messages,
    check_text_field,
    check_row,
    strict_json_parser,
    explain_json_error,
    row_shape,
    duplicate_key,
    check_raw_row,
    file_format_problem,
    new_dataset_report,
    add_problem,
    check_model_layout,
    printable,
    check_lines,
    merge_reports,
    validate_dataset_files,
    report_summary,
)
