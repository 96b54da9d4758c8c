"""Secrets given through the environment or the Docker config never appear in any output."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.errors import AuthError
from pipeline.progress import Progress
from pipeline.registry.client import Client
from pipeline.registry.credentials import Credentials
from pipeline.registry.reference import Reference
from pipeline.services import localsigstore
from pipeline.services.distribution import LocalRegistry
from tests.support.cli import run_invoke
from tests.support.layouts import build_image, build_layout
from tests.support.registries import AuthRegistry, Factory
from tests.support.sigstore_fixtures import seed_cache

SIGNER = "https://ci.example.test/kaniko-pipeline/secrets"
ISSUER = "https://issuer.example.test"

HUB_SECRET = "dckr_pat_never-show-this-0123456789"


def test_secrets_stay_out_of_output(
    registry_htpasswd: AuthRegistry,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    reg = registry_htpasswd
    layout, top = build_image(tmp_path / "layout")
    stream = io.StringIO()
    with tempfile.TemporaryDirectory() as config_dir:
        auth = base64.b64encode(f"{reg.username}:{reg.password}".encode()).decode()
        config = Path(config_dir) / "config.json"
        config.touch(mode=0o600)
        config.write_text(json.dumps({"auths": {f"http://{reg.host}/v2/": {"auth": auth}}}))
        env = {
            "DOCKER_CONFIG": config_dir,
            "DOCKER_HUB_USERNAME": "hubuser",
            "DOCKER_HUB_KANIKO_PAT": HUB_SECRET,
        }
        creds = Credentials.from_environment(env)
        client = Client(credentials=creds, progress=Progress(stream, interactive=False))
        result = client.push_layout(layout, top, Reference.parse(f"{reg.host}/team/app"), tags=["v1"])
        assert result.digest == top.digest
        print(repr(creds), repr(creds.lookup(reg.host)), repr(creds.lookup("docker.io")))

        # A wrong password in the config: the error names the user, never the password.
        wrong = base64.b64encode(f"{reg.username}:{HUB_SECRET}".encode()).decode()
        config.write_text(json.dumps({"auths": {reg.host: {"auth": wrong}}}))
        bad = Client(
            credentials=Credentials.from_environment({"DOCKER_CONFIG": config_dir}), progress=Progress(stream)
        )
        with pytest.raises(AuthError) as info:
            bad.push_layout(layout, top, Reference.parse(f"{reg.host}/team/app"), tags=["v2"])
        print(info.value)
    captured = capfd.readouterr()
    everything = captured.out + captured.err + stream.getvalue() + caplog.text
    assert reg.username in everything  # the output does say who
    for secret in (reg.password, HUB_SECRET, auth, wrong):
        assert secret not in everything


# -- issue 15: identity tokens and the Docker config, through the CLI, in every file too ----------

IDENTITY_SECRET = "idtok-never-show-this-0123456789abcdef"


def _everything_under(*roots: Path) -> Iterator[Path]:
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                yield path


def test_identity_tokens_and_the_docker_config_stay_out_of_outputs_and_files(
    registry_factory: Factory,
    registry: LocalRegistry,
    local_sigstore: localsigstore.LocalSigstore,
    node_cache: Path,
    tmp_path: Path,
) -> None:
    """A registry identity token (Docker config ``identitytoken``), the Docker config's ``auth``, and the
    OIDC identity token that signs (SIGSTORE_ID_TOKEN): none appears in stdout, stderr, the run record,
    any file in the cache, or any blob the registries store (the Sigstore bundle included)."""
    token_registry = registry_factory.token()
    layout, top = build_image(tmp_path / "layout")
    variants, _ = build_layout(tmp_path / "variants", variants=("executor",))
    cache = seed_cache(node_cache, tmp_path / "cache")
    docker = tmp_path / "docker"
    docker.mkdir()
    basic = base64.b64encode(f"someone:{HUB_SECRET}".encode()).decode()
    (docker / "config.json").write_text(
        json.dumps(
            {
                "auths": {
                    token_registry.host: {"identitytoken": IDENTITY_SECRET},
                    "https://index.docker.io/v1/": {"auth": basic},
                }
            }
        )
    )
    oidc = localsigstore.mint_identity_token(SIGNER, ISSUER)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "INVOKE_PIPELINE_", "SIGSTORE_"))
    }
    env.update({"DOCKER_CONFIG": str(docker), "SIGSTORE_ID_TOKEN": oidc})
    runs = []

    # the identity token is offered to the token server (which does not know it): refused, and said so
    refused = run_invoke(
        ["publish", "--layout", str(variants.root), "--prefix", f"{token_registry.host}/sec"],
        env=env, cache=cache, timeout=120,
    )  # fmt: skip
    runs.append(refused)
    assert refused.returncode != 0 and "refused" in refused.stderr and "Traceback" not in refused.stderr

    # sign with the OIDC token from the environment, against the local Sigstore instance
    with Client(credentials=Credentials.anonymous()) as client:
        pushed = client.push_layout(layout, top, Reference.parse(f"{registry.host}/sec/app"), tags=["v1"])
    signed = run_invoke(
        ["sign", "--image", f"{registry.host}/sec/app@{pushed.digest}", "--trust-config",
         str(local_sigstore.trust_config), "--json"],
        env=env, cache=cache, timeout=180,
    )  # fmt: skip
    runs.append(signed)
    assert signed.returncode == 0, signed.stderr
    assert json.loads(signed.stdout)["identity"] == SIGNER

    secrets = (IDENTITY_SECRET, HUB_SECRET, basic, oidc, oidc.split(".")[2])
    for run in runs:
        for secret in secrets:
            assert secret not in run.stdout + run.stderr, f"{secret[:10]}... in the output of {run.args[3:5]}"
    checked = 0
    for path in _everything_under(cache / "runs", cache, registry.root, token_registry.registry.root):
        if path.is_relative_to(cache / "node"):
            continue  # the Sigstore tools' own packages
        data = path.read_bytes()
        checked += 1
        for secret in secrets:
            assert secret.encode() not in data, f"{secret[:10]}... in {path}"
    assert checked > 10
