"""End-to-end tests need the real kaniko fork: its URL (internet) or a local mirror in KANIKO_FORK_URL."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def fork_url() -> str:
    url = os.environ.get("KANIKO_FORK_URL", "").strip()
    if not url:
        pytest.skip(
            "the real kaniko fork is needed: set KANIKO_FORK_URL to a clone or mirror of "
            "github.com/chainguard-forks/kaniko (these machines cannot reach GitHub)"
        )
    return url


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
