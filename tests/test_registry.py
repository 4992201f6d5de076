"""The template registry, through kfp's real RegistryClient against the local stand-in."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import CURRENT_VERSION
from tests.standins.registry import RegistryStandIn
from vertex_rlhf import cli
from vertex_rlhf.cloud import calls, registry
from vertex_rlhf.errors import AuthError, NetworkError, PipelineError

TEMPLATE_NAME = "rlhf-tuning-1.0.0.yaml"


def variant(compiled: Path, name: str, note: str) -> Path:
    """A template with the same pipeline name but other bytes."""
    target = compiled / name
    target.write_text((compiled / TEMPLATE_NAME).read_text() + f"# {note}\n")
    return target


def test_publish_tags_the_version_and_latest(
    registry_standin: RegistryStandIn, compiled_copy: Path
) -> None:
    template = compiled_copy / TEMPLATE_NAME
    published, uploaded = registry.publish(registry_standin.url, template, "1.0.0")
    assert uploaded
    assert published.digest == registry.file_digest(template)
    assert published.uri == f"{registry_standin.url}/rlhf-tuning/{published.digest}"
    tags = registry_standin.packages["rlhf-tuning"]["tags"]
    assert tags == {"1.0.0": published.digest, "latest": published.digest}


def test_publishing_the_same_content_again_uploads_nothing(
    registry_standin: RegistryStandIn, compiled_copy: Path
) -> None:
    template = compiled_copy / TEMPLATE_NAME
    registry.publish(registry_standin.url, template, "1.0.0")
    posts = [r for r in registry_standin.requests if r[0] == "POST"]
    _, uploaded = registry.publish(registry_standin.url, template, "1.0.0")
    assert not uploaded
    assert [r for r in registry_standin.requests if r[0] == "POST"] == posts


def test_overwriting_a_published_version_is_refused(
    registry_standin: RegistryStandIn, compiled_copy: Path
) -> None:
    original, _ = registry.publish(registry_standin.url, compiled_copy / TEMPLATE_NAME, "1.0.0")
    changed = variant(compiled_copy, "changed.yaml", "changed")
    with pytest.raises(PipelineError) as caught:
        registry.publish(registry_standin.url, changed, "1.0.0")
    assert f"tag 1.0.0 already points at {original.digest}" in caught.value.message
    assert "bump PIPELINE_VERSION" in caught.value.hint
    assert registry_standin.packages["rlhf-tuning"]["tags"]["1.0.0"] == original.digest
    assert len(registry_standin.packages["rlhf-tuning"]["versions"]) == 1


def test_a_new_version_moves_latest_only(
    registry_standin: RegistryStandIn, compiled_copy: Path
) -> None:
    first, _ = registry.publish(registry_standin.url, compiled_copy / TEMPLATE_NAME, "1.0.0")
    second, _ = registry.publish(
        registry_standin.url, variant(compiled_copy, "next.yaml", "1.1.0"), "1.1.0"
    )
    url = registry_standin.url
    assert registry.resolve(url, "rlhf-tuning", "latest").digest == second.digest
    assert registry.resolve(url, "rlhf-tuning", "1.0.0").digest == first.digest
    versions = registry.list_versions(url, "rlhf-tuning")
    assert [v.digest for v in versions] == [second.digest, first.digest]
    assert versions[0].tags == ["1.1.0", "latest"] and versions[1].tags == ["1.0.0"]


def test_resolving_a_missing_tag_lists_the_tags(
    registry_standin: RegistryStandIn, compiled_copy: Path
) -> None:
    registry.publish(registry_standin.url, compiled_copy / TEMPLATE_NAME, "1.0.0")
    with pytest.raises(PipelineError, match=r"no tag '9\.9\.9'; tags that exist: 1\.0\.0, latest"):
        registry.resolve(registry_standin.url, "rlhf-tuning", "9.9.9")
    with pytest.raises(PipelineError, match="no such version"):
        registry.resolve(registry_standin.url, "rlhf-tuning", "sha256:" + "0" * 64)


def test_download_checks_the_bytes_against_the_digest(
    registry_standin: RegistryStandIn, compiled_copy: Path, tmp_path: Path
) -> None:
    published, _ = registry.publish(registry_standin.url, compiled_copy / TEMPLATE_NAME, "1.0.0")
    path = registry.download(published, tmp_path / "ok")
    assert path.read_bytes() == (compiled_copy / TEMPLATE_NAME).read_bytes()
    registry_standin.tamper = True
    with pytest.raises(PipelineError, match="content is sha256:"):
        registry.download(published, tmp_path / "bad")
    assert list((tmp_path / "bad").iterdir()) == []


def test_unreachable_registry_is_a_network_error_within_the_budget(compiled_copy: Path) -> None:
    started = time.monotonic()
    with calls.within(2.0), pytest.raises(NetworkError, match="connection failed"):
        registry.publish("http://127.0.0.1:9", compiled_copy / TEMPLATE_NAME, "1.0.0")
    assert time.monotonic() - started < 5


def test_artifact_registry_without_credentials_is_auth_001(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:9")
    with pytest.raises(AuthError) as caught:
        registry.client("https://us-central1-kfp.pkg.dev/my-project/templates")
    assert caught.value.exit_status == 11
    assert "gcloud auth application-default login" in caught.value.render()


@pytest.mark.usefixtures("project_env")
def test_publish_and_versions_commands(
    registry_standin: RegistryStandIn, compiled_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "dev",
        f"vertex_ai.template_registry={registry_standin.url}",
        "--compiled-dir",
        str(compiled_copy),
    ]
    assert cli.main(["publish", *args]) == 0
    out = capsys.readouterr().out
    manifest = json.loads((compiled_copy / "manifest.json").read_text())
    current = manifest["current"]
    digest = registry.file_digest(compiled_copy / f"rlhf-tuning-{current}.yaml")
    assert f"rlhf-tuning {current}: published" in out and digest in out
    manifest = json.loads((compiled_copy / "manifest.json").read_text())
    assert manifest["templates"][current]["published"] == {registry_standin.url: digest}
    assert cli.main(["publish", *args]) == 0
    assert "already published (same content)" in capsys.readouterr().out
    assert cli.main(["versions", *args]) == 0
    listing = capsys.readouterr().out
    assert digest in listing and f"{current},latest" in listing


@pytest.mark.usefixtures("project_env")
def test_publish_without_a_registry_in_the_parameters(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["publish", "dev"]) == 12
    assert "vertex_ai.template_registry: not set" in capsys.readouterr().err


def test_a_pinned_sha256_digest_resolves_to_that_version(
    registry_standin: RegistryStandIn, compiled_copy: Path
) -> None:
    template = compiled_copy / f"rlhf-tuning-{CURRENT_VERSION}.yaml"
    published, _ = registry.publish(registry_standin.url, template, CURRENT_VERSION)
    version = registry.resolve(registry_standin.url, "rlhf-tuning", published.digest)
    assert (version.host, version.package, version.digest) == (
        registry_standin.url,
        "rlhf-tuning",
        registry.file_digest(template),
    )
    downloaded = registry.download(version, compiled_copy / "downloads")
    assert downloaded.read_bytes() == template.read_bytes()
    other = "sha256:" + "0" * 64
    with pytest.raises(PipelineError, match="no such version"):
        registry.resolve(registry_standin.url, "rlhf-tuning", other)
