"""Secrets given through the environment or the Docker config never appear in any output."""

from __future__ import annotations

import base64
import io
import json
import logging
import tempfile
from pathlib import Path

import pytest

from pipeline.errors import AuthError
from pipeline.progress import Progress
from pipeline.registry.client import Client
from pipeline.registry.credentials import Credentials
from pipeline.registry.reference import Reference
from tests.support.layouts import build_image
from tests.support.registries import AuthRegistry

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
