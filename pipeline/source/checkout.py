"""A checked-out release of the fork: what the build stages need to know of the source."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import ForkError

_MODULE_LINE = re.compile(r"^module\s+\"?([^\s\"]+)\"?\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Checkout:
    """A checked-out release of the fork, as the later stages need it."""

    url: str
    tag: str
    commit: str
    version: str
    commit_time: int
    module: str
    path: Path
    patches: tuple[str, ...] = ()
    pinned: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path)
        data["patches"] = list(self.patches)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Checkout:
        return cls(
            url=data["url"],
            tag=data["tag"],
            commit=data["commit"],
            version=data["version"],
            commit_time=int(data["commit_time"]),
            module=data["module"],
            path=Path(data["path"]),
            patches=tuple(data.get("patches", ())),
            pinned=bool(data.get("pinned", False)),
        )


def read_module(path: Path) -> str:
    go_mod = path / "go.mod"
    try:
        text = go_mod.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ForkError(
            f"the checkout at {path} has no go.mod: it is not the kaniko fork (or not a Go module)",
            hint="check --url",
        ) from exc
    match = _MODULE_LINE.search(text)
    if not match:
        raise ForkError(f"{go_mod} has no module line", hint="check --url")
    return match.group(1)
