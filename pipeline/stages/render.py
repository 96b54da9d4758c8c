"""`invoke render`: the deploy recipe for a target, for the published executor pinned by digest.

Targets: ``k8s-pod`` and ``k8s-job`` (Kubernetes, :mod:`pipeline.recipes.kubernetes`), ``gitlab-runner``
and ``gitlab-ci`` (:mod:`pipeline.recipes.gitlab`). The gitlab-ci job runs its script with a shell, so it
and the runner's default image are rendered for the debug variant only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pipeline.config import VARIANTS
from pipeline.errors import UsageError
from pipeline.recipes import gitlab, kubernetes
from pipeline.registry.reference import Reference

TARGETS = ("k8s-pod", "k8s-job", "gitlab-runner", "gitlab-ci")
if TYPE_CHECKING:
    from pipeline.config import Settings

DEFAULT_NAMESPACE = "kaniko"


@dataclass(frozen=True)
class RenderedRecipe:
    target: str
    text: str


def pinned(executor: str) -> Reference:
    ref = Reference.parse(executor)
    if not ref.digest:
        raise UsageError(
            f"--executor {executor!r} is not pinned by digest",
            hint="pass REPOSITORY@sha256:..., or run `invoke publish` first so the published digest is used",
        )
    return ref


def default_variant(target: str) -> str:
    """The variant a target runs: the debug image for GitLab (its runner needs a shell), else the executor."""
    return "debug" if target.startswith("gitlab-") else "executor"


def executor_from_record(published: Mapping[str, str], variant: str = "executor") -> str:
    """``REPOSITORY@DIGEST`` of the ``variant`` image that the last `invoke publish` recorded
    (``published``: :func:`pipeline.stages.publish.recorded_images`)."""
    image = published.get(variant)
    if image is None:
        raise UsageError(
            f"the last `invoke publish` published no {variant} image",
            hint=f"publish the {variant} variant, or pass --executor REPOSITORY@sha256:...",
        )
    return image


def variant_in_record(published: Mapping[str, str], executor: str) -> str | None:
    """Which published variant ``executor`` is, when the publish record knows its digest."""
    digest = Reference.parse(executor).digest
    for variant, image in published.items():
        if digest and Reference.parse(image).digest == digest:
            return variant
    return None


def variant_of(target: str, executor: str, variant: str, published: Mapping[str, str]) -> str:
    """Which variant an ``--executor`` given by the user is: the publish record's word when it knows the
    digest (a contradicting ``--variant`` is refused), else ``--variant``. A GitLab recipe needs to know:
    it runs only in an image with a shell, and a digest alone does not say whether it has one."""
    known = variant_in_record(published, executor)
    if known and variant and variant != known:
        raise UsageError(
            f"--executor {executor} is the {known} image (the last `invoke publish` published it), "
            f"not {variant}",
            hint=f"drop --variant, or pass the {variant} image's digest",
        )
    found = known or variant
    if not found and target.startswith("gitlab-"):
        raise UsageError(
            f"--executor {executor} is not in the last publish record, so whether it has a shell (which "
            f"GitLab's runner needs) is unknown",
            hint="say which image it is: --variant debug for the debug image",
        )
    return found or default_variant(target)


def default_destination(executor: str) -> str:
    """``PREFIX/kaniko-nginx:latest``: the test image beside the executor's repository."""
    ref = pinned(executor)
    prefix = f"{ref.registry}/{ref.repository}".rsplit("/", 1)[0]
    return f"{prefix}/kaniko-nginx:latest"


def _header(lines: list[str]) -> str:
    return "".join(f"# {line}\n" for line in lines)


def _yaml(documents: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(documents, sort_keys=False, width=1000)


def render(
    target: str,
    executor: str,
    *,
    destination: str,
    context: str = "dir:///workspace",
    dockerfile: str = "Dockerfile",
    variant: str | None = None,
    name: str = "kaniko",
    namespace: str = DEFAULT_NAMESPACE,
    tar_path: str | None = None,
) -> RenderedRecipe:
    """The recipe for ``target``; ``variant`` is the variant ``executor`` is (default: the target's)."""
    if target not in TARGETS:
        raise UsageError(f"unknown render target {target!r}", hint="choose one of: " + ", ".join(TARGETS))
    variant = variant or default_variant(target)
    if variant not in VARIANTS:
        raise UsageError(f"unknown variant {variant!r}", hint="choose one of: " + ", ".join(VARIANTS))
    ref = pinned(executor)
    if target == "gitlab-ci":
        return RenderedRecipe(
            target, yaml.safe_dump(gitlab.ci_job(ref, variant), sort_keys=False, width=1000)
        )
    if target == "gitlab-runner":
        return RenderedRecipe(target, gitlab.runner(ref, variant))
    build = kubernetes.Build(ref, destination, context, dockerfile, name, tar_path)
    needs = [f"a PersistentVolumeClaim {build.claim} holding the build context (mounted at /workspace)"]
    if build.pushes:
        needs.append(
            f"the Secret {build.secret}: "
            + kubernetes.secret_command(build, namespace if target == "k8s-job" else None)
        )
    if target == "k8s-pod":
        return RenderedRecipe(
            target, _header(["kaniko Pod; it needs:", *needs]) + _yaml([kubernetes.pod(build)])
        )
    documents = [kubernetes.namespace(namespace), kubernetes.job(build, namespace)]
    return RenderedRecipe(
        target, _header([f"kaniko Job in namespace {namespace}; it needs:", *needs]) + _yaml(documents)
    )


_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def check_input(
    target: str, executor: str, variant: str, destination: str, name: str, namespace: str
) -> None:
    """Refuse bad options before anything is read (the publish record) or written."""
    if not target:
        raise UsageError("--target is required", hint="choose one of: " + ", ".join(TARGETS))
    if target not in TARGETS:
        raise UsageError(f"unknown render target {target!r}", hint="choose one of: " + ", ".join(TARGETS))
    if variant and variant not in VARIANTS:
        raise UsageError(f"unknown --variant {variant!r}", hint="choose one of: " + ", ".join(VARIANTS))
    if executor:
        pinned(executor)
    if destination:
        Reference.parse(destination)
    for option, value in (("--name", name), ("--namespace", namespace)):
        if not _DNS_LABEL.fullmatch(value):
            raise UsageError(
                f"{option} {value!r} is not a Kubernetes name",
                hint="lower-case letters, digits and '-', at most 63, starting and ending with a letter or digit",
            )


def run(
    settings: Settings,
    target: str,
    *,
    executor: str = "",
    variant: str = "",
    destination: str = "",
    context: str = "dir:///workspace",
    name: str = "kaniko",
    namespace: str = DEFAULT_NAMESPACE,
    tar_path: str = "",
    out: str = "",
) -> dict[str, Any]:
    """`invoke render`: the recipe for the executor given, else for the one the publish record names
    (the variant the target needs); written to ``out`` when given. Returns the JSON result."""
    from pipeline import record
    from pipeline.stages.publish import recorded_images

    check_input(target, executor, variant, destination, name, namespace)
    if out and not Path(out).expanduser().parent.is_dir():
        raise UsageError(
            f"--out {out}: {Path(out).parent} is not a directory", hint="write it into a directory"
        )
    if executor:
        variant = variant_of(target, executor, variant, recorded_images(settings.record_file))
    else:
        variant = variant or default_variant(target)
        executor = executor_from_record(
            recorded_images(settings.record_file, needed_by="invoke render"), variant
        )
    recipe = render(
        target,
        executor,
        context=context,
        destination=destination or default_destination(executor),
        variant=variant or None,
        name=name,
        namespace=namespace,
        tar_path=tar_path or None,
    )
    if out:
        record.atomic_write_text(Path(out), recipe.text)
    return {"target": recipe.target, "executor": executor, "path": out or None, "text": recipe.text}
