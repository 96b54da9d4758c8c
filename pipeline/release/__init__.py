"""The release: every stage in order, idempotent, and the rolling tags moved only when all passed.

Stages (``STAGES``): ``resolve`` (the fork's release tag and commit, with ``git ls-remote``: cheap, and a
reachability check that fails in seconds), ``check`` (what the registry holds: an up-to-date release stops
here), then ``fork``, ``build``, ``publish`` (by digest, version tags only), ``sign`` (skipped when a valid
signature from the configured identity is already attached), ``attest`` (SBOMs and provenance),
``verify``, ``nginx-base`` (embedded defaults only), ``build-image``, ``conformance``, ``smoke``,
``test-result``, with more than one registry ``signatures`` (the same bundles attached and verified in
each other registry), and last ``rolling`` (``latest``, ``debug``, ``slim``, ``vX.Y``, ``vX``; never
backwards).

A release is *up to date* when every variant's version tag names this release's image (``binding``), which
carries a valid signature, a provenance, an SBOM per platform image AND a latest valid test result (by
verified time) PASSED for this release from the configured identity, and every rolling tag that may move
already names it: then nothing is built. A tag naming anything else fails the release. Signed and attested
digests without a passing result are tested again without rebuilding (``sign_test_result.reuse``); those with
attestations missing are rebuilt (reproducibly) and get them; the build's SBOMs and provenance and the
tests' results are attestations (``attestations``). A run killed at any point finishes the job when started again: every stage is idempotent (the build is
reproducible, publish skips blobs the registry has, signing is skipped when done). A failed stage, the
smoke checks included, leaves every rolling tag where it was.

Embedded defaults (no ``--prefix``, no Docker Hub credentials): the embedded local registry. For any
loopback registry with nothing else configured: a local Sigstore instance (never for another registry);
as kaniko's base, the nginx image made from Debian packages, pushed to that registry and served to kaniko
as its docker.io mirror; and no debug variant unless ``--busybox`` or a registry mirror gives it busybox
(the pinned busybox lives on Docker Hub, which these machines cannot reach).

Every run writes a report: JSON and Markdown (fit for ``$GITHUB_STEP_SUMMARY``) in ``--report-dir``.

Modules, in the order a release uses them: ``flow`` (the entry: resolve and check, then ``release_flow``,
one call per stage with the values the stages before it returned), ``context`` (the options, the stage
timer, the run's context and what the build side hands on), ``resolution`` (the release tag and
commit), ``plan`` (where it goes, the dry run's plan), ``signer`` (the signing identity, the release's
one :class:`~pipeline.signing.trust.Trust` and its signer), ``binding`` (a tag counts only for what its
image proves it is), ``state`` (what the registry holds and proves), ``registries`` (every registry after
the first; ``copies``: which of its bundles may be copied there), ``make`` (the stages fork, build,
publish, sign, attest), ``prove`` (verify, nginx-base, build-image, conformance, smoke),
``sign_test_result`` (the signed test result after smoke; testing again without a rebuild), ``rolling``
(signatures in every other registry, then the rolling tags), ``attestations`` (the attestations a
release signs and reads back), ``report`` (the report and the plan's text), ``endtoend`` (``invoke
test-e2e``). No stage reads the run record within a release: each writes its entry for a task run alone.
"""

from pipeline.release.context import Options, StageHook
from pipeline.release.endtoend import SHARED_CACHES, E2EResult, e2e, native_platform
from pipeline.release.flow import STAGES, run
from pipeline.release.plan import DEBUG_NOTE, NGINX_REPOSITORY
from pipeline.release.report import Report, Stage, plan_text
from pipeline.release.resolution import LS_REMOTE_TIMEOUT, Resolved, remote_tags, resolve
from pipeline.release.signer import LOCAL_TRUST_CONFIGS, Signer, Signing, choose_signing, signed_by, trust_of
from pipeline.release.state import VariantState, inspect_registry

__all__ = [
    "DEBUG_NOTE",
    "LOCAL_TRUST_CONFIGS",
    "LS_REMOTE_TIMEOUT",
    "NGINX_REPOSITORY",
    "SHARED_CACHES",
    "STAGES",
    "E2EResult",
    "Options",
    "Report",
    "Resolved",
    "Signer",
    "Signing",
    "Stage",
    "StageHook",
    "VariantState",
    "choose_signing",
    "e2e",
    "inspect_registry",
    "native_platform",
    "plan_text",
    "remote_tags",
    "resolve",
    "run",
    "signed_by",
    "trust_of",
]
