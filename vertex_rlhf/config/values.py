"""The one door for values a user sets: flags, make variables, environment names, paths.

Each parser turns raw text into a typed value or raises ``ConfigError`` (CONFIG_002)
naming the flag or variable and saying how to fix it. They are argparse ``type=``
callables (``type=values.seconds("--timeout")``), so every flag is checked where it is
declared, before any command runs, any credential is looked up or any request is built.
argparse rather than click: the CLI is argparse already (and stays fast to start, with no
extra dependency), and ``type=`` is exactly one typed conversion per declared value. The
Makefile passes raw text only (``--dry-run=$(DRY_RUN)``, ``--shell-words $(OVERRIDES)``);
the meaning is decided here, once, for make and the CLI alike.
"""

from __future__ import annotations

import math
import os
import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vertex_rlhf.config.filekinds import path_kind
from vertex_rlhf.errors import ConfigError

YES = ("1", "true", "yes", "on")
NO = ("0", "false", "no", "off")
YES_NO_RULE = "1/0, true/false, yes/no or on/off (any case; empty means unset)"
# The argv item whose next item is split with shell quoting rules (make's OVERRIDES, ARGS).
SHELL_WORDS = "--shell-words"
# The make variable behind each yes/no flag, for messages.
LIST_TEXT = "the text of OVERRIDES, ARGS or JOBS"
MAKE_VARIABLES = {"--dry-run": "DRY_RUN", "--wait": "WAIT", "--yes": "YES"}


def yes_no(text: str, what: str) -> bool | None:
    """Reads a yes/no value: True, False, or None for empty (unset).

    Raises:
        ConfigError: anything else, naming ``what``.
    """
    word = text.strip().lower()
    if not word:
        return None
    if word in YES:
        return True
    if word in NO:
        return False
    raise ConfigError([f"{what}: {text!r} is not a yes/no value; use {YES_NO_RULE}"])


def seconds(what: str) -> Callable[[str], float]:
    """An argparse type: a finite number of seconds above 0."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value <= 0:
            raise ConfigError([f"{what} {text!r}: must be a number of seconds above 0, e.g. 30"])
        return value

    return parse


def count(what: str, minimum: int = 1, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number from ``minimum`` (to ``maximum``)."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            value = None
        if value is None or value < minimum or (maximum is not None and value > maximum):
            upper = f" to {maximum}" if maximum is not None else " or more"
            raise ConfigError([f"{what} {text!r}: must be a whole number from {minimum}{upper}"])
        return value

    return parse


def fraction(what: str) -> Callable[[str], float]:
    """An argparse type: a number from 0 up to (not including) 1."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and 0 <= value < 1):
            raise ConfigError([f"{what} {text!r}: must be a number from 0 up to 1, e.g. 0.1"])
        return value

    return parse


def model_name(what: str) -> Callable[[str], str]:
    """An argparse type: a model of the catalog that can be tuned today (its canonical name)."""
    from vertex_rlhf.config import catalog

    def parse(text: str) -> str:
        problem = catalog.model_problem(text)
        if problem:
            raise ConfigError([f"{what}: {problem}"])
        return catalog.canonical_model_name(text)

    return parse


def environment_spec(what: str) -> Callable[[str], str]:
    """An argparse type: an environment name (``dev``) or a parameter file's path.

    The name rule and the kind of an existing path are checked here; which file a name
    means is decided by ``environment.resolve_environment`` (it needs ``--params-dir``).
    """
    from vertex_rlhf.config import environment

    def parse(text: str) -> str:
        if not environment.is_path_form(text) and not os.path.isdir(text):
            environment.check_name(text, what=what)
            return text
        kind = path_kind(Path(text))
        if kind not in (None, "a file", "a directory"):
            raise ConfigError(
                [f"{what} {text!r}: is {kind}, not a parameter file; give a .yaml file"]
            )
        return text

    return parse


@dataclass(frozen=True)
class TemplateVersion:
    """A template version a user named: a tag (``1.2.0``, ``1.2.0-notify``, ``latest``) or
    a digest (``sha256:`` and 64 hex digits), checked by ``names.tag_problem``.

    Attributes:
        text: the version, as typed (it passed the grammar, so it is never a path).
    """

    text: str

    @property
    def is_digest(self) -> bool:
        """Whether it names content (``sha256:...``) rather than a tag."""
        return self.text.startswith("sha256:")


VERSION_FORMS = (
    "a compiled or published version (1.2.0, 1.2.0-notify), a registry tag (latest)"
    " or sha256: and 64 hex digits"
)
# The most characters of a refused version quoted back in its error.
VERSION_QUOTED = 60


def template_version(what: str) -> Callable[[str], TemplateVersion]:
    """An argparse type: a template version, tag or digest (never a path, never a URL)."""
    from vertex_rlhf.config import names

    def parse(text: str) -> TemplateVersion:
        problem = names.tag_problem(text, digest_ok=True)
        if problem is None:
            return TemplateVersion(text)
        if len(text) > VERSION_QUOTED:  # quote a start of it, not a screenful
            problem = (
                f"version {text[:VERSION_QUOTED]!r}... ({len(text)} characters) is not a tag"
                f" ({names.TAG_FORM}) or sha256: and 64 hex digits"
            )
        raise ConfigError([f"{what}: {problem}; e.g. 1.2.0, 1.2.0-notify or latest"])

    return parse


def shell_words(what: str) -> Callable[[str], list[str]]:
    """An argparse type: text split with shell quoting rules (no shell ever runs it)."""

    def parse(text: str) -> list[str]:
        return split_words(text, what)

    return parse


def split_words(text: str, what: str) -> list[str]:
    """Splits ``text`` as a shell would (``a='b c'`` is one word); nothing is expanded.

    Raises:
        ConfigError: unbalanced quotes, naming ``what``.
    """
    try:
        return shlex.split(text, comments=False, posix=True)
    except ValueError as error:
        raise ConfigError(
            [
                f"{what} {text!r}: cannot be split into words ({error}); close every quote,"
                " e.g. OVERRIDES=\"training.instruction='Summarize briefly'\""
            ]
        ) from None


def regular_file_problem(path: Path, what: str) -> str | None:
    """Why ``path`` is not an existing regular file to read, or None."""
    kind = path_kind(path)
    if kind == "a file":
        return None
    if kind is None:
        return f"{what} {str(path)!r}: no such file"
    return f"{what} {str(path)!r}: is {kind}, not a regular file; give the path of a file"


def existing_file(what: str) -> Callable[[str], Path]:
    """An argparse type: an existing regular file (never opened here: a FIFO never blocks)."""

    def parse(text: str) -> Path:
        problem = regular_file_problem(Path(text), what)
        if problem:
            raise ConfigError([problem])
        return Path(text)

    return parse


def existing_directory(what: str) -> Callable[[str], Path]:
    """An argparse type: an existing directory."""

    def parse(text: str) -> Path:
        kind = path_kind(Path(text))
        if kind != "a directory":
            state = "no such directory" if kind is None else f"is {kind}, not a directory"
            raise ConfigError([f"{what} {text!r}: {state}; give a directory"])
        return Path(text)

    return parse


def local_data_path(what: str, directory_ok: bool = True) -> Callable[[str], str]:
    """An argparse type: a dataset path or glob; an existing local path must be a file.

    Args:
        what: the flag, for messages.
        directory_ok: let a directory through to the validator, which reports it as the
            pipeline's component does (``validate-data``); else refuse it here.
    """

    def parse(text: str) -> str:
        problem = dataset_path_kind_problem(text, what)
        literal = not text.startswith("gs://") and not any(c in text for c in "*?[")
        if not (problem or directory_ok) and literal and path_kind(Path(text)) == "a directory":
            problem = (
                f"{what} {text!r}: is a directory; give a file or a glob such as"
                f" {text.rstrip('/')}/*.jsonl"
            )
        if problem:
            raise ConfigError([problem])
        return text

    return parse


def dataset_path_kind_problem(text: str, what: str) -> str | None:
    """Why a local dataset path (no glob) names a FIFO, device or socket, or None.

    A missing path, or a directory, is the dataset validator's to report (the pipeline's
    component says the same: "is a directory; give a glob such as ...").
    """
    if text.startswith("gs://") or any(c in text for c in "*?["):
        return None
    kind = path_kind(Path(text))
    if kind in (None, "a file", "a directory"):
        return None
    return f"{what} {text!r}: is {kind}, not a dataset file; give a JSONL file or a glob"


def output_problem(path: Path, what: str, directory: bool = False) -> str | None:
    """Why ``path`` cannot be written as a file (or created as a directory), or None."""
    kind = path_kind(path)
    wanted = "a directory" if directory else "a file"
    if kind is not None and kind != wanted:
        return f"{what} {str(path)!r} is {kind}; give {wanted}"
    for parent in path.parents:
        parent_kind = path_kind(parent)
        if parent_kind is None:
            continue
        if parent_kind != "a directory":
            return (
                f"{what} {str(path)!r} is under {str(parent)!r}, which is {parent_kind}"
                f" ({str(parent)!r} is not a directory)"
            )
        if not os.access(parent, os.W_OK | os.X_OK) and kind is None:
            return f"{what} {str(path)!r} cannot be created: {str(parent)!r} is not writable"
        return None
    return None


def output_path(what: str, directory: bool = False) -> Callable[[str], Path]:
    """An argparse type: a file (or directory) that can be written."""

    def parse(text: str) -> Path:
        problem = output_problem(Path(text), what, directory)
        if problem:
            raise ConfigError([problem])
        return Path(text)

    return parse


def data_output(what: str) -> Callable[[str], str]:
    """An argparse type: a dataset to write, ``gs://`` or a local file that can be written."""

    def parse(text: str) -> str:
        problem = None if text.startswith("gs://") else output_problem(Path(text), what)
        if problem:
            raise ConfigError([problem])
        return text

    return parse


def version(what: str) -> Callable[[str], str]:
    """An argparse type: a template version, a registry tag or ``sha256:`` and 64 hex digits."""
    from vertex_rlhf.config import names

    def parse(text: str) -> str:
        problem = names.tag_problem(text, digest_ok=True)
        if problem:
            raise ConfigError([f"{what}: {problem}"])
        return text

    return parse


def schedule_name(what: str) -> Callable[[str], str]:
    """An argparse type: the name of one schedule of an environment (``NAME=``)."""
    from vertex_rlhf.config import names

    def parse(text: str) -> str:
        problem = names.schedule_name_problem(text)
        if problem:
            raise ConfigError([f"{what}: {problem}"])
        return text

    return parse


# --- cron expressions, as Vertex AI schedules take them -------------------------------
# Five fields of unix-cron as Cloud Scheduler documents them (what Vertex AI schedules
# take): minute 0-59, hour 0-23, day of month 1-31, month 1-12 or JAN-DEC, day of week
# 0-6 or SUN-SAT (7 is Sunday too); each a list of *, N, N-M, */S or N-M/S. An optional
# first word TZ=Area/City or CRON_TZ=Area/City names an IANA time zone (UTC without one).
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# (field, lowest, highest, names: the value of names[i] is lowest + i)
CRON_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, MONTHS),
    ("day of week", 0, 7, WEEKDAYS),
)
CRON_RULE = (
    "five fields 'minute hour day-of-month month day-of-week' (e.g. '0 3 * * 1': Mondays at"
    " 03:00), optionally after TZ=Area/City or CRON_TZ=Area/City (an IANA time zone, e.g."
    " 'TZ=Europe/Paris 0 3 * * 1'; UTC without one)"
)
CRON_LIMIT = 200
TIME_ZONE_PREFIXES = ("TZ=", "CRON_TZ=")
# Names in the time zone folders that are not IANA zones of their own.
NOT_ZONES = frozenset({"localtime", "Factory", "posixrules"})
_ZONE_FORM = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]{0,40}(?:/[A-Za-z0-9_+-]{1,40}){0,3}$")
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@dataclass(frozen=True)
class Cron:
    """A checked cron expression.

    Attributes:
        fields: the five fields, names upper-cased and numbers without leading zeros.
        time_zone: the IANA time zone, or None (UTC).
        prefix: how the time zone was given, ``TZ`` or ``CRON_TZ``.
    """

    fields: tuple[str, ...]
    time_zone: str | None = None
    prefix: str = "TZ"

    def __str__(self) -> str:
        """The expression as the API receives it."""
        zone = f"{self.prefix}={self.time_zone} " if self.time_zone else ""
        return zone + " ".join(self.fields)


def time_zones() -> frozenset[str]:
    """The IANA time zone names this machine knows (tzdata, or the system's database)."""
    import zoneinfo

    return frozenset(zoneinfo.available_timezones()) - NOT_ZONES


def time_zone_problem(zone: str) -> str | None:
    """Why ``zone`` is not an IANA time zone name, or None.

    Only a name from the database's list is taken: nothing is ever looked up by path.
    """
    if _ZONE_FORM.fullmatch(zone) and zone in time_zones():
        return None
    import difflib

    close = difflib.get_close_matches(zone, sorted(time_zones()), n=3) if len(zone) < 60 else []
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return (
        f"time zone {zone[:80]!r} is not an IANA time zone name (such as UTC, Europe/Paris,"
        f" America/New_York){hint}"
    )


def _cron_number(word: str, field: tuple[str, int, int, tuple[str, ...]]) -> int | str:
    """A value of a field (a number or a name), or why it is not one."""
    title, low, high, names = field
    if word.upper() in names:
        return low + names.index(word.upper())
    if not (word.isascii() and word.isdigit()) or len(word) > 2:
        named = f" or {names[0]}-{names[-1]}" if names else ""
        return f"{word!r} is not a number{named}"
    value = int(word)
    if not low <= value <= high:
        named = f" or {names[0]}-{names[-1]}" if names else ""
        extra = " (7 is Sunday too)" if title == "day of week" else ""
        shown_high = 6 if title == "day of week" else high
        return f"{value} is outside {low}-{shown_high}{named}{extra}"
    return value


def _cron_item(item: str, field: tuple[str, int, int, tuple[str, ...]]) -> tuple[str, set[int]]:
    """One item of a field's list, normalized, and the values it selects.

    Raises:
        ValueError: why it is not an item (the message is shown).
    """
    _, low, high, names = field
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not (step_text.isascii() and step_text.isdigit()) or not 1 <= int(step_text) <= high:
            raise ValueError(f"step {step_text!r} must be a whole number from 1 to {high}")
        step = int(step_text)
        if base != "*" and "-" not in base:
            raise ValueError(f"a step follows * or a range (*/{step}, N-M/{step}), not {base!r}")
    if base == "*":
        text, first, last = "*", low, high
    else:
        start, dash, end = base.partition("-")
        first_value = _cron_number(start, field)
        last_value = _cron_number(end, field) if dash else first_value
        for value in (first_value, last_value):
            if isinstance(value, str):
                raise ValueError(value)
        assert isinstance(first_value, int) and isinstance(last_value, int)
        if first_value > last_value:
            raise ValueError(f"range {base!r} runs backwards; write the lower value first")
        first, last = first_value, last_value

        def shown(word: str) -> str:
            return word.upper() if word.upper() in names else str(int(word))

        text = shown(start) + (f"-{shown(end)}" if dash else "")
    if slash:
        text += f"/{step}"
    return text, set(range(first, last + 1, step))


def parse_cron(text: str, what: str = "--cron") -> Cron:
    """Reads a cron expression as Vertex AI schedules take it.

    Raises:
        ConfigError: naming the field and what it allows.
    """

    def refuse(problem: str) -> ConfigError:
        return ConfigError([f"{what} {text[:80]!r}: {problem}; give {CRON_RULE}"])

    if not text.strip():
        raise refuse("is empty")
    if len(text) > CRON_LIMIT:
        raise refuse(f"is {len(text)} characters long (at most {CRON_LIMIT})")
    if not re.fullmatch(r"[\x21-\x7e]+(?: +[\x21-\x7e]+)*", text):
        raise refuse(
            "holds characters other than printable ASCII and single spaces between words"
            " (no tabs, newlines, or spaces before or after)"
        )
    words = text.split()
    zone, prefix = None, "TZ"
    for start in TIME_ZONE_PREFIXES:
        if words[0].startswith(start):
            prefix, zone = start[:-1], words[0][len(start) :]
            words = words[1:]
            problem = time_zone_problem(zone)
            if problem:
                raise refuse(problem)
            break
    if any("=" in word for word in words):
        raise refuse("only a first word TZ=Area/City or CRON_TZ=Area/City may hold '='")
    if words and words[0].startswith("@"):
        raise refuse(f"macros such as {words[0][:20]!r} are not taken; write the five fields")
    if len(words) != len(CRON_FIELDS):
        raise refuse(
            f"has {len(words)} field(s), not 5 (no seconds or years: minute hour"
            " day-of-month month day-of-week)"
        )
    fields, chosen = [], []
    for word, field in zip(words, CRON_FIELDS, strict=True):
        items, values = [], set()
        for item in word.split(","):
            try:
                if not item:
                    raise ValueError("an empty item in the list")
                shown, selected = _cron_item(item, field)
            except ValueError as error:
                _, low, high, names = field
                allowed = f"{low}-{6 if field[0] == 'day of week' else high}"
                named = f" or {names[0]}-{names[-1]}" if names else ""
                raise refuse(
                    f"{field[0]} field {word[:40]!r}: {error} (it takes *, {allowed}{named},"
                    " lists a,b, ranges a-b and steps */s or a-b/s)"
                ) from None
            items.append(shown)
            values |= selected
        fields.append(",".join(items))
        chosen.append(values)
    days, months, weekdays = chosen[2], chosen[3], fields[4]
    if weekdays == "*" and all(day > _DAYS_IN_MONTH[month - 1] for day in days for month in months):
        raise refuse("it never runs: no month chosen has the day(s) chosen")
    return Cron(tuple(fields), zone, prefix)


def cron(what: str) -> Callable[[str], Cron]:
    """An argparse type: a cron expression with an optional IANA time zone (``Cron``)."""

    def parse(text: str) -> Cron:
        return parse_cron(text, what)

    return parse


def expand_argv(argv: Sequence[str], yes_no_flags: Sequence[str]) -> list[str]:
    """Applies the two raw-text forms make uses before argparse sees the arguments.

    ``--shell-words TEXT`` becomes TEXT's words (shell quoting rules), and
    ``--flag=VALUE`` for a yes/no flag becomes ``--flag`` (yes) or nothing (no, empty).

    Raises:
        ConfigError: unbalanced quotes, or a yes/no value that is neither.
    """
    out: list[str] = []
    items = iter(argv)
    for item in items:
        if item == SHELL_WORDS:
            out += split_words(next(items, ""), LIST_TEXT)
            continue
        if item.startswith(f"{SHELL_WORDS}="):
            out += split_words(item.split("=", 1)[1], LIST_TEXT)
            continue
        flag, equals, value = item.partition("=")
        if equals and flag in yes_no_flags:
            variable = MAKE_VARIABLES.get(flag)
            what = f"{flag} (make {variable})" if variable else flag
            if yes_no(value, what):
                out.append(flag)
            continue
        out.append(item)
    return out


def run_script(argv: Sequence[str]) -> int:
    """``python -m vertex_rlhf.config.values SCRIPT TEXT``: runs SCRIPT with TEXT's words.

    How make passes ``ARGS`` to a script that is not the ``rlhf`` CLI.
    """
    import runpy
    import sys

    if len(argv) != 2:
        print("usage: python -m vertex_rlhf.config.values SCRIPT TEXT", file=sys.stderr)
        return 2
    script, text = argv
    try:
        words = split_words(text, "ARGS")
    except ConfigError as error:
        print(error.render(), file=sys.stderr)
        return error.exit_status
    # An absolute __file__: a script may run itself again from another folder.
    path = os.path.abspath(script)
    sys.argv = [path, *words]
    runpy.run_path(path, run_name="__main__")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(run_script(sys.argv[1:]))
