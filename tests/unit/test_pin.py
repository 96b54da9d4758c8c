from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.config import PROJECT_ROOT
from pipeline.errors import PinError
from pipeline.source import pinfile

SHA = "df8f307ec6bc64beb853250f3267b4c604e6a38a"


def test_the_committed_pin_is_valid() -> None:
    current = pinfile.load(PROJECT_ROOT / "fork" / "pin.json")
    assert current.url == pinfile.DEFAULT_URL
    assert current.tag.startswith("v")


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "pin.json"
    pinfile.save(path, pinfile.Pin(url="u", tag="v1.2.3", commit=SHA))
    assert pinfile.load(path) == pinfile.Pin(url="u", tag="v1.2.3", commit=SHA)
    assert not list(tmp_path.glob(".*")), "no temporary file is left behind"


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "does not exist"),
        ("{not json", "not valid JSON"),
        ("[]", "not a JSON object"),
        (json.dumps({"tag": "v1", "commit": "abc"}), "not a full 40-character SHA-1"),
        (json.dumps({"commit": SHA}), "needs a string 'tag'"),
        (json.dumps({"tag": "v1", "commit": SHA, "branch": "x"}), "unknown keys: branch"),
    ],
)
def test_bad_pins(tmp_path: Path, content: str | None, says: str) -> None:
    path = tmp_path / "pin.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(PinError) as info:
        pinfile.load(path)
    assert says in str(info.value)
    assert str(path) in str(info.value)
