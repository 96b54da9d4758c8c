"""The image reader (layers flattened with whiteouts, hard links, replaced paths) and the comparison
(every field, config, known differences), on docker-archive tarballs written here byte by byte."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import ImageError
from pipeline.stages.conformance import compare, snapshot

Member = tuple[str, str, dict[str, Any]]  # name, kind, fields


def _layer(members: list[Member], *, gz: bool = False) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, fields in members:
            info = tarfile.TarInfo(name)
            info.mtime = fields.get("mtime", 1)
            info.mode = fields.get("mode", 0o644)
            info.uid = fields.get("uid", 0)
            info.gid = fields.get("gid", 0)
            data = fields.get("data", b"")
            if kind == "dir":
                info.type = tarfile.DIRTYPE
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, fields["target"]
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, fields["target"]
            else:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if kind == "file" else None)
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0) if gz else raw


def _archive(path: Path, layers: list[bytes], config: dict[str, Any]) -> Path:
    with tarfile.open(path, "w") as tar:

        def put(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        names = []
        for number, data in enumerate(layers):
            names.append(f"{number}.tar")
            put(names[-1], data)
        put("config.json", json.dumps({"config": config}).encode())
        put("manifest.json", json.dumps([{"Config": "config.json", "Layers": names}]).encode())
    return path


def test_layers_are_flattened_with_whiteouts_opaque_dirs_hard_links_and_replacements(tmp_path: Path) -> None:
    first = _layer(
        [
            ("d", "dir", {"mode": 0o755}),
            ("d/file", "file", {"data": b"original\n", "mode": 0o640, "uid": 7, "gid": 8}),
            ("d/link", "hardlink", {"target": "d/file"}),
            ("d/sym", "symlink", {"target": "file"}),
            ("d/doomed", "file", {"data": b"x"}),
            ("opaque/old", "file", {"data": b"old"}),
            ("tree/inside", "file", {"data": b"inside"}),
        ]
    )
    second = _layer(
        [
            ("./d/.wh.doomed", "file", {}),
            ("opaque/.wh..wh..opq", "file", {}),
            ("opaque/new", "file", {"data": b"new"}),
            ("tree", "file", {"data": b"now a file"}),
        ],
        gz=True,
    )
    image = snapshot.read_archive(_archive(tmp_path / "i.tar", [first, second], {"User": "1000"}))
    assert image.read("d/file") == snapshot.PathEntry(
        "file", 0o640, 7, 8, 9, hashlib.sha256(b"original\n").hexdigest()
    )
    # a hard link is what a container sees: the same file again
    assert image.read("/d/link") == image.read("/d/file")
    assert image.read("/d/sym") == snapshot.PathEntry("symlink", 0o644, 0, 0, target="file")
    assert image.read("/d/doomed") is None
    assert image.read("/opaque/old") is None and image.read("/opaque/new") is not None
    tree = image.read("/tree")
    assert tree is not None and tree.type == "file" and image.read("/tree/inside") is None
    assert image.config["User"] == "1000" and image.config["Env"] == [] and image.config["Labels"] == {}


def test_the_comparison_names_each_field_that_differs_and_ignores_timestamps(tmp_path: Path) -> None:
    files: list[Member] = [("a", "file", {"data": b"one", "mode": 0o644}), ("s", "symlink", {"target": "a"})]
    other: list[Member] = [
        ("a", "file", {"data": b"two", "mode": 0o600, "mtime": 99}),
        ("s", "symlink", {"target": "b"}),
        ("extra", "dir", {}),
    ]
    kaniko = snapshot.read_archive(_archive(tmp_path / "k.tar", [_layer(files)], {"Cmd": ["a"]}))
    same = snapshot.read_archive(
        _archive(
            tmp_path / "s.tar", [_layer([(n, k, {**f, "mtime": 5}) for n, k, f in files])], {"Cmd": ["a"]}
        )
    )
    assert compare.diff(kaniko, same) == []
    buildah = snapshot.read_archive(
        _archive(
            tmp_path / "b.tar",
            [_layer(other)],
            {"Cmd": ["b"], "Labels": {"io.buildah.version": "1.28.2", "x": "1"}},
        )
    )
    found = {(d.where, d.field) for d in compare.diff(kaniko, buildah)}
    assert found == {
        ("/a", "mode"),
        ("/a", "sha256"),
        ("/s", "target"),
        ("/extra", "presence"),
        ("config.Cmd", "Cmd"),
        ("config.Labels", "label io.buildah.version"),
        ("config.Labels", "label x"),
    }
    result = compare.compare(kaniko, buildah)
    # buildah's own label is a known difference; the other label, and everything else, is not
    assert result.known == {"buildah-version-label": 1}
    assert {(d.where, d.field) for d in result.unexpected} == found - {
        ("config.Labels", "label io.buildah.version")
    }
    assert not result.same


def test_a_tarball_that_is_not_an_image_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "x.tar"
    with tarfile.open(path, "w") as tar:
        tar.addfile(tarfile.TarInfo("nothing"), io.BytesIO(b""))
    with pytest.raises(ImageError, match="no manifest.json"):
        snapshot.read_archive(path)


def _image(config: dict[str, Any], files: dict[str, snapshot.PathEntry] | None = None) -> snapshot.Snapshot:
    return snapshot.Snapshot(files=files or {}, config=snapshot.normalize_config(config))


@pytest.mark.parametrize(
    ("kaniko", "buildah", "name"),
    [
        ({"Env": ["PATH=x", "A=1"]}, {"Env": ["A=1", "PATH=x"]}, "env-order"),
        (
            {"Entrypoint": ["/bin/sh", "-c", '["run"] # a comment']},
            {"Entrypoint": ["run"]},
            "json-form-trailing-comment",
        ),
        (
            {"ExposedPorts": {"83/udp": {}, "83/tcp": {}}},
            {"ExposedPorts": {"83/udp": {}}},
            "expose-two-protocols",
        ),
    ],
)
def test_each_known_config_difference_matches_only_its_own_shape(
    kaniko: dict[str, Any], buildah: dict[str, Any], name: str
) -> None:
    result = compare.compare(_image(kaniko), _image(buildah))
    assert result.same and result.known == {name: 1}


@pytest.mark.parametrize(
    ("kaniko", "buildah"),
    [
        ({"Env": ["PATH=x", "A=1"]}, {"Env": ["A=2", "PATH=x"]}),  # a value differs, not only the order
        ({"Entrypoint": ["/bin/sh", "-c", '["run"]']}, {"Entrypoint": ["run"]}),  # no comment: a real bug
        ({"ExposedPorts": {"84/tcp": {}, "83/udp": {}}}, {"ExposedPorts": {"83/udp": {}}}),  # another port
    ],
)
def test_a_difference_that_only_looks_like_a_known_one_still_fails(
    kaniko: dict[str, Any], buildah: dict[str, Any]
) -> None:
    result = compare.compare(_image(kaniko), _image(buildah))
    assert not result.same and result.known == {}


def test_file_differences_known_only_in_context_and_paths_a_case_ignores() -> None:
    entry = snapshot.PathEntry
    kaniko = _image(
        {"Volumes": {"/data/v": {}}, "WorkingDir": "/home/app"},
        {
            "/data": entry("dir", 0o755, 0, 0),
            "/data/v": entry("dir", 0o755, 0, 0),
            "/home": entry("dir", 0o755, 0, 0),
            "/tmp/f": entry("file", 0o644, 1001, 1001, 1, "a"),
            "/date": entry("file", 0o644, 0, 0, 1, "b"),
            "/other": entry("dir", 0o755, 0, 0),
        },
    )
    buildah = _image(
        {"Volumes": {"/data/v": {}}, "WorkingDir": "/home/app"},
        {
            "/home": entry("dir", 0o755, 1000, 1000),
            "/tmp/f": entry("file", 0o644, 1001, 0, 1, "a"),
            "/date": entry("file", 0o644, 0, 0, 1, "c"),
        },
    )
    result = compare.compare(kaniko, buildah, ignore={"/date": "the time of the build"})
    assert result.known == {
        "volume-directories": 2,
        "workdir-parent-owner": 2,
        "gid-of-uid-without-group": 1,
        "ignored:/date": 1,
    }
    assert [d.text() for d in result.unexpected] == ["/other: presence kaniko=dir 0755 0:0 buildah=absent"]


def test_parents_that_copy_chown_created_are_a_known_difference_only_above_a_chowned_file() -> None:
    entry = snapshot.PathEntry
    kaniko = _image(
        {}, {"/etc": entry("dir", 0o755, 0, 0), "/etc/owned.txt": entry("file", 0o644, 1000, 1000, 2, "a")}
    )
    buildah = _image(
        {},
        {"/etc": entry("dir", 0o755, 1000, 1000), "/etc/owned.txt": entry("file", 0o644, 1000, 1000, 2, "a")},
    )
    result = compare.compare(kaniko, buildah)
    assert result.same and result.known == {"chown-copy-parent-owner": 2}
    # the same owners with nothing below that the owner got: not the known shape
    lone = _image(
        {}, {"/etc": entry("dir", 0o755, 0, 0), "/etc/root.txt": entry("file", 0o644, 0, 0, 2, "a")}
    )
    other = _image(
        {}, {"/etc": entry("dir", 0o755, 1000, 1000), "/etc/root.txt": entry("file", 0o644, 0, 0, 2, "a")}
    )
    assert [d.text() for d in compare.compare(lone, other).unexpected] == [
        "/etc: uid kaniko=0 buildah=1000",
        "/etc: gid kaniko=0 buildah=1000",
    ]


def test_every_known_difference_says_what_the_reference_builders_do() -> None:
    for known in compare.KNOWN:
        evidence = known.evidence()
        assert evidence["buildah"] != compare.NOT_CHECKED, known.name  # buildah is run here: it is known
        assert all(evidence[key] for key in ("reason", "buildkit", "legacy")), known.name
    chown = next(k for k in compare.KNOWN if k.name == "chown-copy-parent-owner")
    assert chown.upstream == "moby/buildkit#640" and "root" in chown.legacy
