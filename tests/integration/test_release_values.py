"""Within one release the stages hand each other values (issue 22, item 1): the run record is written
for a task that runs alone later, never read back by the release itself, and the trust root is loaded
once, at the start. Same fixture fork, real registry, local Sigstore instance and podman as
tests/integration/test_release.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline import config, record, release
from pipeline.services.distribution import LocalRegistry
from pipeline.signing import trust
from tests.support.releasefork import Fork, release_options, rolling_tags, tags_in, verifies

pytestmark = pytest.mark.slow


def test_a_release_whose_record_is_deleted_after_every_stage_releases_the_same(
    env: tuple[config.Settings, str],
    fork: Fork,
    registry: LocalRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings, nginx = env
    written: dict[str, dict[str, Any]] = {}  # what each stage recorded, before it was deleted
    deleted: list[str] = []

    def delete_record(stage: str) -> None:
        if settings.record_file.exists():
            written.update(json.loads(settings.record_file.read_text()))
            settings.record_file.unlink()
            deleted.append(stage)

    kept_root = settings.cache_dir / "sigstore" / "trust_config.json"
    loads: list[Path | None] = []
    real_load = trust.load

    def counting_load(path: Path | None, **kwargs: Any) -> Any:
        loads.append(path)
        return real_load(path, **kwargs)

    monkeypatch.setattr(trust, "load", counting_load)
    try:
        done = release.run(
            settings, release_options(fork, tmp_path, smoke_image=nginx, after_stage=delete_record)
        )
    finally:  # the env fixture removes the images build-image pulled and pushed, as its record names them
        if "build-image" in written:
            record.save(settings.record_file, "build-image", written["build-image"])
    assert done.status == "released", done.to_dict()
    assert [stage.name for stage in done.stages] == list(release.STAGES)
    # each stage that writes a record wrote it, and found no record from the stages before it
    assert {"fork", "build", "publish", "sign", "build-image", "smoke"} <= set(deleted)
    assert {"fork", "build", "publish", "sign", "build-image", "smoke"} <= set(written)
    assert written["publish"]["images"]["executor"]["digest"] == done.images["executor"]["digest"]
    # the trust root every local signing session verifies with is read once, at the start (or, on a
    # cache no local instance has used yet, once when the first one keeps it)
    assert loads.count(kept_root) == 1, loads

    # the same result as a release that keeps its record: every tag in place, signed, up to date
    snap = tags_in(registry)
    executor = snap["kaniko-executor"]
    assert executor["v1.2.3"] == executor["latest"] == executor["v1"] == executor["v1.2"]
    assert executor["v1.2.3-debug"] == executor["debug"] and executor["v1.2.3-slim"] == executor["slim"]
    assert len(rolling_tags(snap)) == 12
    assert done.signature["trust_config"] == str(kept_root)
    verifies(settings, done, f"{registry.host}/kaniko-warmer:v1.2.3")
    again = release.run(settings, release_options(fork, tmp_path, smoke_image=nginx))
    assert again.status == "up to date", again.to_dict()
    assert tags_in(registry) == snap


def test_a_local_release_whose_keys_were_removed_loads_the_new_trust_root_once_and_signs_under_it(
    env: tuple[config.Settings, str], fork: Fork, registry: LocalRegistry, tmp_path: Path
) -> None:
    """The Trust is loaded once, at check: when the local instance will make new keys (keys.json removed),
    it starts first, so that what the release signs now (the signature again, the test result) verifies
    under the Trust it checks with, and under the trust config its report names."""
    settings, nginx = env
    first = release.run(settings, release_options(fork, tmp_path, smoke_image=nginx))
    assert first.status == "released", first.to_dict()
    home = settings.cache_dir / "sigstore"
    old_root = (home / "trust_config.json").read_text()
    (home / "keys.json").unlink()
    again = release.run(settings, release_options(fork, tmp_path, smoke_image=nginx, force=True))
    assert again.status == "released", again.to_dict()
    assert (home / "trust_config.json").read_text() != old_root  # new keys, a new trust root kept
    stages = {stage.name: stage.status for stage in again.stages}
    assert stages["sign"] == "ok" and stages["rolling"] == "ok"  # the old keys' signature counts no more
    verifies(settings, again, f"{registry.host}/kaniko-executor:v1.2.3")
