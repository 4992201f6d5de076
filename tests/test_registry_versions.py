"""Version tags follow one grammar before any registry call; a publish is checked by reading
its tag back (kfp's real RegistryClient against the registry stand-in)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.standins.registry import RegistryStandIn
from vertex_rlhf import cli
from vertex_rlhf.cloud import registry
from vertex_rlhf.errors import ConfigError

TEMPLATE_NAME = "rlhf-tuning-1.0.0.yaml"
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
def test_a_concurrent_publish_of_the_same_version_fails_the_loser(
    registry_standin: RegistryStandIn, compiled_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Both found no tag; the other upload lands right after ours and moves the tag."""
    other = (compiled_copy / TEMPLATE_NAME).read_bytes() + b"# another build\n"

    def other_publisher() -> None:
        registry_standin.upload(other, ["1.0.0", "latest"])

    registry_standin.after_upload = other_publisher
    manifest = compiled_copy / "manifest.json"
    before = manifest.read_text()
    args = ["dev", f"vertex_ai.template_registry={registry_standin.url}"]
    status = cli.main(["publish", *args, "--compiled-dir", str(compiled_copy)])
    err = capsys.readouterr().err
    assert status == 13, err
    assert "after the upload, tag 1.0.0 names sha256:" in err
    assert "another publish of 1.0.0 ran at the same time" in err
    assert manifest.read_text() == before  # nothing recorded for a digest the tag does not name
    assert "published" not in json.loads(before)["templates"]["1.0.0"]
