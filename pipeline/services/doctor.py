"""`invoke doctor` (and the end of `invoke setup`): can this user run podman, mmdebstrap and buildah (the
conformance stage's reference builder) rootless?

Each check says what it found and, when it fails, the command that fixes it. Run as root for another
user (``--user NAME``, or ``SUDO_USER`` under sudo), :func:`fix` does what only root can do (subuid and
subgid ranges, /dev/net/tun, the user-namespace sysctls, the setuid bit of newuidmap/newgidmap) and
says what it changed. For root itself only what root's podman and mmdebstrap need is checked.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import tooloutput
from pipeline.errors import ToolError, UsageError
from pipeline.services import buildah
from pipeline.system import search_path

SUBUID, SUBGID = Path("/etc/subuid"), Path("/etc/subgid")
TUN = Path("/dev/net/tun")
RANGE = 65536  # ids a user needs: a whole 16-bit range, as useradd gives
FIRST_ID = 100000
USERNS_SYSCTLS = (
    # (file under /proc/sys, the value that lets ordinary users make user namespaces, the sysctl name)
    ("user/max_user_namespaces", "28633", "user.max_user_namespaces"),
    ("kernel/unprivileged_userns_clone", "1", "kernel.unprivileged_userns_clone"),
    ("kernel/apparmor_restrict_unprivileged_userns", "0", "kernel.apparmor_restrict_unprivileged_userns"),
)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""  # a command; empty when nothing is to be done
    warning: bool = False  # works, but not as well as it could: shown, never a failure

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "fix": self.fix or None}

    def line(self) -> str:
        mark = "ok  " if self.ok and not self.warning else ("warn" if self.ok else "FAIL")
        text = f"{mark} {self.name}: {self.detail}"
        return text + (f"\n     fix: {self.fix}" if self.fix else "")


@dataclass
class Diagnosis:
    user: str
    uid: int
    checks: list[Check]
    changed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "rootless": self.uid != 0,
            "ok": self.ok,
            "checks": [check.to_dict() for check in self.checks],
            "changed": self.changed,
        }

    def text(self) -> str:
        mode = "rootless" if self.uid != 0 else "rootful"
        lines = [f"changed: {change}" for change in self.changed]
        lines.append(f"checks for {self.user} ({mode} podman and mmdebstrap):")
        lines += [check.line() for check in self.checks]
        failed = [check.name for check in self.checks if not check.ok]
        lines.append("all checks passed" if not failed else "failed: " + ", ".join(failed))
        return "\n".join(lines)


def target_user(name: str | None, env: Mapping[str, str] | None = None) -> pwd.struct_passwd:
    """The user the pipeline will run as: ``name``, else the user sudo ran us for, else ourselves."""
    env = os.environ if env is None else env
    if not name and os.geteuid() == 0 and env.get("SUDO_USER") not in (None, "", "root"):
        name = env["SUDO_USER"]
    if not name:
        return pwd.getpwuid(os.geteuid())
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise UsageError(
            f"there is no user {name!r} on this machine",
            hint=f"create it first (as root: useradd --create-home {name}) or name an existing user",
        ) from None


def subid_ranges(path: Path, user: pwd.struct_passwd) -> list[tuple[int, int]]:
    """The (start, count) ranges ``path`` (/etc/subuid or /etc/subgid) gives ``user`` (by name or uid)."""
    out: list[tuple[int, int]] = []
    for owner, start, count in _entries(path):
        if owner in (user.pw_name, str(user.pw_uid)):
            out.append((start, count))
    return out


def _entries(path: Path) -> list[tuple[str, int, int]]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        parts = line.strip().split(":")
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            out.append((parts[0], int(parts[1]), int(parts[2])))
    return out


def free_range(path: Path, count: int = RANGE) -> tuple[int, int]:
    """The first ``count`` ids after every range ``path`` hands out (at least FIRST_ID)."""
    end = max([FIRST_ID, *(start + size for _, start, size in _entries(path))])
    return end, end + count - 1


def _subid_check(kind: str, path: Path, user: pwd.struct_passwd) -> Check:
    ranges = subid_ranges(path, user)
    total = sum(count for _, count in ranges)
    name = f"sub{kind}"
    if total >= RANGE:
        shown = ", ".join(f"{start}-{start + count - 1}" for start, count in ranges)
        return Check(name, True, f"{user.pw_name} has {shown} ({total} ids) in {path}")
    start, end = free_range(path)
    found = f"only {total} ids" if ranges else "no range"
    return Check(
        name,
        False,
        f"{found} for {user.pw_name} in {path} (rootless podman and mmdebstrap need {RANGE})",
        fix=f"usermod --add-sub{kind}s {start}-{end} {user.pw_name}  (as root)",
    )


def _idmap_check(program: str) -> Check:
    found = shutil.which(program, path=search_path())
    if found is None:
        return Check(program, False, "not installed", fix="apt-get install uidmap  (as root)")
    info = os.stat(found)
    capable = _has_file_capabilities(found)
    if info.st_uid == 0 and (info.st_mode & stat.S_ISUID or capable):
        how = "setuid root" if info.st_mode & stat.S_ISUID else "file capabilities"
        return Check(program, True, f"{found} ({how})")
    return Check(
        program,
        False,
        f"{found} is neither setuid root nor has file capabilities: it cannot map the subuid ranges",
        fix=f"chown root {found} && chmod u+s {found}  (as root)",
    )


def _has_file_capabilities(path: str) -> bool:
    try:
        return bool(os.getxattr(path, "security.capability"))
    except OSError:
        return False


def _network_check() -> Check:
    helpers = [name for name in ("pasta", "slirp4netns") if shutil.which(name, path=search_path())]
    if helpers:
        return Check("network helper", True, " and ".join(helpers) + " installed")
    return Check(
        "network helper",
        False,
        "neither slirp4netns nor pasta is installed (rootless podman's user-mode networking)",
        fix="apt-get install slirp4netns  (as root)",
    )


def can_read_write(path: Path, user: pwd.struct_passwd) -> bool:
    """Whether ``user`` may open ``path`` for reading and writing, from its mode bits and owner."""
    info = os.stat(path)
    groups = {user.pw_gid, *os.getgrouplist(user.pw_name, user.pw_gid)}
    if user.pw_uid == 0:
        return True
    if info.st_uid == user.pw_uid:
        bits = (info.st_mode >> 6) & 0o6
    elif info.st_gid in groups:
        bits = (info.st_mode >> 3) & 0o6
    else:
        bits = info.st_mode & 0o6
    return bits == 0o6


def _tun_check(user: pwd.struct_passwd) -> Check:
    if not TUN.exists():
        return Check(
            "/dev/net/tun",
            False,
            "missing: slirp4netns needs it to give containers a network",
            fix=f"mkdir -p {TUN.parent} && mknod -m 0666 {TUN} c 10 200  (as root)",
        )
    mode = stat.S_IMODE(os.stat(TUN).st_mode)
    if can_read_write(TUN, user):
        return Check("/dev/net/tun", True, f"mode {mode:04o}: {user.pw_name} can open it")
    return Check(
        "/dev/net/tun",
        False,
        f"mode {mode:04o}: {user.pw_name} cannot open it, so slirp4netns cannot start",
        fix=f"chmod 0666 {TUN}  (as root)",
    )


def _userns_check(proc_sys: Path = Path("/proc/sys")) -> Check:
    bad = []
    for name, wanted, sysctl in USERNS_SYSCTLS:
        try:
            value = (proc_sys / name).read_text().strip()
        except OSError:
            continue  # this kernel has no such switch
        if (name.startswith("user/") and value == "0") or (not name.startswith("user/") and value != wanted):
            bad.append((sysctl, value, wanted))
    if not bad:
        return Check("user namespaces", True, "enabled for ordinary users")
    return Check(
        "user namespaces",
        False,
        "disabled: " + ", ".join(f"{sysctl} = {value}" for sysctl, value, _ in bad),
        fix=" && ".join(f"sysctl -w {sysctl}={wanted}" for sysctl, _, wanted in bad) + "  (as root)",
    )


def podman_info_argv(user: pwd.struct_passwd) -> list[str]:
    podman = shutil.which("podman", path=search_path()) or "podman"
    argv = [podman, "info", "--format=json"]
    if user.pw_uid != os.geteuid():
        argv = ["runuser", "-u", user.pw_name, "--", *argv]
    return argv


def _storage_check(user: pwd.struct_passwd) -> Check:
    if shutil.which("podman", path=search_path()) is None:
        return Check("podman storage", False, "podman is not installed", fix="invoke setup")
    env = {**os.environ, "HOME": user.pw_dir, "USER": user.pw_name, "LC_ALL": "C"}
    if user.pw_uid != os.geteuid():
        env.pop("XDG_RUNTIME_DIR", None)
        env.pop("XDG_CONFIG_HOME", None)
        env.pop("XDG_DATA_HOME", None)
    try:
        result = subprocess.run(
            podman_info_argv(user), capture_output=True, text=True, env=env, cwd="/", timeout=120, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("podman storage", False, f"`podman info` did not run: {exc}", fix="invoke setup")
    if result.returncode != 0:
        detail = tooloutput.failure(
            f"`podman info` as {user.pw_name}", "podman", result.returncode, result.stderr
        )
        return Check("podman storage", False, detail, fix="fix what the checks above report, then run again")
    try:
        store = json.loads(result.stdout)["store"]
        driver = str(store["graphDriverName"])
    except (ValueError, KeyError, TypeError):
        return Check("podman storage", False, "`podman info` printed no storage driver", fix="podman info")
    where = store.get("graphRoot", "")
    if driver == "vfs":
        conf = Path(user.pw_dir) / ".config" / "containers" / "storage.conf"
        return Check(
            "podman storage",
            True,
            f"driver vfs at {where}: it works, but every layer is a full copy (slow, large)",
            fix=f"printf '[storage]\\ndriver = \"overlay\"\\n' > {conf} && podman system reset --force  "
            f"(as {user.pw_name}; removes its images)",
            warning=True,
        )
    return Check("podman storage", True, f"driver {driver} at {where}")


def _buildah_check(user: pwd.struct_passwd) -> Check:
    found = shutil.which("buildah", path=search_path())
    busybox = shutil.which("busybox", path=search_path())
    if found is None or busybox is None:
        package = "buildah" if found is None else "busybox-static"
        return Check(
            "buildah", False, f"{package} is not installed", fix=f"apt-get install {package}  (as root)"
        )
    try:
        result = buildah.probe(found, Path(busybox), user)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("buildah", False, f"buildah did not run: {exc}", fix="invoke setup")
    if result.returncode == 0:
        return Check("buildah", True, f"builds a RUN step as {user.pw_name}, as the conformance stage does")
    return Check(
        "buildah",
        False,
        tooloutput.failure(
            f"a RUN step with buildah as {user.pw_name}", "buildah", result.returncode, result.stderr
        ),
        fix=_buildah_fix(result.stderr),
    )


def _buildah_fix(stderr: str) -> str:
    if "crun" in stderr or "hybrid mode" in stderr:
        return "apt-get install runc  (as root; crun fails on these machines, and buildah then uses runc)"
    return "fix what the checks above report (subuid, subgid, newuidmap, user namespaces), then run again"


def diagnose(user: pwd.struct_passwd) -> Diagnosis:
    """Every check for ``user`` (for root: only what rootful podman and mmdebstrap need)."""
    checks: list[Check] = []
    if user.pw_uid != 0:
        checks += [_subid_check("uid", SUBUID, user), _subid_check("gid", SUBGID, user)]
        checks += [_idmap_check("newuidmap"), _idmap_check("newgidmap")]
        checks += [_network_check(), _tun_check(user)]
    checks.append(_userns_check())
    checks.append(_storage_check(user))
    checks.append(_buildah_check(user))
    return Diagnosis(user.pw_name, user.pw_uid, checks)


def fix(user: pwd.struct_passwd, runner: Callable[[list[str]], None] | None = None) -> Diagnosis:
    """As root: fix what only root can fix for ``user``, then check again. ``changed`` says what was done."""
    if os.geteuid() != 0:
        raise UsageError(
            "only root can fix these for another user",
            hint=f"run as root: invoke setup --user {user.pw_name}",
        )
    run = runner or _run
    before = diagnose(user)
    changed: list[str] = []
    for check in before.checks:
        if check.ok:
            continue
        if check.name in ("subuid", "subgid"):
            path = SUBUID if check.name == "subuid" else SUBGID
            start, end = free_range(path)
            run(["usermod", f"--add-{check.name}s", f"{start}-{end}", user.pw_name])
            changed.append(f"gave {user.pw_name} {check.name} range {start}-{end} in {path}")
        elif check.name == "/dev/net/tun":
            if not TUN.exists():
                TUN.parent.mkdir(parents=True, exist_ok=True)
                os.mknod(TUN, 0o666 | stat.S_IFCHR, os.makedev(10, 200))
            os.chmod(TUN, 0o666)
            changed.append(f"made {TUN} readable and writable by every user (mode 0666)")
        elif check.name == "user namespaces":
            for _, wanted, sysctl in USERNS_SYSCTLS:
                name = Path("/proc/sys") / sysctl.replace(".", "/")
                if name.exists() and check.detail.find(sysctl + " =") >= 0:
                    run(["sysctl", "-w", f"{sysctl}={wanted}"])
                    changed.append(f"set {sysctl}={wanted}")
        elif check.name in ("newuidmap", "newgidmap") and "setuid" in check.detail:
            found = shutil.which(check.name, path=search_path())
            if found:
                os.chown(found, 0, -1)
                os.chmod(found, stat.S_IMODE(os.stat(found).st_mode) | stat.S_ISUID)
                changed.append(f"made {found} setuid root")
    after = diagnose(user)
    after.changed = changed
    return after


def _run(argv: list[str]) -> None:
    program = shutil.which(argv[0], path=search_path())
    if program is None:
        raise ToolError(f"{argv[0]} is not installed; it is needed to run: {' '.join(argv)}")
    result = subprocess.run([program, *argv[1:]], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ToolError(
            tooloutput.failure(
                f"`{' '.join(argv)}`", argv[0], result.returncode, result.stderr or result.stdout
            ),
            hint="run it by hand to see more",
        )
