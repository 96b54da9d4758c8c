"""The nginx base's one layer: mmdebstrap's root filesystem tar, rewritten and configured the way
nginxinc/nginx-unprivileged is (user ``nginx`` uid/gid 101, port 8080, the pid file and temp paths under
/tmp, no ``user`` directive), so it runs under ``--cap-drop=ALL`` as non-root. Debian's stock config fails
there (``chown("/var/lib/nginx/body") failed``).

The layer is reproducible: sorted entries, fixed mtimes and numeric owners, gzip'd without a timestamp.
pipeline/services/nginxbase.py puts it in the cached OCI layout.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import io
import tarfile
from pathlib import Path

from pipeline.errors import ImageError

PACKAGES = ("nginx-light",)
USER_ID = 101
EPOCH = 0  # SOURCE_DATE_EPOCH and every file's mtime: the layer depends on the packages, not on the day
HTML = "usr/share/nginx/html"

NGINX_CONF = """\
# nginx-debian base (kaniko-pipeline): unprivileged, like nginxinc/nginx-unprivileged.
worker_processes auto;
pid /tmp/nginx.pid;
error_log /dev/stderr notice;
events {
    worker_connections 256;
}
http {
    client_body_temp_path /tmp/client_temp;
    proxy_temp_path       /tmp/proxy_temp;
    fastcgi_temp_path     /tmp/fastcgi_temp;
    uwsgi_temp_path       /tmp/uwsgi_temp;
    scgi_temp_path        /tmp/scgi_temp;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log /dev/stdout;
    sendfile on;
    include /etc/nginx/conf.d/*.conf;
}
"""

DEFAULT_SERVER = """\
server {
    listen 8080;
    server_name localhost;
    location / {
        root /usr/share/nginx/html;
        index index.html;
    }
}
"""

# Left out of the layer: the contents of kernel filesystems, device nodes, package caches and lists.
EXCLUDE_CONTENTS = ("dev", "proc", "sys", "run", "tmp", "var/cache/apt", "var/lib/apt/lists")
DROP = ("etc/nginx/sites-enabled/",)  # Debian's default site listens on 80: conf.d/default.conf replaces it


def write_layer(rootfs_tar: Path, dest: Path) -> tuple[str, dict[str, str]]:
    """Rewrite mmdebstrap's tar as the base's layer: sorted, fixed mtimes, numeric owners, no device
    nodes, nginx configured (see :func:`overrides`), gzip'd without a timestamp. Returns the diff id (the
    digest of the uncompressed tar) and the installed versions of the recipe's packages."""
    hasher = _HashingWriter()
    with tarfile.open(rootfs_tar, "r:") as source:
        members = _members(source)
        replaced = overrides(source, members)
        versions = installed_versions(_read(source, members, "var/lib/dpkg/status").decode(), PACKAGES)
        with (
            open(dest, "wb") as raw,
            gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=3, mtime=0) as zipped,
        ):
            hasher.target = zipped
            with tarfile.open(fileobj=hasher, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
                for name in sorted(set(members) | set(replaced)):
                    info = _entry(name, members.get(name), replaced.get(name))
                    if name in replaced:
                        tar.addfile(info, io.BytesIO(replaced[name]))
                    elif info.isreg():
                        tar.addfile(info, source.extractfile(members[name]))
                    else:
                        tar.addfile(info)
    return hasher.digest(), versions


def _members(source: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    """The bootstrap tar's entries by clean name (no ``./``), without what the layer leaves out."""
    out: dict[str, tarfile.TarInfo] = {}
    for member in source.getmembers():
        name = member.name.removeprefix("./").rstrip("/")
        if not name or member.isdev() or member.type == tarfile.FIFOTYPE:
            continue
        if any(name.startswith(parent + "/") for parent in EXCLUDE_CONTENTS):
            continue
        if any(name.startswith(prefix) for prefix in DROP):
            continue
        out[name] = member
    return out


def _read(source: tarfile.TarFile, members: dict[str, tarfile.TarInfo], name: str) -> bytes:
    member = members.get(name)
    handle = source.extractfile(member) if member is not None and member.isreg() else None
    if handle is None:
        raise ImageError(f"the Debian root filesystem has no /{name}: mmdebstrap's output is incomplete")
    return handle.read()


def overrides(source: tarfile.TarFile, members: dict[str, tarfile.TarInfo]) -> dict[str, bytes]:
    """Files whose content the layer replaces: nginx's config, and the ``nginx`` user (uid/gid 101)."""
    for required in ("usr/sbin/nginx", f"{HTML}/index.html"):
        if required not in members:
            raise ImageError(f"the Debian root filesystem has no /{required}: nginx-light was not installed")
    out = {
        "etc/nginx/nginx.conf": NGINX_CONF.encode(),
        "etc/nginx/conf.d/default.conf": DEFAULT_SERVER.encode(),
    }
    lines = {
        "etc/group": f"nginx:x:{USER_ID}:",
        "etc/passwd": f"nginx:x:{USER_ID}:{USER_ID}:nginx user:/nonexistent:/usr/sbin/nologin",
        "etc/shadow": "nginx:!:19000::::::",
    }
    for path, line in lines.items():
        out[path] = _add_line(_read(source, members, path).decode(), line).encode()
    return out


def _add_line(text: str, line: str) -> str:
    name = line.split(":", 1)[0] + ":"
    if any(existing.startswith(name) for existing in text.splitlines()):
        return text
    if text and not text.endswith("\n"):
        text += "\n"
    return text + line + "\n"


def _entry(name: str, member: tarfile.TarInfo | None, content: bytes | None) -> tarfile.TarInfo:
    info = copy.copy(member) if member is not None else tarfile.TarInfo(name)
    info.name = name
    if member is None:
        info.mode, info.uid, info.gid = 0o644, 0, 0
    if content is not None:
        info.type, info.size = tarfile.REGTYPE, len(content)
    if info.islnk():
        info.linkname = info.linkname.removeprefix("./")
    if name == HTML or name.startswith(HTML + "/"):
        info.uid = info.gid = USER_ID
    info.mtime = EPOCH
    info.uname = info.gname = ""
    info.pax_headers = {}
    return info


def installed_versions(status: str, packages: tuple[str, ...]) -> dict[str, str]:
    """The versions of ``packages`` that dpkg's status file says are installed."""
    found: dict[str, str] = {}
    for paragraph in status.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in paragraph.splitlines() if ": " in line and not line[0].isspace()
        )
        if fields.get("Package") in packages and fields.get("Status", "").endswith(" installed"):
            found[fields["Package"]] = fields.get("Version", "")
    missing = [name for name in packages if name not in found]
    if missing:
        raise ImageError(f"the Debian root filesystem does not have {', '.join(missing)} installed")
    return found


class _HashingWriter:
    """A write-only file object that hashes what passes through it (the layer's diff id)."""

    def __init__(self) -> None:
        self.target: gzip.GzipFile | None = None
        self._hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        assert self.target is not None
        self._hash.update(data)
        self.target.write(data)
        return len(data)

    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()
