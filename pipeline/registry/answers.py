"""How much of a registry's answer the client reads: never a whole body of any size.

A registry (or whatever answers in its name) chooses how big its answers are. The transport asks
for every answer streamed and reads what the caller did not stream itself here: an error answer up
to ``ERROR_BODY_BYTES`` (the rest is dropped: an error says what it has to say early), any other
(a list page, a token) up to ``ANSWER_BYTES``, over which it is a :class:`LimitError`. Streamed
answers are the caller's to bound (manifests at 4 MiB, blobs at their descriptor's size).
"""

from __future__ import annotations

import requests

from pipeline.errors import LimitError

ERROR_BODY_BYTES = 64 << 10
ANSWER_BYTES = 4 << 20  # a list page or a token answer: as big as the largest manifest


def _loaded(response: requests.Response) -> bool:
    """Whether the body was read already (requests keeps ``_content`` False until it is)."""
    content: object = response._content
    return bool(getattr(response, "_content_consumed", False)) or isinstance(content, bytes)


def _read(response: requests.Response, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of the body, and whether more remained (then the connection is closed)."""
    parts: list[bytes] = []
    count = 0
    more = False
    try:
        for chunk in response.iter_content(64 << 10):
            if count + len(chunk) > limit:
                parts.append(chunk[: limit - count])
                more = True
                break
            parts.append(chunk)
            count += len(chunk)
    finally:
        if more:
            response.close()  # not returned to the pool half read
    return b"".join(parts), more


def _keep(response: requests.Response, data: bytes) -> None:
    """Make ``data`` the response's content (``.content``, ``.json()`` and ``.text`` read it)."""
    response._content = data
    response._content_consumed = True  # type: ignore[attr-defined]


def load(response: requests.Response, what: str) -> None:
    """Read the body of an answer the caller did not stream, within the limits above."""
    if _loaded(response):
        return
    if response.status_code >= 400 or response.request.method == "HEAD":
        error_body(response)
        return
    data, more = _read(response, ANSWER_BYTES)
    if more:
        raise LimitError(
            f"{what}: the registry's answer is over {ANSWER_BYTES >> 20} MiB; the client reads no more",
            hint="a registry's list pages and token answers are far smaller: check what answers in its name",
        )
    _keep(response, data)


def error_body(response: requests.Response) -> bytes:
    """The first ``ERROR_BODY_BYTES`` of an error answer (read once; the rest is never read)."""
    if not _loaded(response):
        data, _ = _read(response, ERROR_BODY_BYTES)
        _keep(response, data)
    return (response._content or b"")[:ERROR_BODY_BYTES]
