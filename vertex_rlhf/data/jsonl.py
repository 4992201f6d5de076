"""Reading JSONL lines by explicit rules, so that the verdict never depends on the parser.

The ``validate_dataset`` component parses with orjson when GCPC's image has it and with
the standard library otherwise. The two disagree on ``NaN``/``Infinity``, lone surrogate
escapes, CESU-8 surrogate bytes, byte-order marks and deep nesting, and both silently keep
the last of two equal keys. Here the rules are explicit: ``strict_json_parser`` applies
orjson's with the standard library, ``check_raw_row`` adds what neither parser checks, and
``explain_json_error`` words a refusal the same way whichever parser refused. The tests run
every rule under both parsers. orjson's rules: strict UTF-8 (no CESU-8 surrogate bytes),
no byte-order mark, no ``NaN``/``Infinity``, no number that overflows a double, no lone
surrogate escape (``\\ud800``); integers beyond 64 bits are read as floats.

Duplicate keys: both parsers keep the last of two equal keys, so a row with
``"choice": 0`` and ``"choice": 1`` is ambiguous and refused. Finding them must cost
next to nothing on rows without any. Every key is followed by ``:``, so a line with no
more colons than the parsed row has members has none (counted as ``len - len(replace)``:
replace runs on memchr, count walks every byte). Otherwise the key ends are counted,
``"`` + optional whitespace + ``:``; text adds to them (an escaped quote), never hides
one. When that still says "more keys than members", the ``\\":`` of text (JSON or code
in a prompt: quotes escaped by exactly 1 or 3 backslashes) is taken off before the
second, slower parse (``duplicate_key``).

Error columns are counted in characters within the line, without its line end (json
would count a trailing ``\\n`` as a new line and say "line 2 column 1").

Shipped into the component by source (see ``rules.py``): standard-library imports inside
the body, Python 3.8 grammar, calls only to functions shipped with it.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing takes 2 ms to import; here it serves annotations only
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Tuple


def strict_json_parser() -> Callable[[bytes], Any]:
    """A standard-library ``loads(line: bytes)`` that applies orjson's rules (see above).

    It raises ``ValueError`` (``JSONDecodeError``, ``UnicodeDecodeError`` or one naming
    the rule) or ``RecursionError``.
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
    """Why a line a parser refused is not a JSON row, with the column an editor shows."""
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
    try:  # without its line end (see above)
        strict_json_parser()(line.rstrip(b"\r\n"))
    except RecursionError:
        return "nests arrays or objects more than 64 levels deep"
    except json.JSONDecodeError as error:
        return f"invalid JSON at column {error.colno}: {error.msg}"
    except ValueError as error:
        return str(error)
    return "invalid JSON (refused by orjson)"


def row_shape(value: Any) -> Tuple[int, int]:
    """``(members, depth)`` of a parsed value: members of all its objects; 0 deep if scalar."""
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
    """The first key that appears twice in one object of a line that parses, or ``""``."""
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
    """Checks what a parser cannot (nesting depth, duplicate keys): ``("", "")`` or
    ``(field, problem)``. Cheap pre-checks on the raw line come first (see above)."""
    if type(row) is dict and {dict, list}.isdisjoint(map(type, row.values())):
        members, depth = len(row), 1  # a flat row (the text layout) needs no walk
    else:
        members, depth = row_shape(row)
    if depth > 64:
        return "(row)", "nests arrays or objects more than 64 levels deep"
    colons = len(line) - len(line.replace(b":", b""))
    if colons > members:
        import re

        keys = len(re.findall(rb'"[ \t\r\n]*:', line))
        escaped = line.count(b'\\":') if keys > members else 0
        if escaped:
            count = line.count
            keys -= escaped - count(b'\\\\":') + count(b'\\\\\\":') - count(b'\\\\\\\\":')
        if keys > members:
            key = duplicate_key(line)
            if key:
                return key[:40], (
                    "appears twice in one object; parsers keep only the last, so the row is"
                    " ambiguous: keep one"
                )
    return "", ""


def file_format_problem(first: bytes) -> str:
    """Names a file that is not UTF-8 JSONL (compressed, UTF-16) from its first line."""
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


# Shipped into the validate_dataset component (before rules.SHIPPED), callees first.
SHIPPED = (
    strict_json_parser,
    explain_json_error,
    row_shape,
    duplicate_key,
    check_raw_row,
    file_format_problem,
)
