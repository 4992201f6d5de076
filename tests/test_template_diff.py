"""``rlhf diff A B``: what changed between two template versions.

The expected facts are read from the committed YAMLs here, with plain dict walks (an
oracle independent of ``template.diff``), never copied from the command's output.
Registry refs go through kfp's real RegistryClient against the local stand-in.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO
from tests.standins.registry import RegistryStandIn
from tests.test_outside_text_in_every_view import HOSTILE, VARIANTS, Hostile, assert_safe
from vertex_rlhf import cli
from vertex_rlhf.cloud import registry
from vertex_rlhf.config import values
from vertex_rlhf.errors import ConfigError, PipelineError
from vertex_rlhf.template import diff
from vertex_rlhf.usecases import diff as usecase
from vertex_rlhf.usecases.setting import compiled_folder
from vertex_rlhf.views import diff as view
from vertex_rlhf.views.text import name

COMPILED = REPO / "compiled"
MANIFEST = json.loads((COMPILED / "manifest.json").read_text(encoding="utf-8"))
# GCPC's RLHF graph compiles under its pipeline's name; GCPC's e-mail op under its own.
GCPC_GRAPH = "comp-rlhf-train-template"
GCPC_EMAIL = "comp-vertex-pipelines-notification-email"
# A raw control character, bidi mark or C1 character on a screen line.
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def file_of(version: str) -> Path:
    base, _, variant = version.partition("-")
    entry = MANIFEST["templates"][base]
    return COMPILED / (entry[variant]["file"] if variant else entry["file"])


def load(version: str) -> dict[str, Any]:
    return yaml.safe_load(file_of(version).read_text(encoding="utf-8"))


def reached(spec: dict[str, Any], start: str) -> set[str]:
    """The oracle's walk: ``start`` and the components its DAG reaches."""
    seen, todo = set(), [start]
    while todo:
        comp = todo.pop()
        if comp in seen or comp not in spec["components"]:
            continue
        seen.add(comp)
        tasks = spec["components"][comp].get("dag", {}).get("tasks", {})
        todo += [t["componentRef"]["name"] for t in tasks.values()]
    return seen


def gcpc_part(spec: dict[str, Any]) -> dict[str, Any]:
    """GCPC's graph and e-mail op with everything they reach, and their executors."""
    names = set()
    for start in (GCPC_GRAPH, GCPC_EMAIL):
        names |= reached(spec, start)
    comps = {n: spec["components"][n] for n in names}
    labels = {c["executorLabel"] for c in comps.values() if "executorLabel" in c}
    executors = spec["deploymentSpec"]["executors"]
    return {"components": comps, "executors": {k: executors[k] for k in labels}}


def body_tasks(spec: dict[str, Any]) -> set[str]:
    tasks = dict(spec["root"]["dag"]["tasks"])
    for comp, body in spec["components"].items():
        if comp.startswith("comp-exit-handler-"):
            tasks.update(body["dag"]["tasks"])
    return set(tasks)


def expected(a_version: str, b_version: str) -> dict[str, Any]:
    """What the two YAMLs say changed, by plain comparison."""
    a, b = load(a_version), load(b_version)
    a_in = a["root"]["inputDefinitions"]["parameters"]
    b_in = b["root"]["inputDefinitions"]["parameters"]
    keys = {"parameterType": "type", "defaultValue": "default", "isOptional": "optional"}
    changed_inputs = {}
    for key in a_in.keys() & b_in.keys():
        aspects = {v for k, v in keys.items() if a_in[key].get(k) != b_in[key].get(k)}
        if a_in[key].get("description") != b_in[key].get("description"):
            aspects.add("description")
        if aspects:
            changed_inputs[key] = aspects
    a_comps = {**a["components"], "root": a["root"]}
    b_comps = {**b["components"], "root": b["root"]}
    a_ex, b_ex = a["deploymentSpec"]["executors"], b["deploymentSpec"]["executors"]
    changed_comps = {
        c
        for c in a_comps.keys() & b_comps.keys()
        if a_comps[c] != b_comps[c]
        or a_ex.get(a_comps[c].get("executorLabel")) != b_ex.get(b_comps[c].get("executorLabel"))
    }
    image = re.compile(r"google-cloud-pipeline-components:(\S+)$")
    return {
        "inputs_added": set(b_in) - set(a_in),
        "inputs_removed": set(a_in) - set(b_in),
        "inputs_changed": changed_inputs,
        "components_added": set(b["components"]) - set(a["components"]),
        "components_removed": set(a["components"]) - set(b["components"]),
        "components_changed": changed_comps,
        "tasks_added": body_tasks(b) - body_tasks(a),
        "tasks_removed": body_tasks(a) - body_tasks(b),
        "kfp": (a["sdkVersion"].removeprefix("kfp-"), b["sdkVersion"].removeprefix("kfp-")),
        "gcpc": tuple(
            tuple(
                sorted(
                    {
                        m.group(1)
                        for e in spec["deploymentSpec"]["executors"].values()
                        if (m := image.search(e["container"]["image"]))
                    }
                )
            )
            for spec in (a, b)
        ),
        "gcpc_identical": gcpc_part(a) == gcpc_part(b),
        "gcpc_added": set(gcpc_part(b)["components"]) - set(gcpc_part(a)["components"]),
        "gcpc_removed": set(gcpc_part(a)["components"]) - set(gcpc_part(b)["components"]),
    }


def run_diff(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = cli.main(["diff", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def diff_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    status, out, err = run_diff(capsys, *args, "--json")
    assert status == 0, err
    found: dict[str, Any] = json.loads(out)
    return found


def assert_facts(found: dict[str, Any], want: dict[str, Any]) -> None:
    assert {i["name"] for i in found["inputs"]["added"]} == want["inputs_added"]
    assert {i["name"] for i in found["inputs"]["removed"]} == want["inputs_removed"]
    assert {c["name"]: set(c["aspects"]) for c in found["inputs"]["changed"]} == want[
        "inputs_changed"
    ]
    assert {c["name"] for c in found["components"]["added"]} == want["components_added"]
    assert {c["name"] for c in found["components"]["removed"]} == want["components_removed"]
    assert {c["name"] for c in found["components"]["changed"]} == want["components_changed"]
    assert set(found["tasks"]["added"]) == want["tasks_added"]
    assert set(found["tasks"]["removed"]) == want["tasks_removed"]
    assert (found["a"]["kfp"], found["b"]["kfp"]) == want["kfp"]
    assert (tuple(found["a"]["gcpc"]), tuple(found["b"]["gcpc"])) == want["gcpc"]
    assert found["gcpc"]["identical"] is want["gcpc_identical"]
    assert set(found["gcpc"]["added"]) == want["gcpc_added"]
    assert set(found["gcpc"]["removed"]) == want["gcpc_removed"]


# --- the committed versions -------------------------------------------------------------


def test_1_1_1_to_1_2_0_reports_what_the_yamls_differ_in(
    capsys: pytest.CaptureFixture[str],
) -> None:
    found = diff_json(capsys, "1.1.1", "1.2.0")
    want = expected("1.1.1", "1.2.0")
    assert_facts(found, want)
    # What the two files hold, stated: 1.2.0 dropped the always-on e-mail exit handler.
    assert want["inputs_removed"] == {"notify_emails"}
    assert GCPC_EMAIL in want["components_removed"] and want["gcpc_identical"] is False
    for side, version in (("a", "1.1.1"), ("b", "1.2.0")):
        assert found[side]["source"] == "compiled"
        assert found[side]["digest"] == "sha256:" + MANIFEST["templates"][version]["sha256"]
        assert found[side]["manifest"] == {
            "kfp": MANIFEST["templates"][version]["kfp"],
            "gcpc": MANIFEST["templates"][version]["google_cloud_pipeline_components"],
        }


def test_1_2_0_to_its_notify_variant_adds_the_email_task_and_component(
    capsys: pytest.CaptureFixture[str],
) -> None:
    found = diff_json(capsys, "1.2.0", "1.2.0-notify")
    want = expected("1.2.0", "1.2.0-notify")
    assert_facts(found, want)
    notify = load("1.2.0-notify")
    handler = notify["components"]["comp-exit-handler-1"]["dag"]["tasks"]
    email_task = next(
        t for t, body in notify["root"]["dag"]["tasks"].items() if "triggerPolicy" in body
    )
    assert email_task in found["tasks"]["added"] and email_task not in handler
    assert {"name": GCPC_EMAIL, "part": "gcpc"} in found["components"]["added"]
    assert found["gcpc"]["added"] == [GCPC_EMAIL] and not found["gcpc"]["changed"]
    assert found["b"]["location"].endswith(MANIFEST["templates"]["1.2.0"]["notify"]["file"])


def test_the_rlhf_graph_of_gcpc_is_byte_identical_across_versions_of_one_gcpc(
    capsys: pytest.CaptureFixture[str],
) -> None:
    found = diff_json(capsys, "1.0.0", "1.2.0")
    want = expected("1.0.0", "1.2.0")
    assert_facts(found, want)
    assert want["gcpc_identical"] is True
    assert found["gcpc"]["a_sha256"] == found["gcpc"]["b_sha256"]


def test_a_version_against_itself_changes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    found = diff_json(capsys, "1.2.0", "1.2.0")
    assert found["same_file"] is True
    assert not any(found["inputs"][k] for k in ("added", "removed", "changed"))
    assert not any(found["components"][k] for k in ("added", "removed", "changed"))
    assert found["components"]["unchanged"] == len(load("1.2.0")["components"]) + 1  # + root
    assert found["gcpc"]["identical"] is True


def test_the_text_says_what_the_json_says(capsys: pytest.CaptureFixture[str]) -> None:
    found = diff_json(capsys, "1.1.1", "1.2.0")
    status, text, _ = run_diff(capsys, "1.1.1", "1.2.0")
    assert status == 0
    lines = text.splitlines()
    for item in found["inputs"]["removed"]:
        assert any(line.startswith(f"  - {item['name']}  ") for line in lines)
    for item in found["inputs"]["changed"]:
        assert any(line.startswith(f"  ~ {item['name']}  ") for line in lines)
    for item in found["components"]["removed"]:
        assert f"  - {item['name']} ({item['part']})" in lines
    for item in found["components"]["changed"]:
        assert f"  ~ {item['name']} ({item['part']}): {', '.join(item['aspects'])}" in lines
    for task in found["tasks"]["removed"]:
        assert f"  - {task}" in lines
    assert f"  kfp     {found['a']['kfp']} (same)" in lines
    assert f"  GCPC    {found['a']['gcpc'][0]} (same)" in lines
    verdict = "byte-identical" if found["gcpc"]["identical"] else "NOT byte-identical"
    assert any(line.startswith(f"GCPC part: {verdict} ") for line in lines)
    for side, label in (("a", "A"), ("b", "B")):
        assert f"  {label}  {found[side]['ref']} = compiled file " in text
        assert found[side]["digest"] in text


def test_the_local_diff_imports_no_cloud_sdk() -> None:
    import subprocess
    import sys

    probe = (
        "import sys\nfrom vertex_rlhf.cli import main\n"
        "status = main(['diff', '1.1.1', '1.2.0'])\n"
        "print('HEAVY', sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('kfp', 'google_cloud_pipeline_components')"
        " or m.startswith('google.cloud.aiplatform')))\n"
        "sys.exit(status)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout


# --- bad references ---------------------------------------------------------------------

BAD_REFS = [
    "../x",
    "../../etc/passwd",
    "compiled/rlhf-tuning-1.2.0.yaml",
    "/etc/passwd",
    "1.2.0;rm",
    "1.2.0 -rf",
    "$(touch x)",
    "",
    "a" * 200,
    "sha256:zz",
    "sha256:" + "A" * 64,
    "sha256:" + "0" * 63,
    "-1.2.0",
    ".hidden",
    "1..2",
    "1.2.0\n",
    "1.2.0\x1b[31m",
    "https://example.com/x",
]


@pytest.mark.usefixtures("project_env")
@pytest.mark.parametrize("bad", BAD_REFS)
@pytest.mark.parametrize("side", ["A", "B"])
def test_bad_references_are_config_002_before_anything_is_read(
    bad: str,
    side: str,
    capsys: pytest.CaptureFixture[str],
    registry_standin: RegistryStandIn,
) -> None:
    refs = [bad, "1.2.0"] if side == "A" else ["1.2.0", bad]
    # Options first, then -- (as make diff passes them): a ref may start with a dash.
    registry_set = f"vertex_ai.template_registry={registry_standin.url}"
    status, out, err = run_diff(capsys, "--env", "dev", "--", *refs, registry_set)
    assert status == 12 and not out
    assert err.startswith(f"error[CONFIG_002]: {side}: version ")
    assert "is not a tag" in err and "Traceback" not in err
    assert registry_standin.requests == []
    assert not RAW_CONTROL.search(err)


@pytest.mark.parametrize("bad", ["../x", "1.2.0;rm", "", "sha256:zz", "a" * 200])
def test_the_typed_parser_refuses_what_names_refuses(bad: str) -> None:
    with pytest.raises(ConfigError) as caught:
        values.template_version("A")(bad)
    assert caught.value.exit_status == 12
    assert len(caught.value.render()) < 400  # a long value is quoted in part


@pytest.mark.parametrize(
    "good", ["1.2.0", "1.2.0-notify", "latest", "v2_rc.1", "sha256:" + "0" * 64]
)
def test_the_typed_parser_keeps_tags_and_digests(good: str) -> None:
    parsed = values.template_version("A")(good)
    assert parsed.text == good and parsed.is_digest == good.startswith("sha256:")


def known_versions() -> list[str]:
    found = []
    for version, entry in MANIFEST["templates"].items():
        found.append(version)
        if "notify" in entry:
            found.append(f"{version}-notify")
    return sorted(found)


@pytest.mark.parametrize("unknown", ["9.9.9", "latest", "1.2.0.yaml", "sha256:" + "0" * 64])
def test_an_unknown_version_lists_the_known_ones(
    unknown: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run_diff(capsys, "1.1.1", unknown)
    assert status == 12 and not out
    assert f"error[CONFIG_002]: B {unknown!r}: no such template" in err
    assert f"compiled in {compiled_folder(None)}/: {', '.join(known_versions())}" in err
    assert "vertex_ai.template_registry" in err


def test_overrides_without_an_environment_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run_diff(capsys, "1.1.1", "1.2.0", "vertex_ai.template_registry=x")
    assert status == 12 and "need --env ENV" in err


def test_a_manifest_cannot_point_outside_compiled(tmp_path: Path) -> None:
    compiled = tmp_path / "compiled"
    shutil.copytree(COMPILED, compiled)
    (tmp_path / "outside.yaml").write_text((COMPILED / "rlhf-tuning-1.2.0.yaml").read_text())
    manifest = json.loads((compiled / "manifest.json").read_text())
    manifest["templates"]["6.6.6"] = {"file": "../outside.yaml"}
    (compiled / "manifest.json").write_text(json.dumps(manifest))
    assert "6.6.6" not in usecase.compiled_versions(compiled)
    with pytest.raises(ConfigError, match="no such template"):
        usecase.diff(*(values.TemplateVersion(v) for v in ("1.2.0", "6.6.6")), compiled)


# --- the registry, through kfp's RegistryClient -----------------------------------------


def registry_args(standin: RegistryStandIn, compiled: Path) -> list[str]:
    return [
        "--env",
        "dev",
        f"vertex_ai.template_registry={standin.url}",
        "--compiled-dir",
        str(compiled),
    ]


@pytest.mark.usefixtures("project_env")
def test_registry_tags_are_resolved_and_downloaded_by_digest(
    registry_standin: RegistryStandIn, compiled_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    digests = {}
    for version in ("1.1.1", "1.2.0"):
        published, _ = registry.publish(
            registry_standin.url, compiled_copy / file_of(version).name, version
        )
        digests[version] = published.digest
    registry_standin.requests.clear()
    found = diff_json(capsys, "1.1.1", "1.2.0", *registry_args(registry_standin, compiled_copy))
    assert_facts(found, expected("1.1.1", "1.2.0"))
    for side, version in (("a", "1.1.1"), ("b", "1.2.0")):
        assert found[side]["source"] == "registry" and found[side]["manifest"] is None
        assert found[side]["digest"] == digests[version]
        assert found[side]["location"] == f"{registry_standin.url}/rlhf-tuning/{digests[version]}"
    fetched = [p for m, p in registry_standin.requests if m == "GET" and "sha256" in p]
    assert sorted(fetched) == sorted(f"/rlhf-tuning/{d}" for d in digests.values())


@pytest.mark.usefixtures("project_env")
def test_a_compiled_digest_needs_no_request_and_an_unpublished_tag_is_the_compiled_file(
    registry_standin: RegistryStandIn, compiled_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry.publish(registry_standin.url, compiled_copy / file_of("1.2.0").name, "1.2.0")
    digest = "sha256:" + MANIFEST["templates"]["1.1.1"]["sha256"]
    registry_standin.requests.clear()
    found = diff_json(
        capsys, digest, "1.2.0-notify", *registry_args(registry_standin, compiled_copy)
    )
    assert found["a"]["source"] == "compiled" and found["a"]["version"] == "1.1.1"
    assert found["b"]["source"] == "compiled"
    assert found["b"]["note"] == f"not published in {registry_standin.url}; the compiled file"
    assert all("sha256" not in p for _, p in registry_standin.requests)  # nothing downloaded
    _, text, _ = run_diff(
        capsys, digest, "1.2.0-notify", *registry_args(registry_standin, compiled_copy)
    )
    assert "note: not published in" in text


@pytest.mark.usefixtures("project_env")
def test_an_unknown_registry_tag_lists_compiled_versions_and_registry_tags(
    registry_standin: RegistryStandIn, compiled_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry.publish(registry_standin.url, compiled_copy / file_of("1.2.0").name, "1.2.0")
    status, _, err = run_diff(
        capsys, "1.2.0", "7.7.7", *registry_args(registry_standin, compiled_copy)
    )
    assert status == 12
    assert f"B '7.7.7': no such version; compiled in {compiled_copy}/: " in err
    assert "tags in the registry: 1.2.0, latest" in err
    status, _, err = run_diff(
        capsys, "1.2.0", "sha256:" + "e" * 64, *registry_args(registry_standin, compiled_copy)
    )
    assert status == 12 and "nor a version of rlhf-tuning in" in err


@pytest.mark.usefixtures("project_env")
def test_a_registry_tag_with_other_bytes_than_the_compiled_version_is_noted(
    registry_standin: RegistryStandIn,
    compiled_copy: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    other = tmp_path / "other.yaml"
    other.write_text(file_of("1.1.1").read_text(encoding="utf-8") + "# rebuilt\n")
    published, _ = registry.publish(registry_standin.url, other, "1.1.1")
    found = diff_json(capsys, "1.1.1", "1.2.0", *registry_args(registry_standin, compiled_copy))
    mine = "sha256:" + MANIFEST["templates"]["1.1.1"]["sha256"]
    assert found["a"]["source"] == "registry" and found["a"]["digest"] == published.digest
    assert found["a"]["note"] == f"compiled/ holds other bytes under 1.1.1 ({mine})"
    assert found["b"]["source"] == "compiled"  # not published: the compiled file
    assert_facts(found, expected("1.1.1", "1.2.0"))  # a comment: the same spec


@pytest.mark.usefixtures("project_env")
def test_registry_bytes_that_do_not_match_the_digest_are_refused(
    registry_standin: RegistryStandIn, compiled_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry.publish(registry_standin.url, compiled_copy / file_of("1.2.0").name, "1.2.0")
    registry_standin.tamper = True
    status, out, err = run_diff(
        capsys, "1.1.1", "1.2.0", *registry_args(registry_standin, compiled_copy)
    )
    assert status == 13 and not out and "content is sha256:" in err


# --- hostile templates ------------------------------------------------------------------

HOSTILE_DEFAULT = "\x1b[31mred\x07\u202eevil<script>alert(1)</script>\x9b"
HOSTILE_IMAGE = "evil.example/img\x1b]0;owned\x07:1\u202e"
HOSTILE_NAME = "kl\x1b[2Jcoeff\u2066"


def hostile_template(source: Path, target: Path) -> Path:
    spec = yaml.safe_load(source.read_text(encoding="utf-8"))
    inputs = spec["root"]["inputDefinitions"]["parameters"]
    inputs["encryption_spec_key_name"]["defaultValue"] = HOSTILE_DEFAULT
    inputs[HOSTILE_NAME] = {"parameterType": "STRING\x1b[0m", "defaultValue": "x" * 5000}
    first = sorted(spec["deploymentSpec"]["executors"])[0]
    spec["deploymentSpec"]["executors"][first]["container"]["image"] = HOSTILE_IMAGE
    spec["components"]["comp-\x1b[1mbold"] = {"executorLabel": "none"}
    target.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return target


def assert_escaped(text: str) -> None:
    assert not RAW_CONTROL.search(text)
    assert "\\x1b" in text and "\\u202e" in text


def test_hostile_text_in_a_compiled_template_is_escaped(
    compiled_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile_template(compiled_copy / "rlhf-tuning-1.2.0.yaml", compiled_copy / "evil.yaml")
    manifest = json.loads((compiled_copy / "manifest.json").read_text())
    manifest["templates"]["6.6.6"] = {"file": "evil.yaml"}
    (compiled_copy / "manifest.json").write_text(json.dumps(manifest))
    status, text, _ = run_diff(capsys, "1.2.0", "6.6.6", "--compiled-dir", str(compiled_copy))
    assert status == 0
    assert_escaped(text)
    assert f'default "" -> {name(json.dumps(HOSTILE_DEFAULT, ensure_ascii=False), 80)}' in text
    assert name(HOSTILE_IMAGE) in text and name(HOSTILE_NAME) in text
    assert max(len(line) for line in text.splitlines()) < 1200  # 5000 x's bounded
    found = diff_json(capsys, "1.2.0", "6.6.6", "--compiled-dir", str(compiled_copy))
    changed = {c["name"]: c for c in found["inputs"]["changed"]}
    assert changed["encryption_spec_key_name"]["b"]["default"] == HOSTILE_DEFAULT
    assert HOSTILE_IMAGE in found["images"]["added"]
    assert {i["name"] for i in found["inputs"]["added"]} == {HOSTILE_NAME}


@pytest.mark.usefixtures("project_env")
def test_hostile_text_in_a_published_template_is_escaped(
    registry_standin: RegistryStandIn,
    compiled_copy: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    evil = hostile_template(compiled_copy / "rlhf-tuning-1.2.0.yaml", tmp_path / "evil.yaml")
    published, _ = registry.publish(registry_standin.url, evil, "evil")
    for ref in ("evil", published.digest):
        status, text, err = run_diff(
            capsys, "1.2.0", ref, *registry_args(registry_standin, compiled_copy)
        )
        assert status == 0, err
        assert_escaped(text)
        assert (
            f"  B  {ref} = registry {registry_standin.url}/rlhf-tuning/{published.digest}" in text
        )


# --- malformed templates (the pure comparison and the loader) ---------------------------


@pytest.mark.parametrize(
    "text",
    [
        "[1, 2]",
        "just text",
        "root: {}\n",
        "pipelineInfo: x\nroot: {}\n",
        "a: &a [*a]\n",  # a recursive alias
        "x: &x {k: 1}\ny: *x\npipelineInfo: {}\nroot: {}\n",  # a shared alias
        "[" * 200 + "]" * 200,
        "\xff\xfe",
        "key: [unclosed\n",
    ],
)
def test_a_file_that_is_not_a_compiled_pipeline_is_pipeline_003(tmp_path: Path, text: str) -> None:
    path = tmp_path / "t.yaml"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(PipelineError) as caught:
        usecase.load(path, "B (t.yaml)")
    assert caught.value.exit_status == 13
    assert "B (t.yaml): not a" in caught.value.message


def test_odd_shapes_and_cycles_are_compared_without_failing() -> None:
    looped = {
        "pipelineInfo": {"name": 3},
        "root": {"dag": {"tasks": {"t": {"componentRef": {"name": "comp-a"}}}}},
        "components": {
            "comp-a": {"dag": {"tasks": {"u": {"componentRef": {"name": "comp-a"}}}}},
            "comp-b": "not a mapping",
        },
        "deploymentSpec": {"executors": ["not", "a", "mapping"]},
        "sdkVersion": 7,
    }
    found = diff.compare(diff.check_spec(looped, "a"), diff.check_spec(load("1.2.0"), "b"))
    assert found.a.kfp == "" and found.a.pipeline == "" and found.a.gcpc == ()
    assert "comp-rlhf-train-template" in {c.name for c in found.components_added}
    assert found.gcpc.a_components == 0 and not found.gcpc.identical


def test_a_gcpc_upgrade_shows_in_versions_images_and_the_gcpc_part() -> None:
    old = load("1.2.0")
    new = json.loads(json.dumps(old))
    for executor in new["deploymentSpec"]["executors"].values():
        executor["container"]["image"] = executor["container"]["image"].replace(
            ":2.22.0", ":2.23.0"
        )
    found = diff.compare(old, new)
    assert found.a.gcpc == ("2.22.0",) and found.b.gcpc == ("2.23.0",)
    assert len(found.images_changed) == len(old["deploymentSpec"]["executors"])
    assert found.images_added == ("gcr.io/ml-pipeline/google-cloud-pipeline-components:2.23.0",)
    assert not found.gcpc.identical
    assert set(found.gcpc.changed) == {
        c for c in gcpc_part(old)["components"] if "executorLabel" in old["components"][c]
    }
    text = view.render(
        usecase.DiffReport(
            usecase.TemplateSource("x", "compiled", "x.yaml", "sha256:1", "x"),
            usecase.TemplateSource("y", "compiled", "y.yaml", "sha256:2", "y"),
            found,
        )
    )
    assert "  GCPC    2.22.0 -> 2.23.0  CHANGED" in text


def test_make_diff_passes_the_versions_raw_after_a_double_dash(tmp_path: Path) -> None:
    from tests.test_makefile_quoting import run_make

    mark = tmp_path / "injected"
    hostile = f"$(shell touch {mark});-x"
    assert run_make(tmp_path, "diff", A="-1.2.0", B=hostile) == ["diff", "--", "-1.2.0", hostile]
    assert run_make(tmp_path, "diff", A="1.1.1", B="1.2.0", ENV="prod", JSON="1") == [
        "diff",
        "--env",
        "prod",
        "--json=1",
        "--",
        "1.1.1",
        "1.2.0",
    ]
    assert not mark.exists()


def test_make_diff_refuses_overrides_without_an_environment_instead_of_dropping_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`make diff A=1.1.1 B=latest OVERRIDES=vertex_ai.template_registry=...` without ENV=
    dropped the registry, then said 'latest' is no such template."""
    from tests.test_makefile_quoting import cli_argv, run_make

    overrides = "vertex_ai.template_registry=https://us-central1-kfp.pkg.dev/p/r"
    argv = run_make(tmp_path, "diff", A="1.1.1", B="latest", OVERRIDES=overrides)
    assert argv[-2:] == ["--shell-words", overrides]
    assert cli.main(cli_argv(argv)) == 12
    err = capsys.readouterr().err
    assert "KEY=VALUE overrides (vertex_ai.template_registry=" in err
    assert "need --env ENV (make: ENV=...)" in err


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v != "lone-surrogate"])
def test_every_hostile_text_of_the_views_table_is_shown_escaped_and_bounded(
    variant: str, compiled_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = HOSTILE[variant]
    spec = load("1.2.0")
    spec["root"]["inputDefinitions"]["parameters"]["kl_coeff"]["defaultValue"] = hostile.raw
    shown = hostile.raw[:300]  # names: a huge one stays a (long) name, the value stays huge
    spec["root"]["inputDefinitions"]["parameters"][shown] = {"parameterType": "STRING"}
    first = sorted(spec["deploymentSpec"]["executors"])[0]
    spec["deploymentSpec"]["executors"][first]["container"]["image"] = shown
    (compiled_copy / "evil.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    manifest = json.loads((compiled_copy / "manifest.json").read_text())
    manifest["templates"]["6.6.6"] = {"file": "evil.yaml"}
    (compiled_copy / "manifest.json").write_text(json.dumps(manifest))
    status, text, err = run_diff(capsys, "1.2.0", "6.6.6", "--compiled-dir", str(compiled_copy))
    assert status == 0, err
    assert_safe(text, Hostile(shown, hostile.shown))
    assert "  ~ kl_coeff  type NUMBER_DOUBLE" not in text  # the type is the same
    assert any(line.startswith("  ~ kl_coeff  default 0.1 -> ") for line in text.splitlines())
