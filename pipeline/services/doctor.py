"""`invoke doctor` (and the end of `invoke setup`): can this user run podman, mmdebstrap and buildah (the
conformance stage's reference builder) rootless?

Each check says what it found and, when it fails, the command that fixes it. Run as root for another
user (``--user NAME``, or ``SUDO_USER`` under sudo), :func:`fix` does what only root can do (subuid and
subgid ranges, /dev/net/tun, the user-namespace sysctls, the setuid bit of newuidmap/newgidmap) and
says what it changed. For root itself only what root's podman and mmdebstrap need is checked.

As root it trusts only what root controls: system programs come from ``SYSTEM_PATH`` alone, a program
is made setuid only when it and every directory above it belong to root and no one else can write
them, ``runuser`` gets a minimal environment, and /dev/net/tun is changed only when it is that device.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

from pipeline import tooloutput
from pipeline.errors import ToolError, UsageError
from pipeline.services.diagnosis import Diagnosis, DoctorCheck
from pipeline.services.subids import SUBGID, SUBUID, free_range, subid_ranges
from pipeline.services.toolchecks import buildah_check, storage_check
from pipeline.system import SYSTEM_PATH, system_program

TUN = Path("/dev/net/tun")
TUN_DEVICE = (10, 200)  # the character device's major and minor numbers
RANGE = 65536  # ids a user needs: a whole 16-bit range, as useradd gives
USERNS_SYSCTLS = (
    # (file under /proc/sys, the value that lets ordinary users make user namespaces, the sysctl name)
    ("user/max_user_namespaces", "28633", "user.max_user_namespaces"),
    ("kernel/unprivileged_userns_clone", "1", "kernel.unprivileged_userns_clone"),
    ("kernel/apparmor_restrict_unprivileged_userns", "0", "kernel.apparmor_restrict_unprivileged_userns"),
)


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


def _subid_check(kind: str, path: Path, user: pwd.struct_passwd) -> DoctorCheck:
    ranges = subid_ranges(path, user)
    total = sum(count for _, count in ranges)
    name = f"sub{kind}"
    if total >= RANGE:
        shown = ", ".join(f"{start}-{start + count - 1}" for start, count in ranges)
        return DoctorCheck(name, True, f"{user.pw_name} has {shown} ({total} ids) in {path}")
    start, end = free_range(path, kind)
    found = f"only {total} ids" if ranges else "no range"
    return DoctorCheck(
        name,
        False,
        f"{found} for {user.pw_name} in {path} (rootless podman and mmdebstrap need {RANGE})",
        fix=f"usermod --add-sub{kind}s {start}-{end} {user.pw_name}  (as root)",
    )


def _idmap_check(program: str) -> DoctorCheck:
    found = system_program(program)
    if found is None:
        return DoctorCheck(program, False, "not installed", fix="apt-get install uidmap  (as root)")
    info = os.stat(found)
    if info.st_uid == 0 and (info.st_mode & stat.S_ISUID or _has_file_capabilities(found)):
        how = "setuid root" if info.st_mode & stat.S_ISUID else "file capabilities"
        return DoctorCheck(program, True, f"{found} ({how})")
    refusal = setuid_refusal(Path(found))
    return DoctorCheck(
        program,
        False,
        f"{found} is neither setuid root nor has file capabilities: it cannot map the subuid ranges"
        + (f"; {refusal}, so setup will not make it setuid" if refusal else ""),
        fix=(
            f"use the uidmap package's /usr/bin/{program} (apt-get install --reinstall uidmap), or make "
            f"{found} and every directory above it root's and writable by root alone  (as root)"
        )
        if refusal
        else f"chmod u+s {found}  (as root)",
    )


def setuid_refusal(path: Path) -> str | None:
    """Why ``path`` must not be made setuid root, or None: it (the real file) and every directory above
    it must belong to root and be writable by no one else, or its owner could swap in any program."""
    real = Path(os.path.realpath(path))
    info = os.lstat(real)
    if not stat.S_ISREG(info.st_mode):
        return f"{real} is not a regular file"
    for item in [real, *real.parents]:
        owner = os.lstat(item)
        if owner.st_uid != 0:
            return f"{item} belongs to uid {owner.st_uid}, not root"
        if owner.st_mode & 0o022:
            return f"{item} is writable by others (mode {stat.S_IMODE(owner.st_mode):04o})"
    return None


def _has_file_capabilities(path: str) -> bool:
    try:
        return bool(os.getxattr(path, "security.capability"))
    except OSError:
        return False


def _network_check() -> DoctorCheck:
    helpers = [name for name in ("pasta", "slirp4netns") if system_program(name)]
    if helpers:
        return DoctorCheck("network helper", True, " and ".join(helpers) + " installed")
    return DoctorCheck(
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


def is_tun_device(path: Path = TUN) -> bool:
    """Whether ``path`` itself (not what a link names) is the character device 10,200."""
    info = os.lstat(path)
    return stat.S_ISCHR(info.st_mode) and (os.major(info.st_rdev), os.minor(info.st_rdev)) == TUN_DEVICE


def _tun_check(user: pwd.struct_passwd) -> DoctorCheck:
    if not os.path.lexists(TUN):
        return DoctorCheck(
            "/dev/net/tun",
            False,
            "missing: slirp4netns needs it to give containers a network",
            fix=f"mkdir -p {TUN.parent} && mknod -m 0666 {TUN} c 10 200  (as root)",
        )
    if not is_tun_device(TUN):
        return DoctorCheck(
            "/dev/net/tun",
            False,
            f"{TUN} is not the tun character device (c 10 200): setup leaves it alone",
            fix=f"find out what made {TUN}; remove it, then run `invoke setup` again  (as root)",
        )
    mode = stat.S_IMODE(os.stat(TUN).st_mode)
    if can_read_write(TUN, user):
        return DoctorCheck("/dev/net/tun", True, f"mode {mode:04o}: {user.pw_name} can open it")
    return DoctorCheck(
        "/dev/net/tun",
        False,
        f"mode {mode:04o}: {user.pw_name} cannot open it, so slirp4netns cannot start",
        fix=f"chmod 0666 {TUN}  (as root)",
    )


def _userns_check(proc_sys: Path = Path("/proc/sys")) -> DoctorCheck:
    bad = []
    for name, wanted, sysctl in USERNS_SYSCTLS:
        try:
            value = (proc_sys / name).read_text().strip()
        except OSError:
            continue  # this kernel has no such switch
        if (name.startswith("user/") and value == "0") or (not name.startswith("user/") and value != wanted):
            bad.append((sysctl, value, wanted))
    if not bad:
        return DoctorCheck("user namespaces", True, "enabled for ordinary users")
    return DoctorCheck(
        "user namespaces",
        False,
        "disabled: " + ", ".join(f"{sysctl} = {value}" for sysctl, value, _ in bad),
        fix=" && ".join(f"sysctl -w {sysctl}={wanted}" for sysctl, _, wanted in bad) + "  (as root)",
    )


def diagnose(user: pwd.struct_passwd) -> Diagnosis:
    """Every check for ``user`` (for root: only what rootful podman and mmdebstrap need)."""
    checks: list[DoctorCheck] = []
    if user.pw_uid != 0:
        checks += [_subid_check("uid", SUBUID, user), _subid_check("gid", SUBGID, user)]
        checks += [_idmap_check("newuidmap"), _idmap_check("newgidmap")]
        checks += [_network_check(), _tun_check(user)]
    checks.append(_userns_check())
    checks.append(storage_check(user))
    checks.append(buildah_check(user))
    return Diagnosis(user.pw_name, user.pw_uid, checks)


def fix(user: pwd.struct_passwd, runner: Callable[[list[str]], None] | None = None) -> Diagnosis:
    """As root: fix what only root can fix for ``user``, then check again. ``changed`` says what was done."""
    if os.geteuid() != 0:
        raise UsageError(
            "only root can fix these for another user",
            hint=f"run as root: invoke setup --user {user.pw_name}",
        )
    run = runner or _run
    changed: list[str] = []
    for check in diagnose(user).checks:
        fixer = _FIXERS.get(check.name)
        if not check.ok and fixer is not None:
            changed += fixer(check, user, run)
    after = diagnose(user)
    after.changed = changed
    return after


Runner = Callable[[list[str]], None]


def _fix_subids(check: DoctorCheck, user: pwd.struct_passwd, run: Runner) -> list[str]:
    path = SUBUID if check.name == "subuid" else SUBGID
    start, end = free_range(path, check.name.removeprefix("sub"))
    run([_system("usermod"), f"--add-{check.name}s", f"{start}-{end}", user.pw_name])
    return [f"gave {user.pw_name} {check.name} range {start}-{end} in {path}"]


def _fix_tun(check: DoctorCheck, user: pwd.struct_passwd, run: Runner) -> list[str]:
    if not os.path.lexists(TUN):
        TUN.parent.mkdir(parents=True, exist_ok=True)
        os.mknod(TUN, 0o666 | stat.S_IFCHR, os.makedev(*TUN_DEVICE))
    if not is_tun_device(TUN):
        return []  # the check says what it is and what to do
    os.chmod(TUN, 0o666)
    return [f"made {TUN} readable and writable by every user (mode 0666)"]


def _fix_userns(check: DoctorCheck, user: pwd.struct_passwd, run: Runner) -> list[str]:
    changed = []
    for _, wanted, sysctl in USERNS_SYSCTLS:
        name = Path("/proc/sys") / sysctl.replace(".", "/")
        if name.exists() and check.detail.find(sysctl + " =") >= 0:
            run([_system("sysctl"), "-w", f"{sysctl}={wanted}"])
            changed.append(f"set {sysctl}={wanted}")
    return changed


def _fix_idmap(check: DoctorCheck, user: pwd.struct_passwd, run: Runner) -> list[str]:
    found = system_program(check.name)
    if found is None or "setuid" not in check.detail or setuid_refusal(Path(found)) is not None:
        return []  # not installed, or not safe to make setuid: the check says why and what to do
    os.chmod(found, stat.S_IMODE(os.stat(found).st_mode) | stat.S_ISUID)
    return [f"made {found} setuid root"]


_FIXERS: dict[str, Callable[[DoctorCheck, pwd.struct_passwd, Runner], list[str]]] = {
    "subuid": _fix_subids,
    "subgid": _fix_subids,
    "/dev/net/tun": _fix_tun,
    "user namespaces": _fix_userns,
    "newuidmap": _fix_idmap,
    "newgidmap": _fix_idmap,
}


def _system(name: str) -> str:
    """A system program root runs: from SYSTEM_PATH only, never from PATH."""
    found = shutil.which(name, path=SYSTEM_PATH)
    if found is None:
        raise ToolError(f"{name} is not installed in {SYSTEM_PATH}", hint="install the package that has it")
    return found


def _run(argv: list[str]) -> None:
    result = subprocess.run(
        argv, capture_output=True, text=True, check=False, env={"PATH": SYSTEM_PATH, "LC_ALL": "C"}
    )
    if result.returncode != 0:
        raise ToolError(
            tooloutput.failure(
                f"`{' '.join(argv)}`", Path(argv[0]).name, result.returncode, result.stderr or result.stdout
            ),
            hint="run it by hand to see more",
        )
