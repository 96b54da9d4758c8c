"""The join's refusals that need no build: a file that is not a platform record, records that disagree, a
platform the release did not ask for. (tests/integration/test_release_graph.py joins real ones.)"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pipeline.errors import UsageError
from pipeline.oci import mediatype
from pipeline.oci.descriptor import Descriptor, Platform
from pipeline.stages.fanout import PlatformRecord, check

COMMIT = "a" * 40


def _record(platform: str) -> PlatformRecord:
    os_, arch = platform.split("/")
    desc = Descriptor(mediatype.OCI_MANIFEST, "sha256:" + "1" * 64, 500, platform=Platform(os_, arch))
    return PlatformRecord(
        prefix="127.0.0.1:5000",
        version="1.2.3",
        commit=COMMIT,
        platforms=(platform,),
        manifests={"executor": {platform: desc}},
        annotations={"executor": {"org.opencontainers.image.revision": COMMIT}},
        inputs={"go_version": "go1.24.4"},
        go={"version": "go1.24.4"},
        window=(1.0, 2.0),
    )


def test_a_record_survives_its_file(tmp_path: Path) -> None:
    record = _record("linux/amd64")
    record.write(tmp_path / "r.json")
    assert PlatformRecord.read(tmp_path / "r.json") == record


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json", "is not a platform record: Expecting value"),
        ('{"kind": "something else", "format": 1}', "not a record of kaniko-pipeline platform images"),
        ('{"kind": "kaniko-pipeline platform images", "format": 1}', "is not a platform record: 'manifests'"),
    ],
)
def test_a_file_that_is_not_a_record_is_bad_input(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "r.json"
    path.write_text(text)
    with pytest.raises(UsageError) as refused:
        PlatformRecord.read(path)
    assert reason in refused.value.message and "--manifests-only --record" in str(refused.value)


def test_records_that_disagree_or_bring_an_unasked_platform_are_refused() -> None:
    amd, arm = _record("linux/amd64"), _record("linux/arm64")
    check(
        [(Path("a"), amd), (Path("b"), arm)],
        version="1.2.3",
        commit=COMMIT,
        platforms=["linux/amd64", "linux/arm64"],
    )
    elsewhere = dataclasses.replace(arm, go={"version": "go1.24.4", "path": "/builds/1/go/bin/go"})
    check(
        [(Path("a"), amd), (Path("b"), elsewhere)],
        version="1.2.3",
        commit=COMMIT,
        platforms=["linux/amd64", "linux/arm64"],
    )
    other_go = dataclasses.replace(arm, go={"version": "go1.23.0"})
    with pytest.raises(UsageError, match="b and a disagree on toolchain"):
        check(
            [(Path("a"), amd), (Path("b"), other_go)],
            version="1.2.3",
            commit=COMMIT,
            platforms=["linux/amd64", "linux/arm64"],
        )
    with pytest.raises(UsageError, match="not asked for: linux/arm64"):
        check([(Path("a"), amd), (Path("b"), arm)], version="1.2.3", commit=COMMIT, platforms=["linux/amd64"])
    with pytest.raises(UsageError, match="a is of 1.2.3 at aaaaaaaaaaaa, but this release is 1.2.4"):
        check([(Path("a"), amd)], version="1.2.4", commit=COMMIT, platforms=["linux/amd64"])
