"""Text from outside is printed escaped and bounded, whatever it holds."""

import pytest

from vertex_rlhf.views.text import NAME_LIMIT, name, outside

HOSTILE = [
    ("\x1b[2J", "\\x1b[2J"),  # clear the screen
    ("\x1b]8;;http://evil.example\x07link\x1b]8;;\x07", "\\x1b]8;;http://evil.example\\x07link"),
    ("a\rb", "a\\x0db"),  # carriage return overwrites the line
    ("\x9b31m", "\\x9b31m"),  # C1 CSI
    ("\x7f", "\\x7f"),
    ("abc\u202etxt.exe", "abc\\u202etxt.exe"),  # right-to-left override
    ("\u2066x\u2069", "\\u2066x\\u2069"),
    ("\x00", "\\x00"),
    ("a\ud800b", "a\\ud800b"),  # a lone surrogate: no stream can encode it
    ("bad\udcff.jsonl", "bad\\udcff.jsonl"),  # an undecodable byte of a file name
]


@pytest.mark.parametrize(("raw", "shown"), HOSTILE)
def test_control_characters_are_escaped(raw: str, shown: str) -> None:
    text = outside(raw)
    assert shown in text
    assert not any(ord(c) < 32 and c not in "\n\t" for c in text)
    assert "\x1b" not in text and "\u202e" not in text


def test_newline_and_tab_kept_unless_one_line() -> None:
    assert outside("a\nb\tc") == "a\nb\tc"
    assert outside("a\nb\tc", one_line=True) == "a\\x0ab\\x09c"


def test_long_text_is_bounded_and_says_how_much_was_cut() -> None:
    text = outside("x" * 20_000_000, limit=100)
    assert text.startswith("x" * 100)
    assert len(text) < 200
    assert "19,999,900 more characters" in text


def test_escapes_never_push_past_the_limit() -> None:
    text = outside("\x1b" * 1000, limit=50)
    assert text.startswith("\\x1b")
    assert len(text.split("…")[0]) <= 50


def test_plain_text_and_non_text_pass_unchanged() -> None:
    assert outside("héllo [b]world[/b]") == "héllo [b]world[/b]"
    assert outside(42) == "42"


def test_names_are_one_line_and_bounded() -> None:
    assert name("task\nFAKE\r") == "task\\x0aFAKE\\x0d"
    shown = name("x" * 20_000_000)
    assert shown.startswith("x" * NAME_LIMIT) and len(shown) < NAME_LIMIT + 40


def test_what_is_shown_can_be_encoded() -> None:
    for raw, _ in HOSTILE:
        outside(raw).encode("utf-8")
