"""A root filesystem tar shaped like mmdebstrap's output (./ names, device nodes first, the stock nginx
site, dpkg's status), for tests of the nginx base's layer that need no Debian mirror."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

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


def bootstrap_tar(path: Path, *, with_nginx: bool = True, mtime: int = 1_700_000_000) -> Path:
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
