"""Rendered deploy recipes: pinned by digest, the security profile, and valid for their consumers."""

from __future__ import annotations

import json
import tomllib
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiClient

from pipeline import render
from pipeline.errors import ConfigError, PipelineError

EXECUTOR = "docker.io/team/kaniko-executor@sha256:" + "ab" * 32


def as_pod(data: dict[str, Any]) -> Any:
    """Deserialise through the Kubernetes client's V1Pod model; drops any field the API does not know."""
    client = ApiClient()
    pod = client.deserialize(json.dumps(data), "V1Pod", "application/json")
    return pod, client.sanitize_for_serialization(pod)


def test_pod_is_a_valid_v1_pod_with_the_security_profile() -> None:
    recipe = render.render("k8s-pod", EXECUTOR, destination="registry.test/app:1")
    data = yaml.safe_load(recipe.text)
    pod, round_trip = as_pod(data)
    assert round_trip == data, "every field must be one the Kubernetes API knows"
    assert pod.spec.host_users is False
    (container,) = pod.spec.containers
    assert container.image == EXECUTOR
    ctx = container.security_context
    assert ctx.allow_privilege_escalation is False and ctx.privileged is False
    assert ctx.capabilities.drop == ["ALL"]
    assert sorted(ctx.capabilities.add) == ["CHOWN", "DAC_OVERRIDE", "FOWNER"]
    assert "--destination=registry.test/app:1" in container.args
    mount = container.volume_mounts[0]
    assert (mount.mount_path, mount.read_only) == ("/kaniko/.docker", True)


def test_the_pod_check_catches_a_misspelled_field() -> None:
    data = render.k8s_pod(EXECUTOR, context="dir:///workspace", destination="r/a:1")
    data["spec"]["hostUser"] = False  # a typo the API server would ignore
    assert as_pod(data)[1] != data


def test_gitlab_runner_is_toml_with_the_profile() -> None:
    config = tomllib.loads(render.render("gitlab-runner", EXECUTOR, destination="r/a:1").text)
    kube = config["runners"][0]["kubernetes"]
    assert kube["image"] == EXECUTOR and kube["allowed_images"] == [EXECUTOR]
    assert kube["host_users"] is False and kube["allow_privilege_escalation"] is False
    assert kube["privileged"] is False
    assert kube["cap_drop"] == ["ALL"] and sorted(kube["cap_add"]) == ["CHOWN", "DAC_OVERRIDE", "FOWNER"]


def test_gitlab_ci_job_pins_the_executor_and_keeps_credentials_out_of_argv() -> None:
    job = yaml.safe_load(render.render("gitlab-ci", EXECUTOR, destination="r/a:1").text)["build-image"]
    assert job["image"] == {"name": EXECUTOR, "entrypoint": [""]}
    executor_line = next(line for line in job["script"] if line.startswith("/kaniko/executor"))
    assert "PASSWORD" not in executor_line and "/kaniko/.docker/config.json" in job["script"][1]


@pytest.mark.parametrize("executor", ["docker.io/team/kaniko-executor:latest", "Not A Ref"])
def test_executor_must_be_pinned_by_digest(executor: str) -> None:
    with pytest.raises(PipelineError) as info:
        render.render("k8s-pod", executor, destination="r/a:1")
    assert info.value.exit_code == 2


def test_unknown_target() -> None:
    with pytest.raises(ConfigError, match="unknown render target 'helm'"):
        render.render("helm", EXECUTOR, destination="r/a:1")


def test_executor_from_the_publish_record() -> None:
    record = {
        "images": {
            "executor": {"repository": "docker.io/team/kaniko-executor", "digest": "sha256:" + "ab" * 32}
        }
    }
    assert render.executor_from_record(record) == EXECUTOR
    with pytest.raises(ConfigError, match="published no executor"):
        render.executor_from_record({"images": {}})


def test_default_destination_sits_beside_the_executor() -> None:
    assert render.default_destination(EXECUTOR) == "docker.io/team/kaniko-nginx:latest"
