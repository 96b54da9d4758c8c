"""The nginx base's layer, rewritten from a bootstrap tar shaped like mmdebstrap's (./ names, device
nodes, the stock nginx site): deterministic, configured to run unprivileged, the recipe recorded."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from pipeline import nginxbase
from pipeline.errors import ImageError
from pipeline.oci.layout import Layout
from pipeline.oci.manifest import Manifest

STATUS = """Package: base-files
Status: install ok installed
Version: 12.4

Package: nginx-light
Status: install ok installed
Priority: optional
Version: 1.22.1-9+deb12u2
Description: nginx web/proxy server
 (basic version)
"""


def _bootstrap_tar(path: Path, *, with_nginx: bool = True, mtime: int = 1_700_000_000) -> Path:
    files = {
        "./etc/passwd": b"root:x:0:0:root:/root:/bin/bash\n",
        "./etc/group": b"root:x:0:\n",
        "./etc/shadow": b"root:*:0:0:99999:7:::\n",
        "./etc/nginx/nginx.conf": b"user www-data;\n",
        "./usr/share/nginx/html/index.html": b"<h1>Welcome to nginx!</h1>\n",
        "./var/lib/dpkg/status": STATUS.encode(),
        "./var/cache/apt/pkgcache.bin": b"cache",
        "./tmp/leftover": b"x",
    }
    if with_nginx:
        files["./usr/sbin/nginx"] = b"\x7fELF"
    dirs = ["./", "./dev/", "./etc/", "./etc/nginx/", "./etc/nginx/conf.d/", "./etc/nginx/sites-enabled/"]
    dirs += [
        "./tmp/",
        "./usr/",
        "./usr/sbin/",
        "./usr/share/",
        "./usr/share/nginx/",
        "./usr/share/nginx/html/",
    ]
    dirs += ["./var/", "./var/cache/", "./var/cache/apt/", "./var/lib/", "./var/lib/dpkg/"]
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        null = tarfile.TarInfo("./dev/null")
        null.type, null.devmajor, null.devminor, null.mode = tarfile.CHRTYPE, 1, 3, 0o666
        tar.addfile(null)  # mmdebstrap writes ./dev first, and device nodes
        for name in dirs:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, mtime
            tar.addfile(info)
        site = tarfile.TarInfo("./etc/nginx/sites-enabled/default")
        site.type, site.linkname = tarfile.SYMTYPE, "/etc/nginx/sites-available/default"
        tar.addfile(site)
        for name, data in sorted(files.items(), reverse=True):  # not in name order
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime, info.uname = len(data), 0o644, mtime, "root"
            tar.addfile(info, io.BytesIO(data))
    return path


def _layer(path: Path) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    out: dict[str, tuple[tarfile.TarInfo, bytes]] = {}
    with tarfile.open(path, "r:gz") as tar:
        for member in tar:
            handle = tar.extractfile(member) if member.isreg() else None
            out[member.name] = (member, handle.read() if handle else b"")
    return out


def test_layer_is_deterministic_sorted_and_configured_for_an_unprivileged_nginx(tmp_path: Path) -> None:
    first = _bootstrap_tar(tmp_path / "a.tar")
    second = _bootstrap_tar(tmp_path / "b.tar", mtime=1_800_000_000)  # another day, the same packages
    diff_a, versions = nginxbase.write_layer(first, tmp_path / "a.tar.gz")
    diff_b, _ = nginxbase.write_layer(second, tmp_path / "b.tar.gz")
    assert diff_a == diff_b
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()
    raw = gzip.decompress((tmp_path / "a.tar.gz").read_bytes())
    assert diff_a == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert versions == {"nginx-light": "1.22.1-9+deb12u2"}

    layer = _layer(tmp_path / "a.tar.gz")
    names = list(layer)
    assert names == sorted(names)
    assert "dev" in names and "dev/null" not in names  # no device nodes
    assert "tmp" in names and "tmp/leftover" not in names and "var/cache/apt/pkgcache.bin" not in names
    assert not any(name.startswith("./") for name in names)
    assert "etc/nginx/sites-enabled/default" not in names  # Debian's site listens on 80
    assert layer["etc/nginx/nginx.conf"][1].decode() == nginxbase.NGINX_CONF
    assert b"listen 8080;" in layer["etc/nginx/conf.d/default.conf"][1]
    assert (
        layer["etc/passwd"][1]
        .decode()
        .endswith("nginx:x:101:101:nginx user:/nonexistent:/usr/sbin/nologin\n")
    )
    assert layer["etc/group"][1].decode() == "root:x:0:\nnginx:x:101:\n"
    for name, (info, _) in layer.items():
        assert info.mtime == nginxbase.EPOCH and info.uname == "" and info.gname == ""
        owned = name.startswith("usr/share/nginx/html")
        assert (info.uid, info.gid) == ((101, 101) if owned else (0, 0)), name


def test_the_recipe_is_recorded_in_the_layer_annotations(tmp_path: Path) -> None:
    desc = nginxbase.write_layout(_bootstrap_tar(tmp_path / "rootfs.tar"), tmp_path / "layout")
    base = nginxbase.BaseImage(tmp_path / "layout", desc)
    assert nginxbase.recipe(base) == {
        "suite": "bookworm",
        "variant": "minbase",
        "packages": "nginx-light",
        "versions": "nginx-light=1.22.1-9+deb12u2",
        "tool": "mmdebstrap --mode=unshare",
    }
    manifest = Layout.open(tmp_path / "layout").read_manifest(desc)
    assert isinstance(manifest, Manifest)
    assert manifest.layers[0].annotations["dev.kaniko-pipeline.base.suite"] == "bookworm"


def test_a_rootfs_without_nginx_is_refused_with_the_reason(tmp_path: Path) -> None:
    tar = _bootstrap_tar(tmp_path / "rootfs.tar", with_nginx=False)
    with pytest.raises(ImageError, match="has no /usr/sbin/nginx: nginx-light was not installed"):
        nginxbase.write_layer(tar, tmp_path / "layer.tar.gz")
