"""What a schedule command takes (cron, time zone, name, version) is checked before any
request: CONFIG_002 naming the flag and what it allows, nothing sent, nothing echoed raw."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.standins.registry import RegistryStandIn
from tests.standins.vertex import VertexStandIn
from tests.test_makefile_quoting import run_make
from vertex_rlhf import cli
from vertex_rlhf.config import values
from vertex_rlhf.errors import ConfigError

GOOD_CRONS = [
    ("0 3 * * 1", "0 3 * * 1"),
    ("*/15 * * * *", "*/15 * * * *"),
    ("0 0-23/2 1,15 * *", "0 0-23/2 1,15 * *"),
    ("05 03 * jan-jun mon-fri", "5 3 * JAN-JUN MON-FRI"),
    ("0 3 * * 7", "0 3 * * 7"),  # Sunday, as Cloud Scheduler takes it
    ("0 3 * * SUN,SAT", "0 3 * * SUN,SAT"),
    ("59 23 31 12 *", "59 23 31 12 *"),
    ("0  3 * * 1", "0 3 * * 1"),  # several spaces between fields
    ("TZ=Europe/Paris 0 3 * * 1", "TZ=Europe/Paris 0 3 * * 1"),
    ("CRON_TZ=America/New_York 0 3 * * 1", "CRON_TZ=America/New_York 0 3 * * 1"),
    ("TZ=UTC 0 3 * * 1", "TZ=UTC 0 3 * * 1"),
    ("TZ=America/Argentina/Buenos_Aires 0 3 * * 1", "TZ=America/Argentina/Buenos_Aires 0 3 * * 1"),
    ("TZ=Etc/GMT+5 0 3 * * 1", "TZ=Etc/GMT+5 0 3 * * 1"),
]


@pytest.mark.parametrize(("text", "sent"), GOOD_CRONS)
def test_good_crons_are_sent_normalized(text: str, sent: str) -> None:
    assert str(values.parse_cron(text)) == sent


BAD_CRONS = [
    ("", "is empty"),
    ("   ", "is empty"),
    ("0 3 * *", "has 4 field(s), not 5"),
    ("0 0 3 * * 1", "has 6 field(s), not 5"),
    ("0 3 * * 1 2026", "has 6 field(s)"),
    ("@daily", "macros"),
    ("@reboot", "macros"),
    ("60 * * * *", "minute field '60': 60 is outside 0-59"),
    ("-1 * * * *", "minute field"),
    ("* 24 * * *", "hour field '24': 24 is outside 0-23"),
    ("* * 0 * *", "day of month field '0': 0 is outside 1-31"),
    ("* * 32 * *", "outside 1-31"),
    ("* * * 0 *", "month field '0': 0 is outside 1-12 or JAN-DEC"),
    ("* * * 13 *", "outside 1-12"),
    ("* * * FOO *", "'FOO' is not a number or JAN-DEC"),
    ("* * * * 8", "day of week field '8': 8 is outside 0-6 or SUN-SAT"),
    ("* * * * MONDAY", "not a number or SUN-SAT"),
    ("*/0 * * * *", "step '0' must be a whole number from 1 to 59"),
    ("*/60 * * * *", "from 1 to 59"),
    ("5/15 * * * *", "a step follows * or a range"),
    ("*/x * * * *", "step 'x'"),
    ("6-1 * * * *", "range '6-1' runs backwards"),
    ("1,,2 * * * *", "an empty item"),
    ("1- * * * *", "is not a number"),
    ("0 3 ? * 1", "'?' is not a number"),
    ("0 3 L * *", "'L' is not a number"),
    ("0 3 * * 1#2", "is not a number"),
    ("0 3 1W * *", "is not a number"),
    ("0 0 31 2 *", "it never runs"),
    ("0 0 30,31 2 *", "it never runs"),
    ("0 3 * * 1 ", "spaces before or after"),
    (" 0 3 * * 1", "spaces before or after"),
    ("0\t3 * * 1", "no tabs, newlines"),
    ("0 3 * * 1\n0 4 * * 1", "no tabs, newlines"),
    ("0 3 * * 1\x1b[2J", "printable ASCII"),
    ("\uff10 3 * * 1", "printable ASCII"),  # a full-width digit
    ("0 3 * * 1" + " 1" * 200, "characters long"),
    ("0 3 * * 1; rm -rf /", "field(s)"),
    ("0 3 * * 1 TZ=Europe/Paris", "only a first word TZ="),
    ("0 3 * FOO=1 1", "only a first word TZ="),
    ("0 3 * * 00001", "is not a number"),
]
BAD_ZONES = [
    "TZ=Not/AZone",
    "TZ=../../etc",
    "TZ=../../../etc/passwd",
    "TZ=/etc/localtime",
    "CRON_TZ=/usr/share/zoneinfo/UTC",
    "TZ=",
    "TZ=localtime",
    "TZ=Factory",
    "TZ=posixrules",
    "TZ=Europe/Pari",
    "TZ=europe/paris",
    "TZ=Europe//Paris",
    "TZ=Europe/Paris/",
    "TZ=Europe\\Paris",
    "TZ=" + "A" * 150,
    "TZ=<script>",
]
# Refused by the cron's own rule (printable ASCII) before the zone is looked at.
UNPRINTABLE_ZONES = ["TZ=Europe/Paris\x00", "TZ=\u202eEurope/Paris", "TZ=Europe/París"]


@pytest.mark.parametrize(("text", "why"), BAD_CRONS)
def test_bad_crons_are_refused_saying_what_is_allowed(text: str, why: str) -> None:
    with pytest.raises(ConfigError) as caught:
        values.parse_cron(text, "--cron")
    message = str(caught.value)
    assert why in message and "five fields" in message


@pytest.mark.parametrize("zone", BAD_ZONES)
def test_bad_time_zones_are_refused_as_not_iana_names(zone: str) -> None:
    with pytest.raises(ConfigError) as caught:
        values.parse_cron(f"{zone} 0 3 * * 1", "--cron")
    assert "time zone" in str(caught.value) and "not an IANA time zone name" in str(caught.value)


@pytest.mark.parametrize("zone", UNPRINTABLE_ZONES)
def test_time_zones_with_other_characters_are_refused(zone: str) -> None:
    with pytest.raises(ConfigError, match="printable ASCII"):
        values.parse_cron(f"{zone} 0 3 * * 1", "--cron")


def test_a_misspelt_time_zone_gets_suggestions() -> None:
    with pytest.raises(ConfigError, match="did you mean Europe/Paris"):
        values.parse_cron("TZ=Europe/Pari 0 3 * * 1")


def test_the_iana_database_is_there_whatever_the_system_has() -> None:
    import importlib.metadata

    assert importlib.metadata.version("tzdata")  # the pinned package, not only /usr/share
    assert {"UTC", "Europe/Paris", "America/New_York"} <= values.time_zones()


BAD_NAMES = [
    "",
    "A",
    "Weekly",
    "1weekly",
    "-x",
    "x-",
    "x_y",
    "x.y",
    "x y",
    "../x",
    "x/y",
    "x;rm -rf /",
    "$(touch x)",
    "a" * 31,
    "wöchentlich",
    "\u202eevil",
    "<script>",
    "x\x1b[2J",
    "x\n",
]
BAD_VERSIONS = [
    "",
    "../1.2.0",
    "1.2.0/../x",
    "1..2",
    "-1",
    ".1",
    "sha256:abc",
    "sha256:" + "G" * 64,
    "SHA256:" + "0" * 64,
    "a" * 129,
    "1.2.0;rm",
    "1.2.0 ",
    "1.2.0\n",
    "\u202e1.2.0",
    "<script>",
]


@pytest.fixture
def standins(project_env: str) -> Iterator[tuple[VertexStandIn, RegistryStandIn]]:
    vertex, registry = VertexStandIn().start(), RegistryStandIn().start()
    yield vertex, registry
    vertex.stop()
    registry.stop()


def _command(
    vertex: VertexStandIn, registry: RegistryStandIn, *flags: str, command: str = "schedule"
) -> list[str]:
    return [
        command,
        "dev",
        *flags,
        f"vertex_ai.api_endpoint={vertex.url}",
        f"vertex_ai.template_registry={registry.url}",
        "vertex_ai.pipeline_root=gs://rlhf-schedules-test/root",
    ]


def _refused(
    argv: list[str],
    capsys: pytest.CaptureFixture[str],
    standins: tuple[VertexStandIn, RegistryStandIn],
    flag: str,
) -> str:
    assert cli.main(argv) == 12
    err = capsys.readouterr().err
    assert err.startswith("error[CONFIG_002]: ") and flag in err
    assert "\x1b" not in err and "\u202e" not in err and "Traceback" not in err
    vertex, registry = standins
    assert vertex.requests == [] and registry.requests == []  # checked before any request
    return err


@pytest.mark.parametrize(
    "cron",
    [
        *(text for text, _ in BAD_CRONS),
        *(f"{zone} 0 3 * * 1" for zone in BAD_ZONES + UNPRINTABLE_ZONES),
    ],
)
def test_the_cli_refuses_a_bad_cron_before_any_request(
    standins: tuple[VertexStandIn, RegistryStandIn], capsys: pytest.CaptureFixture[str], cron: str
) -> None:
    _refused(_command(*standins, f"--cron={cron}"), capsys, standins, "--cron (make CRON)")


@pytest.mark.parametrize("name", BAD_NAMES)
@pytest.mark.parametrize(
    "command", ["schedule", "schedule-pause", "schedule-resume", "schedule-delete"]
)
def test_the_cli_refuses_a_bad_schedule_name_before_any_request(
    standins: tuple[VertexStandIn, RegistryStandIn],
    capsys: pytest.CaptureFixture[str],
    name: str,
    command: str,
) -> None:
    flags = [f"--name={name}"] + (["--cron=0 3 * * 1"] if command == "schedule" else [])
    err = _refused(_command(*standins, *flags, command=command), capsys, standins, "--name")
    assert "1-30 of a-z, 0-9 and -" in err


@pytest.mark.parametrize("version", BAD_VERSIONS)
def test_the_cli_refuses_a_bad_version_before_any_request(
    standins: tuple[VertexStandIn, RegistryStandIn],
    capsys: pytest.CaptureFixture[str],
    version: str,
) -> None:
    argv = _command(*standins, "--cron=0 3 * * 1", f"--version={version}")
    err = _refused(argv, capsys, standins, "--version (make VERSION)")
    assert "is not a tag" in err


def test_make_passes_schedule_variables_as_literal_words(tmp_path: Path) -> None:
    cron, name, version = "TZ=Europe/Paris 0 3 * * 1", "$(touch x);y", "1.2.0 `id`"
    assert run_make(tmp_path, "schedule", ENV="prod", CRON=cron, NAME=name, VERSION=version) == [
        "schedule",
        "prod",
        f"--cron={cron}",
        f"--version={version}",
        f"--name={name}",
    ]
    assert run_make(tmp_path, "schedules", ENV="prod") == ["schedules", "prod"]
    for verb in ("pause", "resume", "delete"):
        target = f"schedule-{verb}"
        assert run_make(tmp_path, target, ENV="prod", NAME=name) == [
            target,
            "prod",
            f"--name={name}",
        ]
    assert not (Path.cwd() / "x").exists()
    # A value that starts with "-" is still the flag's value, not another flag.
    assert run_make(tmp_path, "schedule-delete", NAME="-x")[-1] == "--name=-x"


@pytest.mark.parametrize(
    ("target", "variables", "needed"),
    [
        ("schedule", {}, "set CRON="),
        ("schedule-pause", {}, "set NAME="),
        ("schedule-resume", {}, "set NAME="),
        ("schedule-delete", {}, "set NAME="),
    ],
)
def test_make_says_which_variable_is_missing(
    tmp_path: Path, target: str, variables: dict[str, str], needed: str
) -> None:
    import shutil
    import subprocess

    from tests.conftest import REPO

    result = subprocess.run(
        [shutil.which("make") or "make", "-s", target, "RLHF=/bin/false", "BIN=/nonexistent"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2  # make's status for a failed recipe (it exited 12)
    assert f"error[CONFIG_002]: {needed}" in result.stderr
