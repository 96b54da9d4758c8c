"""URLs without credentials: what is written or shown, and how git still gets the credentials.

A fork URL may carry user info (``https://user:token@host/owner/repo``). That token must never reach
an annotation, the run record, a report, a log line, an error message, a file git leaves behind
(``.git/config``) or argv. :func:`redact` strips user info, query and fragment from a URL (the one
redaction, everywhere), :func:`redact_text` from every URL in a text (git's own messages quote the URL).
A URL's query never reaches git either: credentials go in its user info. :func:`git_access` gives git the URL without user
info and the credentials through ``GIT_ASKPASS`` (a script that reads them from its environment), in a
private directory (:mod:`pipeline.scratch`).
"""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import unquote, urlsplit, urlunsplit

from pipeline import scratch

# What signed metadata names as the source of a build from a local checkout (never its path).
LOCAL_CHECKOUT = "local checkout"
# A URL in free text: scheme://, then up to the next blank or quote.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+", re.ASCII)
_ASKPASS = """#!/bin/sh
# git asks "Username for ..." then "Password for ...": answer from the environment, never argv.
case "$1" in
  Username*) printf '%s\\n' "$KANIKO_PIPELINE_GIT_USERNAME" ;;
  *) printf '%s\\n' "$KANIKO_PIPELINE_GIT_PASSWORD" ;;
esac
"""


def redact(url: str) -> str:
    """The one redaction of a URL: without user info, query or fragment (a token hides in any of them).

    ``https://user:tok@host/x?token=t#f`` -> ``https://host/x``; text that is not a ``scheme://`` URL
    (a local path, ``git@host:owner/repo``) as is. Every URL the pipeline shows, writes or signs
    passes through here.
    """
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return _strip_userinfo(url).split("?", 1)[0].split("#", 1)[0]
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _strip_userinfo(url: str) -> str:
    scheme, _, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    return f"{scheme}://{authority.rsplit('@', 1)[-1]}{slash}{path}"


def redact_text(text: str) -> str:
    """``text`` with every URL in it redacted (:func:`redact`)."""
    return _URL.sub(lambda m: redact(m.group()), text)


def credentials(url: str) -> tuple[str, str] | None:
    """The (user, password) a URL carries, or None."""
    if "://" not in url:
        return None
    try:
        parts = urlsplit(url)
        user, password = parts.username, parts.password
    except ValueError:
        return None
    if user is None and password is None:
        return None
    return unquote(user or ""), unquote(password or "")


@contextmanager
def git_access(url: str, base_env: dict[str, str]) -> Iterator[tuple[str, dict[str, str]]]:
    """The URL git is given (no user info) and the environment that hands git the credentials."""
    public = redact(url)
    found = credentials(url)
    if found is None:
        yield public, dict(base_env)
        return
    with scratch.private_directory("kp-git-") as directory:
        script = directory / "askpass"
        script.write_text(_ASKPASS)
        script.chmod(stat.S_IRWXU)
        env = {
            **base_env,
            "GIT_ASKPASS": str(script),
            "GIT_TERMINAL_PROMPT": "0",
            "KANIKO_PIPELINE_GIT_USERNAME": found[0],
            "KANIKO_PIPELINE_GIT_PASSWORD": found[1],
        }
        yield public, env
