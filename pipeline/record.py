"""The run record: each stage's result, kept on disk as JSON so a task can run alone.

``invoke publish`` reads what the last ``invoke build`` wrote here. Writes are atomic (a temporary file
renamed over the old one), so an interrupted run never leaves a half-written record.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pipeline.errors import RecordError


def atomic_write_text(path: Path, text: str, mode: int = 0o644) -> None:
    """Write ``text`` to ``path`` so that readers see the old content or the new, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read(path: Path) -> dict[str, Any]:
    """The whole record, or an empty one when no run has written it yet."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise RecordError(
            f"cannot read the run record {path}: {exc}",
            hint="delete it and run the earlier stages again",
        ) from exc
    if not isinstance(data, dict):
        raise RecordError(f"the run record {path} is not a JSON object", hint="delete it and run again")
    return data


def stage(path: Path, name: str, *, needed_by: str) -> dict[str, Any]:
    """The result that stage ``name`` recorded, or an error that says which task to run first."""
    result = read(path).get(name)
    if not isinstance(result, dict):
        raise RecordError(
            f"{needed_by} needs the result of the {name} stage, and no run has recorded one in {path}",
            hint=f"run `invoke {name}` first (or pass the input explicitly)",
        )
    return result


def save(path: Path, name: str, result: dict[str, Any]) -> None:
    """Record ``result`` as the latest result of stage ``name``."""
    data = read(path)
    data[name] = result
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
