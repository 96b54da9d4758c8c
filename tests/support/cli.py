"""Run an invoke task as a user does: ``python -m invoke ...`` from the project root, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_invoke(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cache: Path | None = None,
    cwd: Path = ROOT,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """``python -m invoke ARGS``; its exit status, stdout and stderr (text), never raising on failure.

    ``env``: the whole environment (default: this process's); ``cache``: sets
    INVOKE_PIPELINE_CACHE_DIR, so the task never touches the user's cache.
    """
    full_env = dict(os.environ if env is None else env)
    if cache is not None:
        full_env["INVOKE_PIPELINE_CACHE_DIR"] = str(cache)
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def invoke_with_cache(args: Sequence[str], cache: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m invoke ARGS`` with ``cache`` as the pipeline's cache and ``cache/docker`` as the Docker
    config directory, plus ``env`` over this process's environment."""
    full_env = {**os.environ, "DOCKER_CONFIG": str(cache / "docker"), **env}
    return run_invoke(args, env=full_env, cache=cache)
