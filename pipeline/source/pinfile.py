"""The fork pin: the URL, release tag and commit that releases are built from (``fork/pin.json``)."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.errors import PinError
from pipeline.record import atomic_write_text

DEFAULT_URL = "https://github.com/chainguard-forks/kaniko.git"
_SHA = re.compile(r"[0-9a-f]{40}", re.ASCII)


@dataclass(frozen=True)
class Pin:
    url: str
    tag: str
    commit: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


def load(path: Path) -> Pin:
    """Read and check the pin file."""
    fix = f'restore {path} from git, or write it as {{"url": ..., "tag": ..., "commit": ...}}'
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise PinError(f"the fork pin {path} does not exist", hint=fix) from exc
    except (OSError, ValueError) as exc:
        raise PinError(f"the fork pin {path} is not valid JSON: {exc}", hint=fix) from exc
    if not isinstance(data, dict):
        raise PinError(f"the fork pin {path} is not a JSON object", hint=fix)
    url = data.get("url") or DEFAULT_URL
    tag = data.get("tag")
    commit = data.get("commit")
    if not isinstance(url, str) or not isinstance(tag, str) or not tag.strip():
        raise PinError(f"the fork pin {path} needs a string 'tag' (and optional 'url')", hint=fix)
    if not isinstance(commit, str) or not _SHA.fullmatch(commit):
        raise PinError(
            f"the fork pin {path} has commit {commit!r}, which is not a full 40-character SHA-1",
            hint=fix,
        )
    unknown = sorted(set(data) - {"url", "tag", "commit"})
    if unknown:
        raise PinError(f"the fork pin {path} has unknown keys: {', '.join(unknown)}", hint=fix)
    return Pin(url=url, tag=tag.strip(), commit=commit)


def save(path: Path, pin: Pin) -> None:
    atomic_write_text(path, pin.to_json())
