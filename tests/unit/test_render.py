"""Rendered deploy recipes: pinned by digest, the security profile, and valid for their consumers
(strict Kubernetes schemas, the GitLab runner's own config keys)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.errors import ConfigError, PipelineError
from pipeline.recipes import kubernetes
from pipeline.stages import render
from tests.support import manifests
from tests.support.cli import run_invoke

EXECUTOR = "docker.io/team/kaniko-executor@sha256:" + "ab" * 32
DEBUG = "docker.io/team/kaniko-executor@sha256:" + "cd" * 32
RUNNER_KEYS = json.loads((Path(__file__).parents[1] / "support" / "gitlab_runner_keys.json").read_text())


def documents(target: str, **options: Any) -> list[dict[str, Any]]:
    options.setdefault("destination", "registry.test/app:1")
    return [d for d in yaml.safe_load_all(render.render(target, EXECUTOR, **options).text) if d]


def container(spec: dict[str, Any]) -> dict[str, Any]:
    (only,) = spec["containers"]
    assert isinstance(only, dict)
    return only


def test_the_validator_offers_a_newer_kubernetes_than_the_oldest_supported() -> None:
    oldest, newest = manifests.versions()
    assert tuple(map(int, newest.split(".")[:2])) > tuple(map(int, oldest.split(".")[:2]))


@pytest.mark.parametrize(
    ("target", "options"),
    [
        ("k8s-pod", {}),
        ("k8s-pod", {"tar_path": "/workspace/image.tar"}),
        ("k8s-job", {}),
        ("k8s-job", {"name": "build-7", "namespace": "ci"}),
    ],
)
def test_every_rendered_manifest_passes_strict_validation(target: str, options: dict[str, Any]) -> None:
    docs = documents(target, **options)
    assert docs
    for doc in docs:
        assert manifests.errors(doc) == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["spec"].update(hostUser=False), "'hostUser' was unexpected"),  # a typo
        (lambda d: container(d["spec"])["securityContext"].update(capabilites={}), "'capabilites'"),
        (lambda d: d["spec"].update(restartPolicy=7), "7 is not of type 'string'"),
        (lambda d: container(d["spec"]).pop("name"), "'name' is a required property"),
    ],
)
def test_an_invalid_manifest_fails_validation_for_both_versions(mutate: Any, expected: str) -> None:
    (pod,) = documents("k8s-pod")
    mutate(pod)
    found = manifests.errors(pod)
    assert len(found) == 2, found
    assert all(expected in line for line in found), found


def test_pod_has_the_security_profile_and_mounts() -> None:
    (pod,) = documents("k8s-pod")
    spec = pod["spec"]
    assert spec["hostUsers"] is False and spec["restartPolicy"] == "Never"
    assert spec["automountServiceAccountToken"] is False
    kaniko = container(spec)
    assert kaniko["image"] == EXECUTOR
    ctx = kaniko["securityContext"]
    assert ctx["allowPrivilegeEscalation"] is False and ctx["privileged"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"], "add": ["CHOWN", "FOWNER", "DAC_OVERRIDE"]}
    assert "--destination=registry.test/app:1" in kaniko["args"] and "--no-push" not in kaniko["args"]
    mounts = {m["mountPath"]: m for m in kaniko["volumeMounts"]}
    assert mounts["/kaniko/.docker"]["readOnly"] is True
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["docker-config"]["secret"] == {"secretName": "kaniko-docker-config", "optional": False}
    assert volumes["workspace"]["persistentVolumeClaim"] == {"claimName": "kaniko-workspace"}


def test_a_tar_path_pod_builds_without_pushing_or_credentials() -> None:
    (pod,) = documents("k8s-pod", tar_path="/workspace/image.tar", name="tarball")
    kaniko = container(pod["spec"])
    assert kaniko["args"][-2:] == ["--no-push", "--tar-path=/workspace/image.tar"]
    assert [m["mountPath"] for m in kaniko["volumeMounts"]] == ["/workspace"]
    assert pod["spec"]["volumes"] == [
        {"name": "workspace", "persistentVolumeClaim": {"claimName": "tarball-workspace"}}
    ]


def test_the_job_runs_in_a_baseline_namespace_and_cleans_up() -> None:
    text = render.render("k8s-job", EXECUTOR, destination="r.test/a:1", namespace="builds").text
    ns, job = (d for d in yaml.safe_load_all(text) if d)
    assert ns["kind"] == "Namespace" and ns["metadata"]["name"] == "builds"
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"
    assert job["kind"] == "Job" and job["metadata"]["namespace"] == "builds"
    assert job["spec"]["backoffLimit"] == kubernetes.BACKOFF_LIMIT
    assert job["spec"]["ttlSecondsAfterFinished"] == kubernetes.TTL_AFTER_FINISHED
    spec = job["spec"]["template"]["spec"]
    assert spec["restartPolicy"] == "Never"
    mount = next(m for m in container(spec)["volumeMounts"] if m["name"] == "docker-config")
    assert (mount["mountPath"], mount["readOnly"]) == ("/kaniko/.docker", True)
    # the header says how to make the Secret, in the Job's namespace, from the user's Docker config
    assert "kubectl create secret generic kaniko-docker-config --namespace=builds" in text


def test_baseline_is_the_strictest_standard_kaniko_passes() -> None:
    """restricted allows adding no capability but NET_BIND_SERVICE and forbids root; baseline allows
    these three (Pod Security Standards); the README says so too."""
    (pod,) = documents("k8s-pod")
    baseline_caps = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD"}
    baseline_caps |= {"NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
    added = set(container(pod["spec"])["securityContext"]["capabilities"]["add"])
    assert added <= baseline_caps and not added <= {"NET_BIND_SERVICE"}


def _unknown_keys(table: dict[str, Any], known: list[str], where: str) -> list[str]:
    return [f"{where}.{key}" for key in table if key not in known]


def test_gitlab_runner_is_toml_with_only_the_runners_keys() -> None:
    config = tomllib.loads(render.render("gitlab-runner", DEBUG, destination="r/a:1").text)
    tables = RUNNER_KEYS["tables"]
    unknown = _unknown_keys(config, tables["config"], "")
    (runner,) = config["runners"]
    unknown += _unknown_keys(runner, tables["runner"], "runners")
    kube = runner["kubernetes"]
    unknown += _unknown_keys(kube, tables["kubernetes"], "runners.kubernetes")
    for patch in kube["pod_spec"]:
        unknown += _unknown_keys(patch, tables["kubernetes.pod_spec"], "runners.kubernetes.pod_spec")
    unknown += [f"feature flag {f}" for f in runner["feature_flags"] if f not in RUNNER_KEYS["feature_flags"]]
    assert unknown == []
    assert runner["executor"] == "kubernetes"
    assert kube["image"] == DEBUG and kube["allowed_images"] == [DEBUG]
    assert kube["allow_privilege_escalation"] is False and kube["privileged"] is False
    assert kube["cap_drop"] == ["ALL"] and sorted(kube["cap_add"]) == ["CHOWN", "DAC_OVERRIDE", "FOWNER"]
    (patch,) = kube["pod_spec"]
    assert patch["patch_type"] == "strategic" and json.loads(patch["patch"]) == {"hostUsers": False}
    assert runner["feature_flags"] == {"FF_USE_ADVANCED_POD_SPEC_CONFIGURATION": True}


def test_the_runner_key_check_catches_a_key_the_runner_does_not_have() -> None:
    """host_users is what this recipe once said; the runner has no such key and would ignore it."""
    text = render.render("gitlab-runner", DEBUG, destination="r/a:1").text
    config = tomllib.loads(text.replace("privileged = false", "host_users = false", 1))
    kube = config["runners"][0]["kubernetes"]
    assert _unknown_keys(kube, RUNNER_KEYS["tables"]["kubernetes"], "k") == ["k.host_users"]


def test_gitlab_ci_job_runs_the_debug_image_and_keeps_credentials_out_of_argv() -> None:
    text = render.render("gitlab-ci", DEBUG, destination="r/a:1", variant="debug").text
    job = yaml.safe_load(text)["build-image"]
    assert job["image"] == {"name": DEBUG, "entrypoint": [""]}
    executor_line = next(line for line in job["script"] if line.startswith("/kaniko/executor"))
    assert "PASSWORD" not in executor_line and "--digest-file=" in executor_line
    assert "/kaniko/.docker/config.json" in job["script"][1]
    assert job["artifacts"] == {"paths": ["image-digest"]}


@pytest.mark.parametrize("target", ["gitlab-ci", "gitlab-runner"])
@pytest.mark.parametrize("variant", ["executor", "slim", "warmer"])
def test_gitlab_recipes_refuse_a_variant_without_a_shell(target: str, variant: str) -> None:
    with pytest.raises(ConfigError) as info:
        render.render(target, EXECUTOR, destination="r/a:1", variant=variant)
    assert info.value.exit_code == 2
    assert f"the {variant} image has no shell" in info.value.message
    assert "--variant debug" in (info.value.hint or "")


def test_gitlab_recipes_default_to_the_debug_variant() -> None:
    assert render.default_variant("gitlab-ci") == render.default_variant("gitlab-runner") == "debug"
    assert render.default_variant("k8s-pod") == render.default_variant("k8s-job") == "executor"


@pytest.mark.parametrize("executor", ["docker.io/team/kaniko-executor:latest", "Not A Ref"])
def test_executor_must_be_pinned_by_digest(executor: str) -> None:
    with pytest.raises(PipelineError) as info:
        render.render("k8s-pod", executor, destination="r/a:1")
    assert info.value.exit_code == 2


def test_unknown_target_and_variant() -> None:
    with pytest.raises(ConfigError, match="unknown render target 'helm'"):
        render.render("helm", EXECUTOR, destination="r/a:1")
    with pytest.raises(ConfigError, match="unknown variant 'fat'"):
        render.render("k8s-pod", EXECUTOR, destination="r/a:1", variant="fat")


PUBLISHED = {  # as pipeline.stages.publish.recorded_images reads the publish record
    "executor": "docker.io/team/kaniko-executor@sha256:" + "ab" * 32,
    "debug": "docker.io/team/kaniko-executor@sha256:" + "cd" * 32,
}


def test_executor_from_the_publish_record() -> None:
    assert render.executor_from_record(PUBLISHED) == EXECUTOR
    assert render.executor_from_record(PUBLISHED, "debug") == DEBUG
    with pytest.raises(ConfigError, match="published no slim image"):
        render.executor_from_record(PUBLISHED, "slim")


def test_the_record_says_which_variant_an_executor_is() -> None:
    assert render.variant_in_record(PUBLISHED, EXECUTOR) == "executor"
    assert render.variant_in_record(PUBLISHED, DEBUG) == "debug"
    assert render.variant_in_record(PUBLISHED, "r.test/x@sha256:" + "ef" * 32) is None


def test_a_given_executor_is_the_variant_the_record_says() -> None:
    assert render.variant_of("gitlab-ci", DEBUG, "", PUBLISHED) == "debug"
    assert render.variant_of("gitlab-ci", EXECUTOR, "", PUBLISHED) == "executor"  # refused by render
    with pytest.raises(ConfigError, match="is the executor image") as info:
        render.variant_of("gitlab-ci", EXECUTOR, "debug", PUBLISHED)
    assert info.value.exit_code == 2


def test_an_unknown_executor_must_be_named_a_variant_for_gitlab() -> None:
    unknown = "r.test/x@sha256:" + "ef" * 32
    with pytest.raises(ConfigError, match="whether it has a shell") as info:
        render.variant_of("gitlab-runner", unknown, "", PUBLISHED)
    assert "--variant debug" in (info.value.hint or "")
    assert render.variant_of("gitlab-ci", unknown, "debug", {}) == "debug"
    assert render.variant_of("k8s-job", unknown, "", {}) == "executor"


def test_default_destination_sits_beside_the_executor() -> None:
    assert render.default_destination(EXECUTOR) == "docker.io/team/kaniko-nginx:latest"


def _cache_with_record(tmp_path: Path) -> Path:
    cache = tmp_path / "cache"
    (cache / "runs").mkdir(parents=True)
    images = {}
    for variant, ref in PUBLISHED.items():
        repository, digest = ref.split("@")
        images[variant] = {"repository": repository, "digest": digest}
    (cache / "runs" / "last.json").write_text(json.dumps({"publish": {"images": images}}))
    return cache


def test_invoke_render_refuses_the_executor_variant_for_gitlab_ci(tmp_path: Path) -> None:
    cache = _cache_with_record(tmp_path)
    for args in (["--variant", "executor"], ["--executor", EXECUTOR]):
        result = run_invoke(["render", "--target", "gitlab-ci", *args], cache=cache)
        assert result.returncode == 2, result.stderr
        assert "the executor image has no shell" in result.stderr
        assert "Traceback" not in result.stderr and result.stdout == ""


def test_invoke_render_gitlab_ci_takes_the_published_debug_image(tmp_path: Path) -> None:
    result = run_invoke(["render", "--target", "gitlab-ci", "--json"], cache=_cache_with_record(tmp_path))
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["executor"] == DEBUG
    assert yaml.safe_load(out["text"])["build-image"]["image"]["name"] == DEBUG


def test_the_readme_shows_the_recipes_as_render_writes_them() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("## Use the images\n", 1)[1].split("\n## ", 1)[0]
    blocks = [b.split("```", 1)[0] for b in section.split("```yaml\n")[1:] + section.split("```toml\n")[1:]]
    executor = "docker.io/example/kaniko-executor@sha256:" + "0" * 64
    debug = "docker.io/example/kaniko-executor@sha256:" + "1" * 64
    expected = [
        render.render("gitlab-ci", debug, destination="x").text,
        render.render("k8s-job", executor, destination="docker.io/example/app:latest").text,
        render.render("gitlab-runner", debug, destination="x").text,
    ]
    assert [b.strip() for b in blocks] == [e.strip() for e in expected]
