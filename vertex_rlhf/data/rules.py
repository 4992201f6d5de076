"""Row rules for the Vertex RLHF dataset formats, and a streaming validator.

One source of truth: the ``validate_dataset`` component ships these functions by
source (kfp ``additional_funcs``) and the CLI imports them. So every function here
is self-contained: standard-library imports inside the body, ``typing`` names in
signatures, and calls only to other functions of this module, ``jsonl.py`` (reading
lines by explicit rules, whichever parser) and ``matching.py`` (which files a path
selects); each ``SHIPPED`` lists its functions in dependency order.

Formats (see NOTES.md): a preference row has ``candidate_0``, ``candidate_1``
(non-empty strings), ``choice`` (integer 0 or 1) and either ``input_text`` (text
models) or ``messages`` (chat models); a prompt row has ``input_text`` or
``messages``. An eval row is either a preference row (reward-model metrics) or a
prompt row (bulk inference only); one dataset keeps to one layout.

A large dataset, one file or many, is read on every core (``check_files``): its files
are shared out to forked processes as whole files and line-aligned byte ranges, and the
pieces are merged in file order into the report (and profile) of a single pass.
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
    from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

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
    if not value or value.isspace():  # as ``not value.strip()``, without a copy
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


def good_texts(column: Sequence[Any]) -> bool:
    """Whether every value is a string with something other than whitespace (C loops).

    Args:
        column: one field's values, a row each.

    Returns:
        What ``check_text_field`` finds for all of them: nothing.
    """
    return set(map(type, column)) == {str} and all(column) and not any(map(str.isspace, column))


def good_messages(column: Sequence[Any]) -> bool:
    """Whether every value is a chat ``messages`` that ``check_messages`` passes (C loops).

    Args:
        column: the rows' ``messages`` values.

    Returns:
        What ``check_messages`` finds for all of them: nothing.
    """
    import itertools
    from operator import itemgetter

    if set(map(type, column)) != {list} or not all(column):
        return False
    messages = list(itertools.chain.from_iterable(column))
    if set(map(type, messages)) != {dict}:
        return False
    try:
        authors = list(map(itemgetter("author"), messages))
        contents = list(map(itemgetter("content"), messages))
    except KeyError:
        return False
    if set(map(type, authors)) != {str} or not set(authors) <= {"user", "assistant"}:
        return False
    for end in (0, -1):  # the first and the last message are the user's
        if set(map(itemgetter("author"), map(itemgetter(end), column))) != {"user"}:
            return False
    return good_texts(contents)


def block_layout(lines: List[bytes], rows: List[Any], kind: str) -> str:
    """Decides in bulk whether every row of a block passes, as ``check_row`` would.

    The common case, rows that all have exactly one layout's keys (``input_text``, or
    ``messages`` with or without ``context``; and for preference rows ``candidate_0``,
    ``candidate_1``, ``choice``), is checked column by column in C loops instead of row
    by row. Sound, not complete: ``""`` means "not certain", and the caller checks the
    rows one by one, which words the problems. Raw lines (duplicate keys) are left to
    ``raw_prefix``.

    Args:
        lines: the block's raw lines, every one parsed.
        rows: what the parser made of each line.
        kind: the dataset kind.

    Returns:
        The layout every row has, or ``""``.
    """
    from operator import itemgetter

    if not rows or set(map(type, rows)) != {dict}:
        return ""
    sizes = set(map(len, rows))
    size = sizes.pop() if len(sizes) == 1 else 0
    first = rows[0]
    prompt: Tuple[str, ...] = ("input_text",)
    base = "text"
    if "messages" in first:
        base, prompt = "chat", ("messages", "context") if "context" in first else ("messages",)
    elif "input_text" not in first:
        return ""
    pair = size == len(prompt) + 3
    if not pair and size != len(prompt):
        return ""
    if pair:
        names = (*prompt, "candidate_0", "candidate_1", "choice")
        layouts = {"preference": base, "prompt": base, "eval": "preference " + base}
    else:
        names = prompt
        layouts = {"prompt": base, "eval": "prompt " + base}
    layout = layouts.get(kind, "")
    columns: List[Sequence[Any]]
    try:  # every row has exactly these keys: ``size`` of them, each one found
        if size == 1:
            columns = [list(map(itemgetter(names[0]), rows))]
        else:
            columns = list(zip(*map(itemgetter(*names), rows)))  # noqa: B905 (3.8)
    except KeyError:
        return ""
    if base == "text":
        if not good_texts(columns[0]):
            return ""
    else:
        if not good_messages(columns[0]):
            return ""
        if len(prompt) == 2 and set(map(type, columns[1])) != {str}:  # context
            return ""
    if pair:
        choices = columns[-1]
        if not good_texts(columns[-3]) or not good_texts(columns[-2]):
            return ""
        if set(map(type, choices)) != {int} or not set(choices) <= {0, 1}:
            return ""
    return layout  # nesting is at most 3 deep: messages hold objects of strings


def raw_prefix(lines: List[bytes], rows: List[Any]) -> int:
    """How many leading rows of a block ``block_layout`` passed also pass ``check_raw_row``.

    A duplicate key needs more colons than the row has members (see ``check_raw_row``);
    a row that passed has at least its own keys and two per chat message. ``len -
    len(replace)`` is the fast count: replace runs on memchr, count does not. The caller
    checks the rest row by row, so no line is checked twice over.

    Args:
        lines: the block's raw lines.
        rows: their parsed rows, passed by ``block_layout``.

    Returns:
        The index of the first row refused, or ``len(rows)``.
    """
    chat = bool(rows) and "messages" in rows[0]
    most = len(rows[0]) if rows else 0
    for index, line in enumerate(lines):
        row = rows[index]
        if chat:
            most = len(row) + 2 * len(row["messages"])
        if len(line) - len(line.replace(b":", b"")) > most and check_raw_row(line, row)[0]:
            return index
    return len(rows)


def row_blocks(lines: Iterable[bytes], max_bytes: int = 128 << 10) -> Iterable[List[bytes]]:
    """Groups lines into blocks of about ``max_bytes`` (at most 1024 lines).

    Small enough that a block's lines and parsed rows stay in the CPU's cache while it
    is checked (1 MiB blocks were 30% slower than 128 KiB). Lines are taken 16 at a
    time while they are short (under ``max_bytes / 16`` on average), else one at a
    time, so a block exceeds ``max_bytes`` by at most ``max_bytes`` or one line: memory
    stays flat even with lines of many megabytes.

    Args:
        lines: raw lines.
        max_bytes: the bytes a block should hold.

    Returns:
        Lists of lines, in order.
    """
    import itertools

    lines = iter(lines)
    block: List[bytes] = []
    size = 0
    step = 1  # lines to take next: 16 once they are seen to be short
    while True:
        chunk = list(itertools.islice(lines, min(step, 1024 - len(block))))
        if not chunk:
            break
        block += chunk
        taken = sum(map(len, chunk))
        size += taken
        step = 16 if taken * 16 < max_bytes * len(chunk) else 1
        if size >= max_bytes or len(block) >= 1024:
            yield block
            block, size = [], 0
    if block:
        yield block


def check_rows(
    report: Dict[str, Any],
    source: str,
    lines: Iterable[bytes],
    first_line: int = 1,
    observe: Optional[Callable[[Dict[str, Any]], None]] = None,
    tally: Optional[Callable[[int, int], None]] = None,
) -> int:
    """Checks lines as rows, numbering them from ``first_line``; no file-level checks.

    Adds problems, blank lines and the layout to ``report``. Lines are read in blocks:
    a block whose rows all pass (``block_layout``) is settled at once; any other is
    checked row by row (``check_each_row``), which words the problems.

    Args:
        report: the report from ``new_dataset_report``.
        source: the file's name as the user should see it.
        lines: raw lines (bytes, with or without line ends).
        first_line: the number of the first line.
        observe: called with every row that parsed as a JSON object (for profiles).
        tally: told ``(bytes, rows)`` after each block (for progress).

    Returns:
        The rows read (every line that is not blank).
    """
    try:
        from orjson import loads
    except ImportError:  # GCPC's image may lack it: the same rules, by the standard library
        loads = strict_json_parser()  # type: ignore[assignment]

    kind = report["kind"]
    rows = 0
    line_number = first_line
    for block in row_blocks(lines):
        try:
            parsed: Optional[List[Any]] = list(map(loads, block))
        except (ValueError, RecursionError):  # a bad or blank line: row by row says which
            parsed = None
        layout = block_layout(block, parsed, kind) if parsed is not None else ""
        settled, before = 0, rows
        if layout and report["layout"] in ("", layout):
            settled = raw_prefix(block, parsed)  # type: ignore[arg-type]
            if settled:  # a row refused by its raw line sets no layout
                report["layout"] = layout
            if observe is not None:
                for row in parsed[:settled]:  # type: ignore[index]
                    observe(row)
            rows += settled
        if settled < len(block):  # from the first row not settled, row by row
            rest = parsed[settled:] if parsed is not None else None
            first = line_number + settled
            rows += check_each_row(report, source, block[settled:], rest, first, observe, loads)
        line_number += len(block)
        if tally is not None:
            tally(sum(map(len, block)), rows - before)
    return rows


def check_each_row(
    report: Dict[str, Any],
    source: str,
    lines: List[bytes],
    parsed: Optional[List[Any]],
    first_line: int,
    observe: Optional[Callable[[Dict[str, Any]], None]],
    loads: Callable[[bytes], Any],
) -> int:
    """Checks a block's lines one by one, adding each problem with its line number.

    Args:
        report: the report from ``new_dataset_report``.
        source: the file's name as the user should see it.
        lines: raw lines.
        parsed: what ``loads`` made of every line, if every line parsed; else None.
        first_line: the number of the first line.
        observe: called with every row that parsed as a JSON object (for profiles).
        loads: the JSON parser.

    Returns:
        The rows read (every line that is not blank).
    """
    kind = report["kind"]
    layout = report["layout"]
    rows = blank = 0
    for index, line in enumerate(lines):
        line_number = first_line + index
        if parsed is not None:
            row = parsed[index]
        else:
            try:
                row = loads(line)
            except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, rules
                if not line.strip():
                    blank += 1
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
    report["blank_lines"] += blank
    return rows


def skip_bom(report: Dict[str, Any], source: str, first: bytes) -> bytes:
    """Reports and removes a UTF-8 byte-order mark at the start of a file.

    Args:
        report: the report from ``new_dataset_report``.
        source: the file's name as the user should see it.
        first: the file's first line.

    Returns:
        The line without the mark.
    """
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
    tally: Optional[Callable[[int, int], None]] = None,
) -> None:
    """Checks every line of one JSONL file, streaming, and adds to ``report``.

    Blank lines are skipped and counted; every other line is one row.

    Args:
        report: the report from ``new_dataset_report``.
        source: the file's name as the user should see it.
        lines: the file's raw lines (bytes, with or without line ends).
        observe: called with every row that parsed as a JSON object (for profiles).
        tally: told ``(bytes, rows)`` as they are read (for progress).
    """
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
    rows = check_rows(report, source, itertools.chain((first,), lines), 1, observe, tally)
    report["rows"] += rows
    report["files"].append([source, rows])
    if rows == 0:
        add_problem(report, source, "file is empty (no rows)")


def check_whole_file(
    template: Dict[str, Any],
    source: str,
    name: str,
    observe: Optional[Any] = None,
    tally: Optional[Callable[[int, int], None]] = None,
) -> Dict[str, Any]:
    """Checks one file in one pass (``check_lines``) into a report of its own.

    Args:
        template: a report whose ``dataset``, ``kind`` and ``max_reported`` it takes.
        source: the file's name as the user should see it.
        name: the file's path.
        observe: called with every row that parsed as a JSON object (for profiles).
        tally: told ``(bytes, rows)`` as they are read (for progress).

    Returns:
        The file's report.
    """
    part = new_dataset_report(template["dataset"], template["kind"], template["max_reported"])
    with open(name, "rb", buffering=1 << 20) as handle:  # the default 8 KiB costs 20%
        check_lines(part, source, handle, observe, tally)
    return part


def process_count(sizes: List[int], workers: int = 0, min_bytes: int = 16 << 20) -> int:
    """How many processes should read files of these sizes: enough bytes for each.

    The default ``min_bytes``: a fork, the pickled results and the merge cost 2-4 ms a
    process (measured on tiny files), and 16 MiB take about 30 ms to check (500 MB/s),
    so the overhead stays near 10% of a process's work; smaller datasets stay in one
    process.

    Args:
        sizes: the files' sizes in bytes.
        workers: the most processes; 0 means one per available core.
        min_bytes: the least bytes per process worth a fork.

    Returns:
        At least 1; 1 where there is no ``os.fork``.
    """
    import os

    if workers <= 0:
        try:
            workers = len(os.sched_getaffinity(0))
        except AttributeError:
            workers = os.cpu_count() or 1
    if not hasattr(os, "fork"):
        return 1
    return max(1, min(workers, sum(sizes) // max(min_bytes, 1)))


def can_split(observe: Optional[Any]) -> bool:
    """Whether rows may be observed in forked processes: no observer, or a splittable one.

    A splittable observer (a profile) has ``child()``, a recorder for one piece whose
    ``snapshot()`` is picklable, and ``absorb(snapshot)``, which adds a piece's rows as
    if it had observed them itself (called in row order).

    Args:
        observe: the per-row callback, or None.

    Returns:
        True when the observer can take part in a parallel read.
    """
    return observe is None or (hasattr(observe, "child") and hasattr(observe, "absorb"))


def line_start(name: str, offset: int) -> int:
    """The first line start at or after ``offset`` in a file (its size if none).

    Args:
        name: the file's path.
        offset: a byte offset, at least 1.

    Returns:
        The offset of that line start.
    """
    with open(name, "rb") as handle:
        handle.seek(offset - 1)
        handle.readline()  # to just past the next line end
        return handle.tell()


def is_text_file(name: str) -> bool:
    """Whether a file's first line may be JSONL (not compressed, not UTF-16).

    Args:
        name: the file's path.

    Returns:
        False when ``file_format_problem`` rejects the first line.
    """
    with open(name, "rb") as handle:
        return not file_format_problem(handle.readline())


def plan_pieces(
    names: List[str], sizes: List[int], processes: int
) -> List[List[Tuple[int, int, int]]]:
    """Shares files out to processes in pieces of about equal bytes, in file order.

    The files are taken as one stream of bytes cut into ``processes`` consecutive
    shares; a cut inside a file moves to the next line start there (so a file is split
    only where a cut falls), and each share after a cut evens out what is left. A file
    whose first line shows it is not JSONL text (``is_text_file``) is never split.

    Args:
        names: the files' paths, in order.
        sizes: their sizes in bytes.
        processes: how many shares, at least 1.

    Returns:
        Per process, its pieces ``(file index, start, end)``: read in process order
        they are in file order and cover every file (an empty one as ``(i, 0, 0)``).
    """
    total = sum(sizes)
    plan: List[List[Tuple[int, int, int]]] = [[]]
    goal = total // processes  # where the current share ends in the stream
    base = 0  # where the current file starts in the stream
    for index, name in enumerate(names):
        size, start, text = sizes[index], 0, None
        while True:
            end = size
            if len(plan) < processes and start < goal - base < size:
                text = is_text_file(name) if text is None else text
                end = line_start(name, goal - base) if text else size
            plan[-1].append((index, start, end))
            if len(plan) < processes and base + end >= goal:
                plan.append([])
                left = total - base - end
                goal = base + end + left // (processes - len(plan) + 1)
            if end >= size:
                break
            start = end
        base += size
    return [share for share in plan if share]


def range_lines(name: str, start: int, end: int) -> Iterable[bytes]:
    """The lines of a file between two line starts, read in large blocks.

    Args:
        name: the file's path.
        start: the first byte (a line start).
        end: the byte after the range (a line start, or the file's size).

    Returns:
        The raw lines, each with its line end (the file's last may have none).
    """
    with open(name, "rb", buffering=1 << 20) as handle:
        handle.seek(start)
        left = end - start
        for line in handle:
            yield line
            left -= len(line)
            if left <= 0:
                return


def check_piece(
    template: Dict[str, Any],
    source: str,
    name: str,
    start: int,
    end: int,
    observe: Optional[Any] = None,
    tally: Optional[Callable[[int, int], None]] = None,
) -> Tuple[Dict[str, Any], int, Any]:
    """Checks one piece of a plan: a whole file (``check_whole_file``) or a byte range.

    A range's problems are numbered from its first line under the source ``"\\0"``, for
    ``merge_ranges`` to renumber; a file's first range reports its byte-order mark.

    Args:
        template: a report whose ``dataset``, ``kind`` and ``max_reported`` it takes.
        source: the file's name as the user should see it.
        name: the file's path.
        start: the piece's first byte (a line start).
        end: the byte after it (a line start, or the file's size).
        observe: a splittable observer (see ``can_split``) or None.
        tally: told ``(bytes, rows)`` as they are read (for progress).

    Returns:
        ``(report, rows, snapshot)``: the piece's report, its rows, and its observer
        child's ``snapshot()`` (None without an observer).
    """
    import itertools
    import os

    recorder = observe.child() if observe is not None else None
    if start == 0 and end >= os.path.getsize(name):
        part = check_whole_file(template, source, name, recorder, tally)
        rows = part["rows"]
    else:
        part = new_dataset_report(template["dataset"], template["kind"], template["max_reported"])
        lines = iter(range_lines(name, start, end))
        if start == 0:
            lines = itertools.chain((skip_bom(part, "\0", next(lines)),), lines)
        rows = check_rows(part, "\0", lines, 1, recorder, tally)
    return part, rows, recorder.snapshot() if recorder is not None else None


def run_forked(task: Callable[[int], Any], count: int) -> List[Any]:
    """Runs ``task(0)`` here and ``task(1)``... ``task(count - 1)`` in forked processes.

    Forked, so that children share this process's string hashes and state; results
    come back through pipes (marshalled, or pickled where marshal cannot), in order. A
    child never outlives this process (it leaves within 0.1 s of its parent's death:
    SIGKILL, SIGTERM), and an error here (Ctrl-C included) stops the children at once
    instead of waiting for their results.

    Args:
        task: given an index, returns a picklable result.
        count: how many tasks.

    Returns:
        The results, in index order.

    Raises:
        RuntimeError: a child failed (its error is named).
    """
    import contextlib
    import marshal
    import os
    import signal
    import threading
    import time

    def pack(value: Any) -> bytes:  # marshal is built in; pickle (1.4 ms to import) if needed
        try:
            return b"M" + marshal.dumps(value)
        except ValueError:  # a profile's snapshot
            import pickle

            return b"P" + pickle.dumps(value, protocol=4)

    def unpack(data: bytes) -> Any:
        if data[:1] == b"M":
            return marshal.loads(data[1:])
        import pickle

        return pickle.loads(data[1:])

    def orphaned(parent: int) -> None:  # a child's watch: its parent died, so it leaves
        while os.getppid() == parent:
            time.sleep(0.1)
        os._exit(1)

    parent = os.getpid()
    children = []
    results = []
    failure = ""
    try:
        for index in range(1, count):
            read_end, write_end = os.pipe()
            try:
                pid = os.fork()
            except OSError:
                os.close(read_end)
                os.close(write_end)
                raise
            if pid == 0:  # the child: run, send, leave without running the parent's cleanup
                code = 0
                try:
                    threading.Thread(target=orphaned, args=(parent,), daemon=True).start()
                    os.close(read_end)
                    try:
                        data = pack((True, task(index)))
                    except BaseException as error:
                        data = pack((False, f"{type(error).__name__}: {error}"))
                    with os.fdopen(write_end, "wb") as out:
                        out.write(data)
                except BaseException:
                    code = 1
                finally:
                    os._exit(code)
            os.close(write_end)
            children.append((pid, read_end))
        results.append(task(0))
    except BaseException:  # their results no longer matter: stop them, then reap them
        for pid, _ in children:
            with contextlib.suppress(OSError):  # already gone
                os.kill(pid, signal.SIGKILL)
        raise
    finally:  # reap every child, whatever happened here
        for pid, read_end in children:
            with os.fdopen(read_end, "rb") as source:
                data = source.read()
            os.waitpid(pid, 0)
            try:
                ok, value = unpack(data)
            except Exception:  # a child that died before answering
                ok, value = False, "a worker process died"
            if not ok and not failure:
                failure = value
            results.append(value)
    if failure:
        raise RuntimeError(f"parallel validation failed: {failure}")
    return results


def check_shares(
    template: Dict[str, Any],
    files: List[Tuple[str, str]],
    plan: List[List[Tuple[int, int, int]]],
    observers: List[Any],
    tally: Optional[Callable[[int, int], None]] = None,
    told: Optional[List[int]] = None,
) -> List[Tuple[Dict[str, Any], int, Any]]:
    """Checks a plan's shares, one per process (forked), with ``check_piece``.

    Progress: each process writes its ``(bytes, rows)`` so far into its slot of an
    anonymous shared mapping; this process, as it reads its own share, tells ``tally``
    what all of them have added since it last told.

    Args:
        template: a report whose ``dataset``, ``kind`` and ``max_reported`` each takes.
        files: (name as shown, readable path) pairs, in order.
        plan: from ``plan_pieces``.
        observers: per file, a splittable observer or None.
        tally: told ``(bytes, rows)`` as they are read, by all processes (for progress).
        told: ``[bytes, rows]`` told so far, kept up to date here (for a caller that
            has to read again after a failure).

    Returns:
        Every piece's result, in the plan's order (file order).

    Raises:
        RuntimeError: a worker failed or died (see ``run_forked``).
    """

    import mmap
    import struct

    told = told if told is not None else [0, 0]
    slots = mmap.mmap(-1, 16 * len(plan)) if tally is not None else None

    def tell() -> None:  # what every process has read, less what was told already
        if tally is None or slots is None:
            return
        counts = struct.unpack_from(f"{2 * len(plan)}q", slots)
        nbytes, rows = sum(counts[0::2]) - told[0], sum(counts[1::2]) - told[1]
        if nbytes or rows:
            told[0], told[1] = told[0] + nbytes, told[1] + rows
            tally(nbytes, rows)

    def task(index: int) -> List[Any]:
        mine = [0, 0]

        def count(nbytes: int, rows: int) -> None:
            mine[0], mine[1] = mine[0] + nbytes, mine[1] + rows
            struct.pack_into("2q", slots, 16 * index, mine[0], mine[1])  # type: ignore[arg-type]
            if index == 0:  # this process: tell the sum
                tell()

        return [
            check_piece(
                template,
                files[i][0],
                files[i][1],
                start,
                end,
                observers[i],
                count if slots is not None else None,
            )
            for i, start, end in plan[index]
        ]

    try:
        return [result for share in run_forked(task, len(plan)) for result in share]
    finally:
        tell()  # the other processes' last counts
        if slots is not None:
            slots.close()


def merge_ranges(
    report: Dict[str, Any],
    source: str,
    results: List[Tuple[Dict[str, Any], int, Any]],
    observe: Optional[Any] = None,
) -> bool:
    """Merges the checked byte ranges of one file, in order, as one pass would report them.

    Problems come back numbered within their range (source name ``"\\0"``) and are
    renumbered here. When ranges start with different layouts, a single pass would
    flag other rows, so nothing is added and the caller reads the file in one pass.

    Args:
        report: a fresh report from ``new_dataset_report``.
        source: the file's name as the user should see it.
        results: ``check_piece``'s results for the file's ranges, in order.
        observe: a splittable observer (see ``can_split``) or None.

    Returns:
        Whether the ranges were merged into ``report``.
    """
    layouts = {part["layout"] for part, _, _ in results if part["layout"]}
    if len(layouts) > 1:
        return False
    offset = total = 0
    for part, rows, snapshot in results:
        for problem in part["problems"]:
            number, _, rest = problem[2:].partition(":")
            if len(report["problems"]) < report["max_reported"]:
                report["problems"].append(f"{source}:{int(number) + offset}:{rest}")
        report["errors"] += part["errors"]
        report["blank_lines"] += part["blank_lines"]
        offset += rows + part["blank_lines"]
        total += rows
        if observe is not None:
            observe.absorb(snapshot)
    report["layout"] = layouts.pop() if layouts else ""
    report["rows"] = total
    report["files"].append([source, total])
    if total == 0:
        add_problem(report, source, "file is empty (no rows)")
    return True


def merge_pieces(
    template: Dict[str, Any],
    files: List[Tuple[str, str]],
    pieces: List[Tuple[int, int, int]],
    results: List[Tuple[Dict[str, Any], int, Any]],
    observers: List[Any],
) -> List[Dict[str, Any]]:
    """Turns checked pieces into one report per file, feeding observers in file order.

    A file whose ranges cannot be merged (``merge_ranges``) is read again in one pass.

    Args:
        template: a report whose ``dataset``, ``kind`` and ``max_reported`` it takes.
        files: (name as shown, readable path) pairs, in order.
        pieces: the plan's pieces, in file order.
        results: ``check_piece``'s result for each piece.
        observers: per file, a splittable observer or None.

    Returns:
        One report per file, in order.
    """
    import itertools

    parts = []
    pairs = zip(pieces, results)  # noqa: B905 (shipped: Python 3.8)
    for index, group in itertools.groupby(pairs, key=lambda pair: pair[0][0]):
        source, name = files[index]
        observe = observers[index]
        mine = [result for _, result in group]
        if len(mine) == 1:  # a whole file
            part, _, snapshot = mine[0]
            if observe is not None:
                observe.absorb(snapshot)
        else:
            part = new_dataset_report(
                template["dataset"], template["kind"], template["max_reported"]
            )
            if not merge_ranges(part, source, mine, observe):
                part = check_whole_file(template, source, name, observe)
        parts.append(part)
    return parts


def beyond(tally: Callable[[int, int], None], told: List[int]) -> Callable[[int, int], None]:
    """A tally that passes on only what goes beyond what was told already.

    Args:
        tally: told ``(bytes, rows)``.
        told: ``[bytes, rows]`` it was told before.

    Returns:
        A tally for reading again from the start.
    """
    owed = list(told)

    def count(nbytes: int, rows: int) -> None:
        skip_bytes, skip_rows = min(nbytes, owed[0]), min(rows, owed[1])
        owed[0], owed[1] = owed[0] - skip_bytes, owed[1] - skip_rows
        if nbytes > skip_bytes or rows > skip_rows:
            tally(nbytes - skip_bytes, rows - skip_rows)

    return count


def check_files(
    template: Dict[str, Any],
    files: List[Tuple[str, str]],
    observers: Optional[List[Any]] = None,
    workers: int = 0,
    min_bytes: int = 16 << 20,
    tally: Optional[Callable[[int, int], None]] = None,
) -> List[Dict[str, Any]]:
    """Checks files as ``check_lines`` would, one after another: one report per file.

    With at least ``min_bytes`` per process, the files are read on every core:
    ``plan_pieces`` shares them out as whole files and byte ranges, forked processes
    (so string hashes agree) check the pieces, and ``merge_pieces`` gives the reports
    a single pass gives: same line numbers, problems, counts and layouts, observers fed
    in file order. Observers take part only if all can be split (``can_split``);
    otherwise, for small datasets, or when a fork fails or a worker dies, one process
    reads the files.

    Args:
        template: a report whose ``dataset``, ``kind`` and ``max_reported`` each takes.
        files: (name as shown, readable path) pairs, in order.
        observers: per file, called with every row that parsed as a JSON object (for
            profiles), or None.
        workers: processes to use; 0 means one per available core, 1 one pass.
        min_bytes: the least bytes per process worth a fork.
        tally: told ``(bytes, rows)`` as they are read (for progress); bytes read
            again after a failure are not told twice.

    Returns:
        One report per file, in order (``merge_reports`` makes the dataset's).
    """
    import os

    watchers = list(observers) if observers is not None else [None] * len(files)
    sizes = [os.path.getsize(name) for _, name in files]
    processes = process_count(sizes, workers, min_bytes)
    plan: List[List[Tuple[int, int, int]]] = []
    results: List[Any] = []
    told = [0, 0]
    if processes > 1 and all(map(can_split, watchers)):
        try:
            plan = plan_pieces([name for _, name in files], sizes, processes)
            results = check_shares(template, files, plan, watchers, tally, told)
        except (OSError, RuntimeError):  # no fork (limits), a worker died: one pass decides
            plan = []
    if plan:
        pieces = [piece for share in plan for piece in share]
        return merge_pieces(template, files, pieces, results, watchers)
    if tally is not None and told != [0, 0]:
        tally = beyond(tally, told)
    return [
        check_whole_file(template, source, name, observe, tally)
        for (source, name), observe in zip(files, watchers)  # noqa: B905 (Python 3.8)
    ]


def validate_dataset_files(
    path: str,
    kind: str,
    max_reported: int = 5,
    model: str = "",
    model_layout: str = "",
    mount: str = "/gcs/",
    workers: int = 0,
    min_bytes: int = 16 << 20,
) -> Dict[str, Any]:
    """Validates every row of every file that ``path`` selects (see ``matching.py``).

    Large datasets, of one file or many, are read on every core (see ``check_files``),
    with the report of a single pass.

    Args:
        path: a file path or glob, local or ``gs://`` (read through ``mount``).
        kind: ``"preference"``, ``"prompt"`` or ``"eval"``.
        max_reported: how many problems to keep word for word.
        model: the ``large_model_reference``, for the layout check.
        model_layout: its kind (``"text"`` or ``"chat"``); ``""`` skips the check.
        mount: where Cloud Storage is mounted (``/gcs/`` on Vertex).
        workers: processes to use; 0 means one per available core, 1 one pass.
        min_bytes: the least bytes per process worth a fork.

    Returns:
        The report (see ``new_dataset_report``); ``report["errors"] == 0`` means valid.
    """
    files, problem = dataset_files(path, mount)
    template = new_dataset_report(path, kind, max_reported)
    parts = check_files(template, files, None, workers, min_bytes)
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


# Shipped into the validate_dataset component (after matching's and jsonl's), callees first.
SHIPPED = (
    json_type_name,
    check_messages,
    check_text_field,
    check_row,
    new_dataset_report,
    add_problem,
    check_model_layout,
    printable,
    good_texts,
    good_messages,
    block_layout,
    raw_prefix,
    row_blocks,
    check_each_row,
    check_rows,
    skip_bom,
    check_lines,
    check_whole_file,
    process_count,
    can_split,
    line_start,
    is_text_file,
    plan_pieces,
    range_lines,
    check_piece,
    run_forked,
    check_shares,
    beyond,
    merge_ranges,
    merge_reports,
    merge_pieces,
    check_files,
    validate_dataset_files,
    report_summary,
)
