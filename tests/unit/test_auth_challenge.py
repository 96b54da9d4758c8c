"""WWW-Authenticate parsing (RFC 7235) and Retry-After parsing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.registry.auth import parse_challenges
from pipeline.registry.retry import RETRY_STATUSES, backoff_delay, parse_retry_after


def test_docker_hub_bearer() -> None:
    header = (
        'Bearer realm="https://auth.example.test/token",service="registry.example.test",'
        'scope="repository:library/busybox:pull"'
    )
    [challenge] = parse_challenges(header)
    assert challenge.scheme == "bearer"
    assert challenge.realm == "https://auth.example.test/token"
    assert challenge.params["service"] == "registry.example.test"
    assert challenge.scopes == ["repository:library/busybox:pull"]


def test_insufficient_scope_with_several_scopes() -> None:
    header = (
        'Bearer realm="http://127.0.0.1:1/t", service="s", '
        'scope="repository:a:pull,push repository:b:pull", error="insufficient_scope"'
    )
    [challenge] = parse_challenges(header)
    assert challenge.error == "insufficient_scope"
    assert challenge.scopes == ["repository:a:pull,push", "repository:b:pull"]


def test_basic_and_multiple_challenges_and_escapes() -> None:
    header = 'Basic realm="Registry \\"x\\", y", Bearer realm="https://t/x",error=invalid_token'
    first, second = parse_challenges(header)
    assert (first.scheme, first.realm) == ("basic", 'Registry "x", y')
    assert (second.scheme, second.realm, second.error) == ("bearer", "https://t/x", "invalid_token")


def test_case_and_odd_spacing() -> None:
    [challenge] = parse_challenges('  BEARER   Realm = "https://r" ,  SERVICE=svc  ')
    assert challenge.scheme == "bearer"
    assert challenge.realm == "https://r"
    assert challenge.params["service"] == "svc"


@pytest.mark.parametrize("header", ["", "   ", ",,", '="x"'])
def test_empty_or_garbage(header: str) -> None:
    assert parse_challenges(header) == []


NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("0", 0.0),
        ("7", 7.0),
        (" 120 ", 120.0),
        ("1.5", 1.5),
        ("Thu, 01 Jan 2026 12:00:30 GMT", 30.0),
        ("Thursday, 01-Jan-26 12:01:00 GMT", 60.0),
        ("Thu, 01 Jan 2026 11:00:00 GMT", 0.0),  # a date in the past: retry now
        ("-5", 0.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("nan", None),
    ],
)
def test_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW) == seconds


def test_retry_statuses_and_backoff_bounds() -> None:
    for status in (408, 429, 500, 502, 503, 504):
        assert status in RETRY_STATUSES
    for status in (400, 401, 403, 404, 501):
        assert status not in RETRY_STATUSES
    for attempt in range(12):
        delay = backoff_delay(attempt)
        ceiling = min(20.0, 0.5 * 2**attempt)
        assert ceiling / 2 <= delay <= ceiling


def test_the_backoff_cap_can_be_set_in_the_environment_and_a_bad_one_is_named() -> None:
    from pipeline.errors import ConfigError
    from pipeline.registry.retry import BACKOFF_CAP_VARIABLE, backoff_cap

    assert backoff_cap({}) == 20.0
    env = {BACKOFF_CAP_VARIABLE: "0.05"}
    assert backoff_cap(env) == 0.05
    assert all(0.025 <= backoff_delay(attempt, env) <= 0.05 for attempt in range(12))
    for bad in ("soon", "0", "-1", "inf", "nan"):
        with pytest.raises(ConfigError, match=f"{BACKOFF_CAP_VARIABLE}='{bad}' is not a positive number"):
            backoff_cap({BACKOFF_CAP_VARIABLE: bad})
