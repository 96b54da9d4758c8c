"""Issue 15 items 10 and 11: kaniko gets host networking only for a loopback registry, and says so.

With --network=host every RUN step of the user's Dockerfile reaches the host's 127.0.0.1, so it is
used only when the destination, the mirror (or the base image's registry) is a loopback registry:
127.0.0.0/8, ::1 or localhost itself. ``*.localhost`` is a name like any other (no plain HTTP either).
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from pipeline.progress import Progress
from pipeline.registry.reference import Reference
from pipeline.services import kaniko

DIGEST = "sha256:" + "cd" * 32


def _request(context: Path, destination: str, **extra: object) -> kaniko.BuildRequest:
    (context / "Dockerfile").write_text("FROM scratch\n")
    return kaniko.BuildRequest(
        executor=Reference.parse(f"registry.example/kaniko/executor@{DIGEST}"),
        destination=Reference.parse(destination),
        context=context,
        **extra,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("destination", "extra"),
    [
        ("docker.io/someone/app:v1", {}),
        ("registry.localhost:5000/team/app:v1", {}),
        ("ghcr.io/team/app:v1", {"registry_mirror": "mirror.localhost:5000"}),
        ("ghcr.io/team/app:v1", {"registry_mirror": "mirror.example", "base_image": "a.localhost/nginx:1"}),
    ],
)
def test_no_loopback_registry_means_no_host_network_and_no_plain_http(
    tmp_path: Path, destination: str, extra: dict[str, object]
) -> None:
    request = _request(tmp_path, destination, **extra)
    spec = kaniko.run_spec(request, tmp_path / "c.json", tmp_path / "out", "kp-n")
    assert spec.network is None and not [a for a in spec.argv() if a.startswith("--network")]
    assert not [a for a in kaniko.executor_args(request) if "insecure" in a]
    network, why = kaniko.network_for(request)
    assert network is None and "default network" in why


@pytest.mark.parametrize(
    ("destination", "extra", "named"),
    [
        ("127.0.0.1:5000/team/app:v1", {}, "127.0.0.1:5000"),
        ("localhost:5000/team/app:v1", {}, "localhost:5000"),
        ("docker.io/someone/app:v1", {"registry_mirror": "127.0.0.1:5001"}, "127.0.0.1:5001"),
        ("docker.io/someone/app:v1", {"registry_mirror": "[::1]:5002"}, "[::1]:5002"),
    ],
)
def test_a_loopback_destination_or_mirror_gets_host_network_and_the_log_says_why(
    tmp_path: Path, destination: str, extra: dict[str, object], named: str
) -> None:
    request = _request(tmp_path, destination, **extra)
    assert "--network=host" in kaniko.run_spec(request, tmp_path / "c.json", tmp_path / "o", "kp-n").argv()
    network, why = kaniko.network_for(request)
    assert network == "host" and named in why and "127.0.0.1" in why and "RUN steps" in why
    stream = io.StringIO()
    (Progress(stream, interactive=False).warn)(why)
    assert "--network=host" in stream.getvalue()
