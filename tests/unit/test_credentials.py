"""Credentials from the environment and from a Docker config in a temporary directory."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from pipeline.errors import AuthError, ConfigError
from pipeline.registry.credentials import Credential, Credentials

SECRET = "s3cr3t-Pa55-do-not-print"


def _config(tmp_path: Path, data: dict[str, object]) -> dict[str, str]:
    config_dir = tmp_path / "docker"
    config_dir.mkdir(exist_ok=True)
    (config_dir / "config.json").write_text(json.dumps(data))
    return {"DOCKER_CONFIG": str(config_dir), "PATH": str(tmp_path / "bin") + os.pathsep + "/usr/bin:/bin"}


def _helper(tmp_path: Path, name: str = "test") -> Path:
    """A docker-credential-<name> script speaking the credential helper protocol."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / f"docker-credential-{name}"
    log = tmp_path / f"{name}.log"
    script.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = get ] || exit 3\n'
        "read -r server\n"
        f'echo "$server" >> "{log}"\n'
        'case "$server" in\n'
        f'  https://index.docker.io/v1/) printf \'{{"ServerURL":"%s","Username":"hubuser","Secret":"{SECRET}"}}\' "$server" ;;\n'
        f'  tok.example.test) printf \'{{"ServerURL":"%s","Username":"<token>","Secret":"{SECRET}"}}\' "$server" ;;\n'
        f'  reg.example.test) printf \'{{"ServerURL":"%s","Username":"reguser","Secret":"{SECRET}"}}\' "$server" ;;\n'
        "  *) echo 'credentials not found in native keychain'; exit 1 ;;\n"
        "esac\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return log


def test_environment_for_docker_hub_only(tmp_path: Path) -> None:
    env = {"DOCKER_HUB_USERNAME": "me", "DOCKER_HUB_KANIKO_PAT": SECRET, "HOME": str(tmp_path)}
    creds = Credentials.from_environment(env)
    for host in ("docker.io", "registry-1.docker.io", "index.docker.io", "https://index.docker.io/v1/"):
        cred = creds.lookup(host)
        assert cred is not None and (cred.username, cred.password) == ("me", SECRET)
    assert creds.lookup("127.0.0.1:5000") is None
    assert creds.has_any()


def test_pat_without_user_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DOCKER_HUB_USERNAME"):
        Credentials.from_environment({"DOCKER_HUB_KANIKO_PAT": SECRET, "HOME": str(tmp_path)})


def test_no_config_means_anonymous(tmp_path: Path) -> None:
    creds = Credentials.from_environment({"HOME": str(tmp_path)})
    assert creds.lookup("docker.io") is None
    assert not creds.has_any()


def test_home_docker_config_is_read(tmp_path: Path) -> None:
    (tmp_path / ".docker").mkdir()
    auth = base64.b64encode(f"alice:{SECRET}".encode()).decode()
    (tmp_path / ".docker" / "config.json").write_text(json.dumps({"auths": {"quay.io": {"auth": auth}}}))
    cred = Credentials.from_environment({"HOME": str(tmp_path)}).lookup("quay.io")
    assert cred is not None and (cred.username, cred.password) == ("alice", SECRET)


def test_auths_entries(tmp_path: Path) -> None:
    hub = base64.b64encode(f"hubuser:{SECRET}".encode()).decode()
    other = base64.b64encode(f"bob:pa:ss:{SECRET}".encode()).decode()
    env = _config(
        tmp_path,
        {
            "auths": {
                "https://index.docker.io/v1/": {"auth": hub},
                "http://127.0.0.1:5000/v2/": {"auth": other},
                "id.example.test": {"identitytoken": SECRET},
                "empty.example.test": {},
            }
        },
    )
    creds = Credentials.from_environment(env)
    hub_cred = creds.lookup("docker.io")
    assert hub_cred is not None and (hub_cred.username, hub_cred.password) == ("hubuser", SECRET)
    local = creds.lookup("127.0.0.1:5000")
    assert local is not None and (local.username, local.password) == ("bob", f"pa:ss:{SECRET}")
    token = creds.lookup("id.example.test")
    assert token is not None and token.identity_token == SECRET and not token.has_basic
    assert creds.lookup("empty.example.test") is None
    assert creds.lookup("unknown.example.test") is None


def test_environment_wins_over_config(tmp_path: Path) -> None:
    hub = base64.b64encode(b"fromconfig:pw").decode()
    env = _config(tmp_path, {"auths": {"https://index.docker.io/v1/": {"auth": hub}}})
    env.update({"DOCKER_HUB_USERNAME": "fromenv", "DOCKER_HUB_KANIKO_PAT": SECRET})
    cred = Credentials.from_environment(env).lookup("docker.io")
    assert cred is not None and cred.username == "fromenv"


def test_cred_helpers_and_store(tmp_path: Path) -> None:
    log = _helper(tmp_path, "test")
    env = _config(
        tmp_path,
        {
            "credHelpers": {"reg.example.test": "test", "tok.example.test": "test"},
            "credsStore": "test",
            "auths": {"fallback.example.test": {"auth": base64.b64encode(b"carol:pw").decode()}},
        },
    )
    creds = Credentials.from_environment(env)
    reg = creds.lookup("reg.example.test")
    assert reg is not None and (reg.username, reg.password) == ("reguser", SECRET)
    tok = creds.lookup("tok.example.test")
    assert tok is not None and tok.identity_token == SECRET and tok.username == ""
    hub = creds.lookup("docker.io")  # through credsStore, asked with Docker Hub's key
    assert hub is not None and (hub.username, hub.password) == ("hubuser", SECRET)
    fallback = creds.lookup("fallback.example.test")  # the store does not know it: auths does
    assert fallback is not None and fallback.username == "carol"
    assert creds.lookup("nowhere.example.test") is None
    asked = log.read_text().split()
    assert "https://index.docker.io/v1/" in asked and "reg.example.test" in asked


def test_missing_helper_is_a_clear_error(tmp_path: Path) -> None:
    env = _config(tmp_path, {"credHelpers": {"reg.example.test": "absent"}})
    with pytest.raises(AuthError, match="docker-credential-absent is not on PATH"):
        Credentials.from_environment(env).lookup("reg.example.test")


def test_broken_config_is_a_config_error(tmp_path: Path) -> None:
    config_dir = tmp_path / "docker"
    config_dir.mkdir()
    (config_dir / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not readable JSON"):
        Credentials.from_environment({"DOCKER_CONFIG": str(config_dir)})


def test_bad_auth_field(tmp_path: Path) -> None:
    env = _config(tmp_path, {"auths": {"x.test": {"auth": base64.b64encode(b"no-colon").decode()}}})
    with pytest.raises(ConfigError, match="user:password"):
        Credentials.from_environment(env).lookup("x.test")


def test_secrets_never_in_repr(tmp_path: Path) -> None:
    _helper(tmp_path, "test")
    env = _config(tmp_path, {"credHelpers": {"reg.example.test": "test"}})
    env.update({"DOCKER_HUB_USERNAME": "me", "DOCKER_HUB_KANIKO_PAT": SECRET})
    creds = Credentials.from_environment(env)
    shown = [repr(creds), str(creds), repr(creds.lookup("docker.io")), str(creds.lookup("reg.example.test"))]
    shown.append(repr(Credential("u", SECRET, SECRET)))
    shown.append(f"{Credential('u', identity_token=SECRET)}")
    for text in shown:
        assert SECRET not in text
    assert "'me'" in shown[2]
