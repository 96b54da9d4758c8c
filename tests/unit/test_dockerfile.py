"""The Dockerfile model: what it reads from the final stages, and a changed shape is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import ImageError
from pipeline.image import dockerfile
from tests.support.fixture_fork import DOCKERFILE

BUSYBOX = "sha256:" + "ab" * 32


def _read(tmp_path: Path, text: str) -> dockerfile.Dockerfile:
    (tmp_path / "deploy").mkdir(exist_ok=True)
    (tmp_path / "deploy" / "Dockerfile").write_text(text)
    return dockerfile.read(tmp_path)


def _text() -> str:
    return DOCKERFILE.format(zero="0" * 64, busybox=BUSYBOX)


def test_final_stages_config(tmp_path: Path) -> None:
    model = _read(tmp_path, _text())
    assert model.busybox_digest == BUSYBOX
    base_env = [
        "HOME=/root",
        "USER=root",
        "PATH=/usr/local/bin:/kaniko",
        "SSL_CERT_DIR=/kaniko/ssl/certs",
        "DOCKER_CONFIG=/kaniko/.docker/",
        "DOCKER_CREDENTIAL_GCR_CONFIG=/kaniko/.config/gcloud/docker_credential_gcr_config.json",
    ]
    executor = model.configs["executor"]
    assert executor.env_list() == base_env
    assert (executor.workdir, executor.volumes, executor.entrypoint) == (
        "/workspace",
        (),
        ("/kaniko/executor",),
    )
    warmer = model.configs["warmer"]
    assert warmer.entrypoint == ("/kaniko/warmer",) and warmer.workdir == "/workspace"
    debug = model.configs["debug"]
    assert debug.env_list()[2] == "PATH=/usr/local/bin:/kaniko:/busybox"
    assert debug.volumes == ("/busybox",) and debug.entrypoint == ("/kaniko/executor",)
    slim = model.configs["slim"]
    assert slim.env_list() == base_env[:4]
    assert slim.workdir is None and slim.entrypoint == ("/kaniko/executor",)


def test_env_changes_are_read_not_refused(tmp_path: Path) -> None:
    text = _text().replace("ENV USER=root", 'ENV USER=root LANG="C.UTF-8"')
    model = _read(tmp_path, text)
    assert "LANG=C.UTF-8" in model.configs["slim"].env_list()


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        (
            "COPY --from=builder /src/out/warmer /kaniko/warmer\n\nENTRYPOINT",
            "COPY --from=builder /src/out/warmer /kaniko/warmer\nCOPY extra /kaniko/extra\n\nENTRYPOINT",
            "stage kaniko-warmer has an unexpected `COPY extra /kaniko/extra`",
        ),
        (
            "FROM kaniko-base-slim AS kaniko-slim",
            "FROM kaniko-base AS kaniko-slim",
            "stage kaniko-slim is FROM kaniko-base",
        ),
        ("FROM busybox:musl@", "FROM busybox:glibc@", "the busybox stage is FROM busybox:glibc@"),
        ("AS kaniko-debug", "AS kaniko-debugger", "there is no `kaniko-debug` stage"),
        ('RUN ["/busybox/ln", "-s", "/busybox/sh", "/bin/sh"]', "", '`RUN ["/busybox/ln"'),
        (
            "RUN go install github.com/chrismellard/docker-credential-acr-env",
            "RUN go install example.com/other-helper",
            "no longer has `RUN go install github.com/chrismellard/docker-credential-acr-env`",
        ),
    ],
)
def test_a_changed_shape_names_what_differs(tmp_path: Path, old: str, new: str, named: str) -> None:
    text = _text()
    assert old in text
    with pytest.raises(ImageError) as caught:
        _read(tmp_path, text.replace(old, new, 1))
    assert named in caught.value.message
    assert "changed shape" in caught.value.message
    assert caught.value.hint and "pipeline/image/dockerfile.py" in caught.value.hint


def test_missing_dockerfile(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="has no deploy/Dockerfile"):
        dockerfile.read(tmp_path)


def test_continuations_and_comments_are_joined(tmp_path: Path) -> None:
    stages = dockerfile.parse("FROM a AS b\nRUN one \\\n  # a comment\n  two\nENV A=1\n")
    assert [(i.kind, i.args) for i in stages[0].instructions] == [("RUN", "one two"), ("ENV", "A=1")]
