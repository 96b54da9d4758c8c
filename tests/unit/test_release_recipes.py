"""The scheduled jobs (.github/workflows/release.yml, .gitlab-ci.yml) call `invoke release` only with
options the release task has, so the recipes and the task cannot drift apart."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml

import tasks

ROOT = Path(__file__).resolve().parents[2]
_EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}")


def _scripts(node: Any) -> list[str]:
    """Every string in the YAML document (steps' `run`, jobs' `script` lines)."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for value in node.values() for s in _scripts(value)]
    if isinstance(node, list):
        return [s for value in node for s in _scripts(value)]
    return []


def _release_options(path: Path) -> list[set[str]]:
    """The options of each `invoke release` command in the file."""
    found = []
    for text in _scripts(yaml.safe_load(path.read_text())):
        if not re.search(r"\binvoke release\b", text):
            continue
        # A GitHub expression stands for the options quoted inside it ('--force'), or for a value.
        text = _EXPRESSION.sub(lambda m: " ".join(re.findall(r"'(--[a-z-]+)'", m.group(1))) or "VALUE", text)
        words = shlex.split(text.split("invoke release", 1)[1])
        found.append({word.split("=", 1)[0][2:] for word in words if word.startswith("--")})
    return found


def _task_options() -> set[str]:
    return {name for argument in tasks.release.get_arguments() for name in argument.names}


def test_the_scheduled_jobs_use_only_options_the_release_task_has() -> None:
    known = _task_options()
    for path in (ROOT / ".github" / "workflows" / "release.yml", ROOT / ".gitlab-ci.yml"):
        commands = _release_options(path)
        assert commands, f"{path} runs no `invoke release`"
        for options in commands:
            assert options <= known, f"{path}: unknown options {sorted(options - known)}"
            # what the jobs rely on: the signer identity to check; the check's answer for the release job,
            # which builds only the commit the check saw and writes a report for the job summary
            wanted = {"certificate-identity", "certificate-oidc-issuer", "ref"}
            # (the release's last job: the earlier ones' results go on as records and shard results)
            wanted |= {"outputs"} if "dry-run" in options else {"expect-commit"}
            wanted |= {"report-dir"} if not {"dry-run", "publish-only", "shard"} & options else set()
            wanted |= {"shard-result"} if "shard" in options else set()
            assert wanted <= options, f"{path}: {sorted(wanted - options)} missing"
        assert sum("dry-run" in options for options in commands) == 1, f"{path}: one check, one release"


def test_the_release_task_has_the_stage_options_by_their_names() -> None:
    expected = {
        "ref",
        "fork-url",
        "prefix",
        "platforms",
        "trust-config",
        "identity-token",
        "certificate-identity",
        "certificate-oidc-issuer",
        "base-image",
        "registry-mirror",
        "force",
        "dry-run",
        "report-dir",
        "json",
    }
    assert expected <= _task_options()


def test_the_github_workflow_can_sign_keyless_and_never_races() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    for job in ("publish", "release"):  # the jobs that sign only (zizmor)
        assert workflow["jobs"][job]["permissions"]["id-token"] == "write"
    assert workflow["concurrency"]["cancel-in-progress"] is False
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads `on` as true
    assert "schedule" in triggers and "workflow_dispatch" in triggers
    steps = workflow["jobs"]["release"]["steps"]
    assert any("report/release.md" in str(step.get("run", "")) for step in steps)


def test_the_gitlab_jobs_that_sign_get_a_sigstore_id_token() -> None:
    config = yaml.safe_load((ROOT / ".gitlab-ci.yml").read_text())
    for name in ("publish", "release"):
        assert config[name]["id_tokens"]["SIGSTORE_ID_TOKEN"]["aud"] == "sigstore"
        assert any("schedule" in rule["if"] for rule in config[name]["rules"])
    assert [name for name, job in config.items() if isinstance(job, dict) and "id_tokens" in job] == [
        "publish",
        "release",
    ]
