"""The publish stage against the real distribution registry, read back with skopeo and plain requests."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
from pathlib import Path

import pytest
import requests

from pipeline import config, record
from pipeline.errors import ImageError
from pipeline.oci import mediatype
from pipeline.oci.layout import Layout
from pipeline.policy import tagplan
from pipeline.progress import Progress, Silent
from pipeline.registry.client import Client
from pipeline.registry.credentials import Credentials
from pipeline.services import distribution
from pipeline.services.distribution import LocalRegistry
from pipeline.stages import publish
from tests.conftest import require_tool
from tests.support.cli import run_invoke
from tests.support.layouts import build_layout
from tests.support.registries import AuthRegistry
from tests.support.skopeo import authfile

ACCEPT = ", ".join(sorted(mediatype.ALL_MANIFEST_TYPES))


def _digest_of(url: str, repository: str, tag: str, auth: tuple[str, str] | None = None) -> str | None:
    response = requests.head(
        f"{url}/v2/{repository}/manifests/{tag}", headers={"Accept": ACCEPT}, auth=auth, timeout=10
    )
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.status_code
    return response.headers["Docker-Content-Digest"]


def _tags(url: str, repository: str) -> set[str]:
    return set(requests.get(f"{url}/v2/{repository}/tags/list", timeout=10).json()["tags"])


def _settings(cache: Path, env: dict[str, str], **values: object) -> config.Settings:
    return config.Settings.load({"cache_dir": str(cache), **values}, env=env)


def _clean_env(tmp_path: Path) -> dict[str, str]:
    """No Docker Hub variables, and a Docker config directory with nothing in it."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "INVOKE_PIPELINE_"))}
    env["HOME"] = str(home)
    env["DOCKER_CONFIG"] = str(home / ".docker")
    return env


def test_publish_pushes_every_variant_with_its_tags(registry: LocalRegistry, tmp_path: Path) -> None:
    skopeo = require_tool("skopeo", "it reads back what was pushed, as an independent client")
    layout, images = build_layout(tmp_path / "layout")
    prefix = f"{registry.host}/team"
    with Client(credentials=Credentials.anonymous()) as client:
        out = publish.publish_images(client, layout, images, prefix, progress=Silent())
    assert list(out) == ["executor", "debug", "slim", "warmer"]
    for variant, image in out.items():
        assert image.digest == images[variant].digest
    assert out["executor"].tags == ["v1.25.16", "v1.25", "v1", "latest"]
    assert out["debug"].tags == ["v1.25.16-debug", "v1.25-debug", "v1-debug", "debug"]
    assert out["warmer"].repository == f"{prefix}/kaniko-warmer"
    assert _tags(registry.url, "team/kaniko-executor") == {
        *out["executor"].tags,
        *out["debug"].tags,
        *out["slim"].tags,
    }
    assert _tags(registry.url, "team/kaniko-warmer") == set(out["warmer"].tags)
    for image in out.values():
        repo = image.repository.split("/", 1)[1]
        for tag in image.tags:
            assert _digest_of(registry.url, repo, tag) == image.digest
    with authfile() as auth:
        raw = subprocess.run(
            [
                skopeo,
                "inspect",
                "--raw",
                "--tls-verify=false",
                *auth,
                f"docker://{prefix}/kaniko-executor:v1.25.16-slim",
            ],
            capture_output=True,
            check=True,
        ).stdout
        amd64 = subprocess.run(
            [
                skopeo,
                "inspect",
                "--tls-verify=false",
                "--override-arch=arm64",
                *auth,
                f"docker://{prefix}/kaniko-warmer:latest",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    assert raw == layout.read_blob(images["slim"].digest)
    assert json.loads(amd64)["Architecture"] == "arm64"


def test_publishing_again_uploads_nothing(registry: LocalRegistry, tmp_path: Path) -> None:
    layout, images = build_layout(tmp_path / "layout", variants=("executor", "warmer"))
    prefix = f"{registry.host}/again"
    with Client(credentials=Credentials.anonymous()) as client:
        first = publish.publish_images(client, layout, images, prefix)
        second = publish.publish_images(client, layout, images, prefix)
    assert all(image.bytes_uploaded > 0 for image in first.values())
    assert [image.bytes_uploaded for image in second.values()] == [0, 0]
    assert {v: i.digest for v, i in first.items()} == {v: i.digest for v, i in second.items()}


def test_rolling_tags_never_move_backwards(registry: LocalRegistry, tmp_path: Path) -> None:
    prefix = f"{registry.host}/hist"
    repo = "hist/kaniko-executor"
    digests = {}
    with Client(credentials=Credentials.anonymous()) as client:
        for version in ("1.25.9", "2.0.0", "1.25.16"):
            layout, images = build_layout(tmp_path / version, version=version, variants=("executor",))
            out = publish.publish_images(client, layout, images, prefix)
            digests[version] = out["executor"].digest
        assert out["executor"].tags == ["v1.25.16", "v1.25", "v1"]
        assert out["executor"].kept == {"latest": "2.0.0"}
        # a pre-release, newest of all, gets only its exact tag
        layout, images = build_layout(tmp_path / "rc", version="2.1.0-rc.1", variants=("executor",))
        rc = publish.publish_images(client, layout, images, prefix)
    assert rc["executor"].tags == ["v2.1.0-rc.1"]
    assert _digest_of(registry.url, repo, "latest") == digests["2.0.0"]
    assert _digest_of(registry.url, repo, "v2") == digests["2.0.0"]
    assert _digest_of(registry.url, repo, "v1") == digests["1.25.16"]
    assert _digest_of(registry.url, repo, "v1.25") == digests["1.25.16"]
    assert _digest_of(registry.url, repo, "v1.25.9") == digests["1.25.9"]


def test_version_tags_only_leaves_rolling_tags_pending(registry: LocalRegistry, tmp_path: Path) -> None:
    layout, images = build_layout(tmp_path / "layout", variants=("debug",))
    with Client(credentials=Credentials.anonymous()) as client:
        out = publish.publish_images(client, layout, images, f"{registry.host}/pend", rolling=False)
        assert out["debug"].tags == ["v1.25.16-debug"]
        assert out["debug"].pending_rolling == ["v1.25-debug", "v1-debug", "debug"]
        assert _tags(registry.url, "pend/kaniko-executor") == {"v1.25.16-debug"}
        plan = tagplan.plan_variant("1.25.16", "debug", f"{registry.host}/pend")
        publish.move_rolling(client, layout, images["debug"], plan)
    assert _tags(registry.url, "pend/kaniko-executor") == {
        "v1.25.16-debug",
        "v1.25-debug",
        "v1-debug",
        "debug",
    }


def test_run_from_the_build_record(registry: LocalRegistry, tmp_path: Path, cache_dir: Path) -> None:
    layout, images = build_layout(tmp_path / "layout", variants=("executor", "slim"))
    settings = _settings(cache_dir, _clean_env(tmp_path), prefix=f"{registry.host}/rec")
    record.save(
        settings.record_file,
        "build",
        {
            "layout": str(layout.root),
            "images": {
                v: {"digest": d.digest, "platforms": ["linux/amd64", "linux/arm64"]}
                for v, d in images.items()
            },
        },
    )
    result = publish.run(settings, rolling=False)
    assert result == {
        "images": {
            "executor": {
                "repository": f"{registry.host}/rec/kaniko-executor",
                "digest": images["executor"].digest,
                "tags": ["v1.25.16"],
            },
            "slim": {
                "repository": f"{registry.host}/rec/kaniko-executor",
                "digest": images["slim"].digest,
                "tags": ["v1.25.16-slim"],
            },
        }
    }
    saved = record.stage(settings.record_file, "publish", needed_by="test")
    assert saved["pending_rolling"]["executor"] == ["v1.25", "v1", "latest"]


def test_run_without_prefix_or_credentials_uses_the_embedded_registry(
    tmp_path: Path, cache_dir: Path
) -> None:
    require_tool("docker-registry", "the embedded registry is the distribution registry")
    layout, images = build_layout(tmp_path / "layout", variants=("warmer",))
    settings = _settings(cache_dir, _clean_env(tmp_path))
    embedded = distribution.up(cache_dir, port=distribution.free_port())  # a free port, not the default 5000
    try:
        stderr = io.StringIO()
        result = publish.run(settings, layout_dir=layout.root, progress=Progress(stderr, interactive=False))
        assert result["images"]["warmer"]["repository"] == f"{embedded.host}/kaniko-warmer"
        assert "embedded local registry" in stderr.getvalue()
        assert _digest_of(embedded.url, "kaniko-warmer", "latest") == images["warmer"].digest
    finally:
        distribution.down(cache_dir)


def test_layout_without_variant_names_is_refused(tmp_path: Path, cache_dir: Path) -> None:
    layout = Layout.create(tmp_path / "empty")
    settings = _settings(cache_dir, _clean_env(tmp_path), prefix="127.0.0.1:1/x")
    with pytest.raises(ImageError, match="names no image variant"):
        publish.run(settings, layout_dir=layout.root)


def test_publish_task_with_docker_config_credentials(
    registry_htpasswd: AuthRegistry, tmp_path: Path, cache_dir: Path
) -> None:
    layout, images = build_layout(tmp_path / "layout", variants=("executor",))
    env = _clean_env(tmp_path)
    docker = Path(env["DOCKER_CONFIG"])
    docker.mkdir(parents=True)
    auth = base64.b64encode(f"{registry_htpasswd.username}:{registry_htpasswd.password}".encode()).decode()
    (docker / "config.json").write_text(json.dumps({"auths": {registry_htpasswd.host: {"auth": auth}}}))
    env["INVOKE_PIPELINE_CACHE_DIR"] = str(cache_dir)
    done = run_invoke(
        ["publish", "--layout", str(layout.root), "--prefix", f"{registry_htpasswd.host}/sec", "--json"],
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["images"]["executor"]["digest"] == images["executor"].digest
    assert out["images"]["executor"]["tags"] == ["v1.25.16", "v1.25", "v1", "latest"]
    for text in (done.stdout, done.stderr, (cache_dir / "runs" / "last.json").read_text()):
        assert registry_htpasswd.password not in text
        assert auth not in text
    digest = _digest_of(registry_htpasswd.url, "sec/kaniko-executor", "latest", registry_htpasswd.auth)
    assert digest == images["executor"].digest


def test_publish_task_reports_bad_input_without_a_traceback(tmp_path: Path, cache_dir: Path) -> None:
    env = {**_clean_env(tmp_path), "INVOKE_PIPELINE_CACHE_DIR": str(cache_dir)}
    done = run_invoke(
        ["publish", "--layout", str(tmp_path / "nope"), "--prefix", "x.io/a"], env=env, timeout=60
    )
    assert done.returncode == 1
    assert "not an OCI image layout" in done.stderr and "Traceback" not in done.stderr
