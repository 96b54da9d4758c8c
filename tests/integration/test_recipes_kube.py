"""The rendered Kubernetes recipes run by a real engine: `podman kube play` (podman 4.3) plays the Pod
and the Job's pod with the fixture fork's executor pinned by digest, under the recipes' own security
profile, and the tests check what the executor did: the tarball the Pod writes with --no-push
--tar-path, the image the Job pushes with the credentials from its read-only Secret.

What podman 4.3 cannot play, and what these tests do about it:
- kinds Job and Namespace ("YAML document does not contain any supported kube kind"): the Job's pod
  template is played as a Pod of the same name; the Namespace and the Job's own fields are checked by
  the strict schema validation in tests/unit/test_render.py only;
- ``hostUsers: false`` becomes ``--userns=auto``, which needs a subordinate ID range for the user
  ``containers`` in /etc/subuid and /etc/subgid; on a machine without one the field is left out;
- a Secret volume's ``items`` (ignored) and a Secret volume without ``optional`` (podman crashes): the
  recipes avoid both (the Secret's key is config.json, and ``optional: false`` is spelled out).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import secrets
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from pipeline.errors import ContainerError
from pipeline.services.podman import Podman
from pipeline.stages import render
from tests.conftest import require_tool
from tests.support import fakeexecutor
from tests.support.recipeimages import Published
from tests.support.registries import AuthRegistry

pytestmark = pytest.mark.slow

README_CAPS = f"{(1 << 0) | (1 << 1) | (1 << 3):016x}"  # CHOWN, DAC_OVERRIDE, FOWNER
ACCEPT = "application/vnd.oci.image.manifest.v1+json"


def has_auto_userns_range() -> bool:
    """Whether podman can give a pod its own user namespace (``hostUsers: false``) on this machine."""
    try:
        return all(
            any(line.startswith("containers:") for line in Path(path).read_text().splitlines())
            for path in ("/etc/subuid", "/etc/subgid")
        )
    except OSError:
        return False


def playable(pod_spec: dict[str, Any]) -> list[str]:
    """Fields of the rendered spec that podman 4.3 cannot play here, removed; returns their names."""
    removed = []
    if pod_spec.get("hostUsers") is False and not has_auto_userns_range():
        del pod_spec["hostUsers"]
        removed.append("hostUsers")
    return removed


PAUSE_IMAGE = "localhost/podman-pause"


class Kube:
    """`podman kube play` with the project's podman configuration; removes what it played at the end."""

    def __init__(self, podman: Podman, workdir: Path) -> None:
        self.podman = podman
        self.workdir = workdir
        self.suffix = secrets.token_hex(4)
        self.pods: list[str] = []
        self.volumes: list[str] = []
        self.secrets: list[str] = []
        self.pause_before = self._pause_images()

    def _pause_images(self) -> set[str]:
        """Podman's pause image (localhost/podman-pause:VERSION), which it builds in its storage the first
        time it plays a pod there: removed at the end when this test's pod made it."""
        listed = self.podman.command(
            ["images", "--quiet", "--no-trunc", f"--filter=reference={PAUSE_IMAGE}"],
            what="listing podman's pause image",
            check=False,
        )
        return set(listed.stdout.split())

    def volume(self, name: str, content: Path) -> Path:
        """A named volume (what a PersistentVolumeClaim plays as) holding a copy of ``content``."""
        self.podman.command(["volume", "create", name], what="creating a volume")
        self.volumes.append(name)
        mountpoint = Path(
            self.podman.command(
                ["volume", "inspect", "--format={{.Mountpoint}}", name], what="inspecting a volume"
            ).stdout.strip()
        )
        for path in content.iterdir():
            (mountpoint / path.name).write_bytes(path.read_bytes())
        return mountpoint

    def play(self, documents: list[dict[str, Any]], *options: str) -> None:
        path = self.workdir / f"play-{len(self.pods) + len(self.secrets)}.yaml"
        path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
        for doc in documents:
            if doc["kind"] == "Pod":
                self.pods.append(doc["metadata"]["name"])
            if doc["kind"] == "Secret":
                self.secrets.append(doc["metadata"]["name"])
        self.podman.command(["kube", "play", *options, str(path)], what="podman kube play", timeout=300)

    def secret(self, secret: dict[str, Any]) -> None:
        """Store a Secret the way `kube play` stores one (as its YAML), from stdin: never in argv."""
        name = secret["metadata"]["name"]
        subprocess.run(
            [self.podman.binary, "secret", "create", name, "-"],
            input=yaml.safe_dump(secret),
            env=self.podman.env,
            capture_output=True,
            text=True,
            check=True,
        )
        self.secrets.append(name)

    def wait(self, container: str) -> tuple[int, str]:
        """Wait for ``container`` to exit; its exit status and its log."""
        result = self.podman.command(["wait", container], what=f"waiting for {container}", timeout=300)
        return int(result.stdout.strip()), self.podman.logs(container)

    def close(self) -> None:
        for pod in self.pods:
            self.podman.command(["pod", "rm", "--force", pod], what="removing a pod", check=False)
        for name in self.volumes:
            self.podman.command(["volume", "rm", "--force", name], what="removing a volume", check=False)
        for name in self.secrets:
            self.podman.command(["secret", "rm", name], what="removing a secret", check=False)
            # podman 4.3 keeps a secret volume as a named volume of the secret's name
            self.podman.command(["volume", "rm", "--force", name], what="removing a volume", check=False)
        # another session's pod may still use it (shared podman storage): then it stays, and says so there
        for image in sorted(self._pause_images() - self.pause_before):
            self.podman.command(["rmi", image], what="removing podman's pause image", check=False)


@pytest.fixture
def kube(podman: Podman, tmp_path: Path) -> Iterator[Kube]:
    require_tool("podman", "podman kube play runs the Kubernetes recipes")
    engine = Kube(podman, tmp_path)
    yield engine
    engine.close()


def project(tmp_path: Path) -> Path:
    path = tmp_path / "context"
    path.mkdir()
    (path / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
    (path / "hello.txt").write_text("hello from the workspace volume\n")
    return path


def test_podman_kube_play_runs_the_rendered_pod_and_it_writes_the_tarball(
    published: Published,
    kube: Kube,
    tmp_path: Path,
) -> None:
    name = f"kp-pod-{kube.suffix}"
    text = render.render(
        "k8s-pod",
        published.executor,
        destination="registry.test/app:tarball",
        name=name,
        tar_path="/workspace/image.tar",
    ).text
    (pod,) = [d for d in yaml.safe_load_all(text) if d]
    left_out = playable(pod["spec"])
    context = project(tmp_path)
    workspace = kube.volume(f"{name}-workspace", context)
    kube.play([pod])
    status, log = kube.wait(f"{name}-kaniko")
    assert status == 0, log[-3000:]
    (seen,) = fakeexecutor.reports(log)
    assert (seen["uid"], seen["cap_eff"], seen["no_new_privs"]) == (0, README_CAPS, "1"), left_out
    assert "--no-push" in seen["argv"] and seen["pushed"] == ""

    # the tarball is an image archive that an independent client reads, named by --destination,
    # and its layer says which Dockerfile the executor read from the workspace volume
    tarball = workspace / "image.tar"
    skopeo = require_tool("skopeo", "it reads the image archive independently")
    inspected = json.loads(
        subprocess.run(
            [skopeo, "inspect", f"docker-archive:{tarball}"], capture_output=True, text=True, check=True
        ).stdout
    )
    assert len(inspected["Layers"]) == 1
    with tarfile.open(tarball) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
        assert manifest[0]["RepoTags"] == ["registry.test/app:tarball"]
        layer = archive.extractfile(manifest[0]["Layers"][0]).read()  # type: ignore[union-attr]
    with tarfile.open(fileobj=io.BytesIO(layer)) as inner:
        built = inner.extractfile("fakekaniko.txt").read().decode()  # type: ignore[union-attr]
    dockerfile_digest = "sha256:" + hashlib.sha256((context / "Dockerfile").read_bytes()).hexdigest()
    assert f"dockerfile {dockerfile_digest}" in built


def docker_config_secret(name: str, dest: AuthRegistry) -> dict[str, Any]:
    """The Secret the Job mounts, as `kubectl create secret generic NAME --from-file=config.json=...`
    makes it from a Docker config, except that podman 4.3 needs its ``data`` unencoded: it mounts a
    played Secret's values without base64-decoding them (and ignores ``stringData``)."""
    auth = base64.b64encode(f"{dest.username}:{dest.password}".encode()).decode()
    config = json.dumps({"auths": {dest.host: {"auth": auth}}})
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "type": "Opaque",
        "data": {"config.json": config},
    }


def test_the_jobs_pod_pushes_with_the_read_only_secret(
    published: Published,
    kube: Kube,
    registry_htpasswd: AuthRegistry,
    tmp_path: Path,
) -> None:
    name = f"kp-job-{kube.suffix}"
    destination = f"{registry_htpasswd.host}/team/app:{kube.suffix}"
    text = render.render("k8s-job", published.executor, destination=destination, name=name).text
    namespace, job = (d for d in yaml.safe_load_all(text) if d)
    assert (namespace["kind"], job["kind"]) == ("Namespace", "Job")
    with pytest.raises(ContainerError, match="does not contain any supported kube kind"):
        kube.play([namespace, job], "--start=false")  # podman 4.3 plays neither kind

    # the Job's pod, as the Job controller would create it
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": job["spec"]["template"]["spec"],
    }
    left_out = playable(pod["spec"])
    (kaniko,) = pod["spec"]["containers"]
    kaniko["args"].append("--insecure")  # the test registry speaks plain HTTP, as a user would add
    kube.volume(f"{name}-workspace", project(tmp_path))
    kube.secret(docker_config_secret(f"{name}-docker-config", registry_htpasswd))
    kube.play([pod], "--network=host")  # the registry listens on the host's 127.0.0.1
    status, log = kube.wait(f"{name}-kaniko")
    assert status == 0, log[-3000:]
    (seen,) = fakeexecutor.reports(log)
    assert (seen["uid"], seen["cap_eff"], seen["no_new_privs"]) == (0, README_CAPS, "1"), left_out
    # the Secret's config.json is what the executor read, from a read-only mount
    auth = base64.b64encode(f"{registry_htpasswd.username}:{registry_htpasswd.password}".encode()).decode()
    assert seen["auth_sha256"] == {registry_htpasswd.host: hashlib.sha256(auth.encode()).hexdigest()}
    assert "read-only file system" in seen["config_write_error"]
    response = requests.head(
        f"{registry_htpasswd.url}/v2/team/app/manifests/{kube.suffix}",
        headers={"Accept": ACCEPT},
        auth=registry_htpasswd.auth,
        timeout=10,
    )
    assert response.status_code == 200 and response.headers["Docker-Content-Digest"] == seen["pushed"]
