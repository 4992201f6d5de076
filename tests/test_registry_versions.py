"""Version tags follow one grammar before any registry call; a publish is checked by reading
its tag back (kfp's real RegistryClient against the registry stand-in)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import CURRENT_VERSION
from tests.standins.registry import RegistryStandIn
from vertex_rlhf import cli
from vertex_rlhf.cloud import registry
from vertex_rlhf.errors import ConfigError

TEMPLATE_NAME = f"rlhf-tuning-{CURRENT_VERSION}.yaml"
BAD_TAGS = ["", "../x", "2.0.0/../../y", "..", "a/b", "sha256:abc", "sha256:" + "0" * 64, "1" * 129]


@pytest.mark.parametrize("tag", BAD_TAGS)
def test_publish_refuses_a_bad_tag_before_any_request(
    registry_standin: RegistryStandIn, compiled_copy: Path, tag: str
) -> None:
    with pytest.raises(ConfigError, match="is not a tag"):
        registry.publish(registry_standin.url, compiled_copy / TEMPLATE_NAME, tag)
    assert registry_standin.requests == []


@pytest.mark.parametrize("ref", [t for t in BAD_TAGS if t != "sha256:" + "0" * 64])
def test_resolve_refuses_a_bad_reference_before_any_request(
    registry_standin: RegistryStandIn, ref: str
) -> None:
    with pytest.raises(ConfigError, match="is not a tag"):
        registry.resolve(registry_standin.url, "rlhf-tuning", ref)
    assert registry_standin.requests == []


def test_download_needs_a_digest(registry_standin: RegistryStandIn, tmp_path: Path) -> None:
    version = registry.RegistryVersion(registry_standin.url, "rlhf-tuning", "sha256:../../x")
    with pytest.raises(ConfigError):
        registry.download(version, tmp_path)
    assert registry_standin.requests == []


def test_good_tags_pass(registry_standin: RegistryStandIn, compiled_copy: Path) -> None:
    template = compiled_copy / TEMPLATE_NAME
    for tag in ("1.0.0", "v2", "2.0.0-rc.1", "release_2026"):
        published, _ = registry.publish(registry_standin.url, template, tag)
        assert registry.resolve(registry_standin.url, "rlhf-tuning", tag).digest == published.digest


@pytest.mark.usefixtures("project_env")
@pytest.mark.parametrize("lands_after", ["upload", "create_tag"])
def test_a_concurrent_publish_of_the_same_version_fails_the_loser(
    registry_standin: RegistryStandIn,
    compiled_copy: Path,
    capsys: pytest.CaptureFixture[str],
    lands_after: str,
) -> None:
    """Both found no tag; the other publish (an upload that moves tags, as kfp's does)
    lands right after our upload, or right after we created the tag."""
    other = (compiled_copy / TEMPLATE_NAME).read_bytes() + b"# another build\n"
    theirs: list[str] = []

    def other_publisher() -> None:
        theirs.append(registry_standin.upload(other, [CURRENT_VERSION, "latest"])[1])

    registry_standin.after[lands_after] = other_publisher
    manifest = compiled_copy / "manifest.json"
    before = manifest.read_text()
    args = ["dev", f"vertex_ai.template_registry={registry_standin.url}"]
    status = cli.main(["publish", *args, "--compiled-dir", str(compiled_copy)])
    err = capsys.readouterr().err
    assert status == 13, err
    assert f"tag {CURRENT_VERSION} already points at {theirs[0]}, not at this template" in err
    assert "another publish of it has just won" in err
    assert manifest.read_text() == before  # nothing recorded for a digest the tag does not name
    assert "published" not in json.loads(before)["templates"][CURRENT_VERSION]
    if lands_after == "upload":  # we never moved their tag
        assert registry_standin.packages["rlhf-tuning"]["tags"][CURRENT_VERSION] == theirs[0]


def test_the_version_tag_is_created_never_moved(
    registry_standin: RegistryStandIn, compiled_copy: Path
) -> None:
    published, _ = registry.publish(
        registry_standin.url, compiled_copy / TEMPLATE_NAME, CURRENT_VERSION
    )
    methods = [m for m, _ in registry_standin.requests]
    assert "PATCH" not in methods  # latest did not exist: created too
    tags = registry_standin.packages["rlhf-tuning"]["tags"]
    assert tags == {CURRENT_VERSION: published.digest, "latest": published.digest}
