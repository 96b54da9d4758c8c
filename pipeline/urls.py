"""URLs without credentials: what is written or shown, and how git still gets the credentials.

A fork URL may carry user info (``https://user:token@host/owner/repo``). That token must never reach
an annotation, the run record, a report, a log line, an error message, a file git leaves behind
(``.git/config``) or argv. :func:`redact` strips user info from a URL, :func:`redact_text` from every
URL in a text (git's own messages quote the URL). :func:`git_access` gives git the URL without user
info and the credentials through ``GIT_ASKPASS`` (a script that reads them from its environment).
"""

from __future__ import annotations

import re
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

# scheme://userinfo@ in free text: userinfo is anything up to the last '@' before the host's end.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/\s'\"@]*@", re.ASCII)
_ASKPASS = """#!/bin/sh
# git asks "Username for ..." then "Password for ...": answer from the environment, never argv.
case "$1" in
  Username*) printf '%s\\n' "$KANIKO_PIPELINE_GIT_USERNAME" ;;
  *) printf '%s\\n' "$KANIKO_PIPELINE_GIT_PASSWORD" ;;
esac
"""


def redact(url: str) -> str:
    """``url`` without user info (``https://user:tok@host/x`` -> ``https://host/x``); other text as is."""
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def redact_text(text: str) -> str:
    """``text`` with the user info of every URL in it removed."""
    return _USERINFO.sub(lambda m: m.group("scheme"), text)


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
    with tempfile.TemporaryDirectory(prefix="kp-git-") as directory:
        script = Path(directory) / "askpass"
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
