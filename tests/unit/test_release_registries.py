"""Several registries in one release: the prefixes, the refusal of local signing for a remote registry,
and the report's list of registries."""

from __future__ import annotations

import pytest

from pipeline import config
from pipeline.errors import ConfigError, RegistryError
from pipeline.release.registries import Destinations
from pipeline.release.report import Report, Stage
from pipeline.release.signer import Signing
from tests.support.cli import run_invoke


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", ()),
        ("ghcr.io/team", ("ghcr.io/team",)),
        ("docker.io/team, ghcr.io/team", ("docker.io/team", "ghcr.io/team")),
        (
            ["docker.io/team", "quay.io/team", "ghcr.io/team"],
            ("docker.io/team", "quay.io/team", "ghcr.io/team"),
        ),
    ],
)
def test_prefix_is_one_or_a_list(value: object, expected: tuple[str, ...]) -> None:
    settings = config.Settings.load({"prefix": value}, env={})
    assert settings.prefixes == expected
    assert settings.prefix == (expected[0] if expected else None)
    assert settings.extra_prefixes == expected[1:]


def test_a_prefix_named_twice_is_refused() -> None:
    with pytest.raises(ConfigError, match="names ghcr.io/team more than once") as info:
        config.Settings.load({"prefix": ["ghcr.io/team", "docker.io/x", "ghcr.io/team"]}, env={})
    assert info.value.exit_code == 2


def test_invoke_release_takes_prefix_more_than_once(tmp_path: object) -> None:
    result = run_invoke(["release", "--prefix", "ghcr.io/team", "--prefix", "ghcr.io/team", "--dry-run"])
    assert result.returncode == 2, result.stderr
    assert "names ghcr.io/team more than once" in result.stderr and "Traceback" not in result.stderr


def test_local_signing_is_refused_when_another_registry_is_not_loopback() -> None:
    local = Signing(local=True, identity="local@test", issuer="https://local", trust_config=None)
    Destinations(["127.0.0.1:5001/team"], "1.2.3", ["executor"]).check_signing(local)  # loopback: fine
    with pytest.raises(ConfigError, match="ghcr.io/team is not a loopback registry"):
        Destinations(["127.0.0.1:5001/team", "ghcr.io/team"], "1.2.3", ["executor"]).check_signing(local)
    real = Signing(local=False, identity="me", issuer="https://issuer", trust_config=None)
    Destinations(["ghcr.io/team"], "1.2.3", ["executor"]).check_signing(real)


def test_the_report_lists_every_registry() -> None:
    report = Report(prefix="docker.io/team", status="failed")
    assert report.to_dict()["registries"] == [
        {"prefix": "docker.io/team", "status": "failed", "primary": True}
    ]
    others = Destinations(["ghcr.io/team", "quay.io/team"], "1.2.3", ["executor", "warmer"])
    others.extra[0].status, others.extra[0].error = "failed", "publish: ghcr.io refused the push"
    others.extra[1].status, others.extra[1].digests = "published", {"executor": "sha256:" + "a" * 64}
    with pytest.raises(RegistryError, match="1 of 3 registries failed: ghcr.io/team: publish: ghcr.io"):
        others.raise_if_failed("docker.io/team")
    report.destinations = others
    rows = report.to_dict()["registries"]
    assert [(r["prefix"], r["status"], r["primary"]) for r in rows] == [
        ("docker.io/team", "failed", True),
        ("ghcr.io/team", "failed", False),
        ("quay.io/team", "published", False),
    ]
    assert rows[2]["images"] == {
        "executor": {"repository": "quay.io/team/kaniko-executor", "digest": "sha256:" + "a" * 64}
    }
    markdown = report.markdown()
    assert "| `ghcr.io/team` | failed | publish: ghcr.io refused the push |" in markdown
    stopped = "the release stopped before it finished because ghcr.io/team failed"
    assert rows[0]["note"] == rows[2]["note"] == f"no rolling tag moved: {stopped}"
    assert f"| `quay.io/team` | published | no rolling tag moved: {stopped} |" in markdown


def _failed_at(stage: str) -> Report:
    report = Report(prefix="127.0.0.1:5000/team", status="failed", error="the primary failed")
    report.stages = [Stage(name, 1.0, "ok") for name in ("resolve", "check", "fork")]
    report.stages.append(Stage(stage, 1.0, "failed"))
    return report


def test_when_the_primary_fails_the_others_say_they_were_not_attempted() -> None:
    """Not "pending": the report says what happened in each registry when the first one failed."""
    report = _failed_at("build")
    others = Destinations(["127.0.0.1:5001/team", "127.0.0.1:5002/team"], "1.2.3", ["executor"])
    others.extra[0].status = "work to do"  # what the check found; then the build failed
    report.destinations = others
    rows = report.to_dict()["registries"]
    assert rows[0] == {
        "prefix": "127.0.0.1:5000/team",
        "status": "failed",
        "primary": True,
        "note": "failed at build",
    }
    for row in rows[1:]:
        assert (row["status"], row["note"], row["error"]) == (
            "not attempted",
            "not attempted: 127.0.0.1:5000/team failed at build",
            None,
        )
    markdown = report.markdown()
    assert "| `127.0.0.1:5000/team` | failed | failed at build |" in markdown
    assert (
        "| `127.0.0.1:5002/team` | not attempted | not attempted: 127.0.0.1:5000/team failed at build |"
        in markdown
    )
    assert "pending" not in markdown


def test_when_the_primary_fails_late_the_others_say_what_they_hold() -> None:
    report = _failed_at("smoke")
    others = Destinations(["127.0.0.1:5001/team", "127.0.0.1:5002/team"], "1.2.3", ["executor"])
    others.extra[0].status, others.extra[0].digests = "published", {"executor": "sha256:" + "b" * 64}
    others.extra[1].status = "up to date"
    report.destinations = others
    rows = report.to_dict()["registries"]
    assert [(r["status"], r["note"]) for r in rows[1:]] == [
        ("published", "no rolling tag moved: 127.0.0.1:5000/team failed at smoke"),
        ("up to date", "nothing to do here; 127.0.0.1:5000/team failed at smoke"),
    ]
    assert rows[1]["images"]["executor"]["digest"] == "sha256:" + "b" * 64
