"""Each task's options as a typed value: one frozen dataclass per task, its fields the options its table in
:mod:`pipeline.cli.catalog` declares (same names, same order; the field's type is what invoke hands back
for the option's default). tasks.py's ``task`` decorator builds one from invoke's arguments, so a task body
reads ``o.report_dir`` as a ``str`` and a misspelt option fails at type-check time (mypy), not when the
task runs. tests/unit/test_task_options.py checks each class against its table.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.cli.options import Given


@dataclass(frozen=True)
class ForkOptions(Given):
    """`invoke fork`."""

    url: str
    ref: str
    prerelease: bool
    update_pin: bool
    json: bool


@dataclass(frozen=True)
class BuildOptions(Given):
    """`invoke build`."""

    platforms: str
    variants: str
    out: str
    go: str
    busybox: str
    registry_mirror: str
    ca_bundle: str
    json: bool


@dataclass(frozen=True)
class SetupOptions(Given):
    """`invoke setup`."""

    user: str
    json: bool


@dataclass(frozen=True)
class DoctorOptions(Given):
    """`invoke doctor`."""

    user: str
    json: bool


@dataclass(frozen=True)
class SignOptions(Given):
    """`invoke sign`."""

    image: list[str] | None
    per_platform: bool
    sig_tag: bool
    identity_token: str
    trust_config: str
    local_sigstore: bool
    json: bool


@dataclass(frozen=True)
class VerifyOptions(Given):
    """`invoke verify`."""

    image: str
    certificate_identity: str
    certificate_oidc_issuer: str
    trust_config: str
    type: str
    json: bool


@dataclass(frozen=True)
class ReproduceOptions(Given):
    """`invoke reproduce`."""

    image: str
    certificate_identity: str
    certificate_oidc_issuer: str
    trust_config: str
    busybox: str
    fork_url: str
    json: bool


@dataclass(frozen=True)
class SmokeOptions(Given):
    """`invoke smoke`."""

    image: str
    wait: float
    json: bool


@dataclass(frozen=True)
class BuildImageOptions(Given):
    """`invoke build-image`."""

    executor: str
    destination: str
    tag: str
    registry_mirror: str
    base_image: str
    context: str
    dockerfile: str
    no_verify: bool
    certificate_identity: str
    certificate_oidc_issuer: str
    trust_config: str
    json: bool


@dataclass(frozen=True)
class ConformanceOptions(Given):
    """`invoke conformance`."""

    executor: str
    variants: str
    cases: str
    suite: list[str] | None
    reference: str
    bases: str
    upstream: str
    quick: bool
    write_readme: bool
    json: bool


@dataclass(frozen=True)
class NginxBaseOptions(Given):
    """`invoke nginx-base`."""

    push_to: str
    json: bool


@dataclass(frozen=True)
class SuiteOptions(Given):
    """`invoke test`."""

    k: str
    unit: bool
    quick: bool
    workers: str


@dataclass(frozen=True)
class LintOptions(Given):
    """`invoke lint`."""


@dataclass(frozen=True)
class PublishOptions(Given):
    """`invoke publish`."""

    layout: str
    prefix: str
    version: str
    no_rolling: bool
    insecure: bool
    ca_file: str
    replace_version_tags: bool
    manifests_only: bool
    record: str
    json: bool


@dataclass(frozen=True)
class RegistryUpOptions(Given):
    """`invoke registry.up`."""

    port: int
    json: bool


@dataclass(frozen=True)
class RegistryDownOptions(Given):
    """`invoke registry.down`."""

    json: bool


@dataclass(frozen=True)
class RenderOptions(Given):
    """`invoke render`."""

    target: str
    executor: str
    variant: str
    destination: str
    context: str
    name: str
    namespace: str
    tar_path: str
    out: str
    json: bool


@dataclass(frozen=True)
class ReleaseOptions(Given):
    """`invoke release`."""

    ref: str
    fork_url: str
    prefix: list[str] | None
    platforms: str
    variants: str
    trust_config: str
    identity_token: str
    certificate_identity: str
    certificate_oidc_issuer: str
    base_image: str
    registry_mirror: str
    busybox: str
    force: bool
    replace_version_tags: bool
    insecure: bool
    ca_file: str
    dry_run: bool
    report_dir: str
    outputs: str
    expect_commit: str
    join: list[str] | None
    publish_only: bool
    shard: str
    shard_result: str
    join_shard: list[str] | None
    conformance: str
    conformance_suite: list[str] | None
    conformance_bases: str
    json: bool


@dataclass(frozen=True)
class EndToEndOptions(Given):
    """`invoke test-e2e`."""

    fork_url: str
    keep: bool
    busybox: str
    platforms: str
    base_image: str
    registry_mirror: str
    conformance: str
    conformance_bases: str
    json: bool
