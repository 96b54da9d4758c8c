"""Issue 21 item 13: every task checks all of its input before it touches the network or the disk.

Each case runs a task as a user does (``python -m invoke``) with an empty cache and one bad input,
where reaching the network would fail differently (an unreachable fork URL or registry, the public
Sigstore instance's TUF repository) or the disk would be touched (the run record, the report, the
nginx base build). It must end with exit 2, a message naming the input, no traceback, no stage
started and nothing written. And `invoke TASK --help` prints each task's help (a positional option
would take `--help` as its value: `invoke reproduce --help` ran the task).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import tasks
from tests.support.cli import run_invoke

NOWHERE = "https://127.0.0.1:1/fork.git"  # resolve would fail here with exit 1, after trying
WHO = ["--certificate-identity", "https://ci.example.test/x", "--certificate-oidc-issuer", "https://i.test"]
REPO = "127.0.0.1:1/team/kaniko-executor"

CASES = [
    (["verify", "--image", f"{REPO}:v1\n", *WHO], "invalid image reference"),
    (["verify", "--image", f"{REPO}:v1", "--type", "bogus", *WHO], "unknown attestation type 'bogus'"),
    (["verify", *WHO], "which image? pass --image REF"),
    (["verify", "--type", "sbom", *WHO], "which image? pass --image REF"),
    (["reproduce", "--image", f"{REPO}:v1\n", *WHO], "invalid image reference"),
    (["reproduce", *WHO], "which image? pass --image REF"),
    (["render", "--target", "nope"], "unknown render target 'nope'"),
    (["render", "--target", "k8s-pod", "--out", "/proc/nope/x.yaml"], "/proc/nope is not a directory"),
    (["fork", "--ref", "v1 2", "--url", NOWHERE], "--ref 'v1 2' names no release"),
    (["release", "--ref", "v1 2", "--fork-url", NOWHERE], "--ref 'v1 2' names no release"),
    (["render", "--target", "k8s-pod", "--variant", "fat"], "unknown --variant 'fat'"),
    (
        ["render", "--target", "k8s-job", "--namespace", "Not A Name"],
        "--namespace 'Not A Name' is not a Kubernetes",
    ),
    (
        ["release", "--prefix", "BAD::PREFIX", "--fork-url", NOWHERE],
        "--prefix 'BAD::PREFIX' is not a repository",
    ),
    (
        ["release", "--report-dir", "/proc/nope/x", "--fork-url", NOWHERE],
        "--report-dir /proc/nope/x cannot be made",
    ),
    (["publish", "--prefix", "BAD::PREFIX"], "--prefix 'BAD::PREFIX' is not a repository prefix"),
    (["publish", "--version", "notsemver"], "version 'notsemver' is not a semantic version"),
    (["sign", "--image", f"{REPO}:v1"], f"{REPO}:v1 names no digest"),
    (["smoke", "--wait", "-1"], "--wait must be a positive number of seconds"),
    (["smoke", "--image", "BAD REF"], "invalid image reference 'BAD REF'"),
    (
        ["build-image", "--executor", f"{REPO}:v1", "--no-verify"],
        f"--executor {REPO}:v1 is not pinned by digest",
    ),
    (["build-image", "--executor", f"{REPO}@sha256:{'a' * 64}"], "needs the signer's identity"),
    (["conformance", "--reference", "bogus"], "--reference 'bogus' is not known"),
    (["nginx-base", "--push-to", "bad host"], "--push-to 'bad host' is not a registry"),
    (["registry.up", "--port", "99999"], "--port 99999 is not a TCP port"),
    (["setup", "--user", "no-such-user-21"], "there is no user 'no-such-user-21'"),
    (["doctor", "--user", "no-such-user-21"], "there is no user 'no-such-user-21'"),
    (["build", "--busybox", "BAD REF"], "invalid image reference 'BAD REF'"),
    (["build", "--go", "/nonexistent/go"], "--go /nonexistent/go does not exist"),
    (["test-e2e", "--conformance", "bogus", "--fork-url", NOWHERE], "--conformance 'bogus' is not known"),
]


@pytest.mark.parametrize(("args", "message"), CASES, ids=[" ".join(a[:3]).strip() for a, _ in CASES])
def test_bad_input_is_refused_before_anything_is_touched(
    args: list[str], message: str, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    result = run_invoke(args, cache=cache, timeout=120)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert "==>" not in result.stderr  # no stage started
    assert not cache.exists() or not any(cache.iterdir()), sorted(cache.rglob("*"))


@pytest.mark.parametrize("name", sorted(tasks.ns.task_names))
def test_every_task_prints_its_help(name: str, tmp_path: Path) -> None:
    result = run_invoke([name, "--help"], cache=tmp_path / "cache")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Usage: inv[oke] [--core-opts] {name}"), result.stdout
    for option in tasks.ns[name].options:
        flag = option.name.replace("_", "-")
        forms = (f"--{flag}", f"--[no-]{flag}", f"-{flag} ")  # on by default; a one-letter option (-k)
        shown = any(form in result.stdout for form in forms)
        assert shown, f"invoke {name} --help: {option.name}"
    assert "error" not in result.stderr.lower()
    assert not (tmp_path / "cache").exists()
